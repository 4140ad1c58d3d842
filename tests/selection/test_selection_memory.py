"""Selection from a float32 memory-mapped stack gives what it gives in memory."""

from __future__ import annotations

import numpy as np

from ensemble_hpo.population._population import Candidate, Population
from ensemble_hpo.population._store import MemoryArtifactStore
from ensemble_hpo.selection import GreedySelector


def _population(n_models: int, n_samples: int, seed: int = 0) -> tuple[Population, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n_samples)
    store = MemoryArtifactStore()
    candidates = []
    for number in range(n_models):
        logits = rng.normal(size=(n_samples, 3)) + 2.0 * rng.uniform() * np.eye(3)[y]
        p = np.exp(logits)
        store.save(number, p / p.sum(axis=1, keepdims=True), [])
        candidates.append(Candidate(number, "x", {}, "ok", 0.0))
    return Population(candidates, store), y


def test_stack_written_to_a_memmap_equals_the_in_memory_stack(tmp_path) -> None:
    population, y = _population(30, 200)
    numbers = list(range(0, 30, 2))
    in_memory = population.predictions(numbers)
    mapped = population.predictions(numbers, out=tmp_path / "oof.npy")
    assert isinstance(mapped, np.memmap) and not mapped.flags.writeable
    assert mapped.dtype == np.float32
    np.testing.assert_array_equal(mapped, in_memory)
    a = GreedySelector(max_iter=25).fit(in_memory, y)
    b = GreedySelector(max_iter=25).fit(mapped, y)
    np.testing.assert_array_equal(a.weights_, b.weights_)
    np.testing.assert_array_equal(a.order_, b.order_)
    np.testing.assert_array_equal(a.trajectory_, b.trajectory_)
