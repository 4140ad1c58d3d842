"""The candidate population: plain records of every trial plus access to their artifacts."""

from __future__ import annotations

import dataclasses
import os
import warnings
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import optuna
import pandas as pd
from optuna.trial import FrozenTrial, TrialState

from ensemble_hpo._run_identity import changed_components
from ensemble_hpo.population._store import ArtifactStore, prediction_dtype

__all__ = ["IDENTITY_ATTR", "Candidate", "Population", "STATUS_OK", "STATUS_SKIPPED",
           "candidate_score"]

#: Trial user attribute: the identity of the data and models the trial's candidate was
#: computed on (``ensemble_hpo._run_identity.run_identity``). The study records it once,
#: read-then-written: two fits started at the same instant on one fresh study with other data
#: could both pass the check (seen with a 1 s delay injected between the read and the write;
#: audit), so each trial carries its own and candidates of another identity are never mixed in.
IDENTITY_ATTR = "run_identity"

STATUS_OK = "ok"
#: A candidate the search proposed but did not start: its family could not train a fold in
#: the time left (nothing was trained; it is listed so that no proposal goes unaccounted).
STATUS_SKIPPED = "skipped"
_STATE_STATUS = {
    TrialState.COMPLETE: STATUS_OK,
    TrialState.PRUNED: "pruned",
    TrialState.FAIL: "failed",
    TrialState.RUNNING: "running",
    TrialState.WAITING: "waiting",
}


@dataclass
class Candidate:
    """One trained (or attempted) candidate of the search."""

    number: int
    family: str | None
    params: dict[str, Any]
    status: str
    score: float | None
    fold_scores: list[float] = field(default_factory=list)
    fit_time: float | None = None
    error: str | None = None
    strategy: str | None = None
    # Seconds per row for the candidate's fold models to predict a batch (None before it was
    # recorded, e.g. run folders of older versions).
    predict_seconds_per_row: float | None = None

    @property
    def ok(self) -> bool:
        return self.status == STATUS_OK

    @classmethod
    def from_trial(cls, trial: FrozenTrial) -> Candidate:
        attrs = trial.user_attrs
        status = attrs.get("status") or _STATE_STATUS.get(trial.state, trial.state.name.lower())
        if trial.state == TrialState.COMPLETE:
            status = STATUS_OK
        family = attrs.get("family", trial.params.get("family"))
        prefix = f"{family}__"
        params = {k[len(prefix):]: v for k, v in trial.params.items() if k.startswith(prefix)}
        return cls(
            number=trial.number,
            family=family,
            params=params,
            status=status,
            score=candidate_score(trial),
            fold_scores=list(attrs.get("fold_scores", [])),
            fit_time=attrs.get("fit_time"),
            error=attrs.get("error"),
            strategy=attrs.get("strategy"),
            predict_seconds_per_row=attrs.get("predict_seconds_per_row"),
        )


def candidate_score(trial: FrozenTrial) -> float | None:
    """A finished trial's own cross-validated score (None unless COMPLETE).

    Its value is what the search optimised, which may be an ensemble gain; trials of
    studies written before the two were separated carry only the value, which was the score.
    """
    if trial.state != TrialState.COMPLETE:
        return None
    return trial.user_attrs.get("score", trial.value)


def _is_candidate(trial: FrozenTrial) -> bool:
    if trial.state == TrialState.WAITING:
        return False  # an enqueued proposal that never started
    if trial.state == TrialState.PRUNED and (not trial.params or trial.user_attrs.get("unsampled")):
        return False  # a grid sampler with no point left prunes before sampling anything
    # Killed between its creation and the objective's first line: never a candidate.
    return not (trial.state == TrialState.RUNNING and "worker" not in trial.user_attrs)


class Population:
    """All candidates of a study, with their out-of-fold predictions in an artifact store.

    Parameters
    ----------
    candidates : sequence of Candidate
    store : ArtifactStore
    """

    def __init__(self, candidates: Sequence[Candidate], store: ArtifactStore) -> None:
        self.candidates = list(candidates)
        self.store = store

    @classmethod
    def from_study(cls, study: optuna.Study, store: ArtifactStore, *,
                   identity: Mapping[str, str] | None = None) -> Population:
        """The study's candidates; with ``identity`` (``_run_identity.run_identity``), only
        those of trials run on it (:data:`IDENTITY_ATTR`; trials of versions before it was
        recorded are kept)."""
        # WAITING trials are enqueued proposals that never started: not candidates yet.
        trials = [t for t in study.get_trials(deepcopy=False) if _is_candidate(t)]
        foreign = [t for t in trials if identity is not None
                   and changed_components(t.user_attrs.get(IDENTITY_ATTR), identity)]
        if foreign:
            warnings.warn(
                f"{len(foreign)} trial(s) of the study {study.study_name!r} were run by another "
                f"fit on other data or models: {[t.number for t in foreign][:20]}. They are left "
                "out; use one run folder (or study name) per data set and model space.",
                UserWarning, stacklevel=3)
            left_out = {t.number for t in foreign}
            trials = [t for t in trials if t.number not in left_out]
        candidates = [Candidate.from_trial(t) for t in trials]
        # A COMPLETE trial without artifacts (files deleted, another tool wrote the study) is
        # unusable; it was dropped silently, keeping its score on the leaderboard (audit).
        _leave_out([c for c in candidates if c.ok and c.number not in store],
                   "artifacts missing from the store",
                   "have no artifacts in the store (files deleted or moved?)",
                   "; they still count towards n_trials: raise n_trials to train others in their place")
        # A truncated or edited file failed the whole resume with a bare numpy error ("mmap
        # length is greater than file size") that named no file (audit).
        _leave_out(_damaged_predictions([c for c in candidates if c.ok], store),
                   "out-of-fold predictions unreadable",
                   "have out-of-fold prediction files that are truncated or of another shape "
                   "than the others' (altered?)", "")
        return cls(candidates, store)

    def rescored(self, scorer: Any, y: np.ndarray, splits: Sequence[tuple[np.ndarray, np.ndarray]],
                 sample_weight: np.ndarray | None = None) -> Population:
        """The same candidates scored by ``scorer`` from their stored out-of-fold predictions.

        Nothing is retrained: a finished candidate's score is a function of its
        out-of-fold predictions, so a changed metric only needs them rescored.
        """
        def score(idx: Any, pred: np.ndarray) -> float:
            weight = None if sample_weight is None else sample_weight[idx]
            return float(scorer(y[idx], pred[idx], sample_weight=weight))

        candidates = []
        for c in self.candidates:
            if c.ok:
                pred = np.asarray(self.store.load_predictions(c.number), dtype=np.float64)
                c = dataclasses.replace(c, score=score(slice(None), pred),
                                        fold_scores=[score(valid, pred) for _, valid in splits])
            candidates.append(c)
        return Population(candidates, self.store)

    def completed(self) -> list[Candidate]:
        return [c for c in self.candidates if c.ok]

    def with_available_models(self) -> Population:
        """Failed candidates, and the finished ones whose fold models the store still keeps.

        Without a run folder only the members and the best candidate keep their models, so
        only they can become members when selection runs again.
        """
        usable = [c for c in self.completed() if self.store.has_models(c.number)]
        return Population(usable + [c for c in self.candidates if not c.ok], self.store)

    def predictions(
        self, numbers: Sequence[int], out: str | os.PathLike[str] | None = None
    ) -> np.ndarray:
        """Stack out-of-fold predictions: (n_models, n_samples[, n_classes]), as stored
        (float32 probabilities, float64 regression values: see ``prediction_dtype``).

        With ``out`` (a ``.npy`` path, e.g. in the run folder) the stack is written there one
        candidate at a time, never whole in memory, and returned read-only memory-mapped.
        """
        if not numbers:
            raise ValueError("No completed candidate to take predictions from.")
        if out is None:
            first = self.store.load_predictions(numbers[0])
            dtype = prediction_dtype(first)
            return np.stack([np.asarray(self.store.load_predictions(n), dtype=dtype) for n in numbers])
        first = self.store.load_predictions(numbers[0])
        dtype = np.dtype(prediction_dtype(first)).newbyteorder("<")
        first = np.asarray(first, dtype=dtype)
        header = {"descr": dtype.str, "fortran_order": False, "shape": (len(numbers), *first.shape)}
        with open(out, "wb") as handle:
            np.lib.format.write_array_header_2_0(handle, header)
            for n in numbers:
                pred = np.asarray(self.store.load_predictions(n), dtype=dtype)
                if pred.shape != first.shape:
                    raise ValueError(
                        f"Candidate {n} has out-of-fold predictions of shape {pred.shape}; "
                        f"candidate {numbers[0]} has {first.shape}.")
                # Explicit writes, not a writable memmap: written pages never count as ours.
                handle.write(np.ascontiguousarray(pred).tobytes())
        return np.load(out, mmap_mode="r")

    def leaderboard(self, weights: Mapping[int, float] | None = None) -> pd.DataFrame:
        """Every candidate, failed ones included, best score first."""
        weights = weights or {}
        rows = [
            {
                "number": c.number,
                "family": c.family,
                "status": c.status,
                "score": c.score,
                "fold_scores": c.fold_scores,
                "fit_time": c.fit_time,
                "weight": float(weights.get(c.number, 0.0)),
                "params": c.params,
                "error": c.error,
            }
            for c in self.candidates
        ]
        frame = pd.DataFrame(rows, columns=["number", "family", "status", "score", "fold_scores",
                                            "fit_time", "weight", "params", "error"])
        frame["_ok"] = frame["status"] == STATUS_OK
        frame = frame.sort_values(["_ok", "score", "number"], ascending=[False, False, True],
                                  na_position="last", kind="stable")
        return frame.drop(columns="_ok").reset_index(drop=True)


def _damaged_predictions(finished: Sequence[Candidate], store: ArtifactStore) -> list[Candidate]:
    """The finished candidates whose stored predictions cannot be read, or whose shape is not
    the one most candidates share (read memory-mapped: headers only)."""
    shapes: dict[int, tuple[int, ...] | None] = {}
    for c in finished:
        try:
            shapes[c.number] = tuple(store.load_predictions(c.number).shape)
        except (ValueError, OSError, EOFError):
            shapes[c.number] = None
    readable = [shape for shape in shapes.values() if shape is not None]
    usual = Counter(readable).most_common(1)[0][0] if readable else None
    return [c for c in finished if shapes[c.number] != usual]


def _leave_out(candidates: Sequence[Candidate], error: str, problem: str, advice: str) -> None:
    """Mark finished ``candidates`` failed with ``error`` and warn, naming them."""
    for c in candidates:
        c.status, c.error, c.score = "failed", error, None
    if candidates:
        warnings.warn(f"{len(candidates)} finished candidate(s) {problem}: "
                      f"{[c.number for c in candidates][:20]}. They are left out of selection"
                      f"{advice}.", UserWarning, stacklevel=4)
