"""What a run folder's stored candidates were computed on, and whether a new fit may reuse them.

A resumed run reuses every finished candidate's out-of-fold predictions. They are only
comparable with new candidates, and only honest for the data now given, if the features,
target, folds, task, sample weights, groups and model space are the same. Each of those
is digested separately so that a mismatch can say *what* changed; the scoring is kept
apart because a changed metric needs no retraining: the stored out-of-fold predictions
are rescored (see :func:`ensemble_hpo.population.Population.rescored`).

Digest cost, measured by ``benchmarks/bench_run_identity.py`` on a 100,000-row mixed-type
table: 0.03 s for the whole identity, 0.05 % of a 60 s fit (``results/run_identity.md``).
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

__all__ = ["RunFolderMismatch", "changed_components", "check_identity", "run_identity",
           "scoring_key", "target_and_folds_identity"]

#: Components in the order an error lists them, with what each means to a user.
COMPONENTS: dict[str, str] = {
    "X": "the features X (values, column names or dtypes)",
    "y": "the target y",
    "folds": "the CV folds (cv, random_state or the row order)",
    "task": "the task",
    "sample_weight": "sample_weight",
    "groups": "groups",
    "space": "the model space (families, their fixed settings or distributions)",
}


class RunFolderMismatch(ValueError):
    """A run folder's candidates were computed on other data, folds or models."""


def _digest() -> Any:
    return hashlib.blake2b(digest_size=16)


def _array_digest(values: Any) -> str:
    if values is None:
        return "none"
    digest = _digest()
    array = np.asarray(values)
    if array.dtype == object:
        # Labels of any type: pandas hashes them by value, as it does DataFrame columns.
        array = pd.util.hash_array(array.astype(str).astype(object))
    digest.update(str(array.dtype).encode())
    digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()


def _groups_digest(groups: Any) -> str:
    """Groups by value: the same labels as int32 or int64, numpy or pandas nullable booleans
    (which arrive as floats) digest alike; a resumed fit was refused as "groups changed"."""
    if groups is None:
        return "none"
    array = np.asarray(groups)
    integral_floats = (array.dtype.kind == "f" and bool(np.all(np.abs(array) < 2.0**53))
                       and bool(np.all(array == np.round(array))))
    if array.dtype.kind in "biu" or integral_floats:
        array = array.astype(np.int64)
    return _array_digest(array)


def features_digest(X: Any) -> str:
    """Content digest of ``X``: values, column names and dtypes (DataFrame, array or sparse)."""
    digest = _digest()
    if isinstance(X, pd.DataFrame):
        digest.update(repr([(str(c), str(t)) for c, t in X.dtypes.items()]).encode())
        # One vectorised 64-bit hash per row covers every dtype, categoricals included.
        digest.update(pd.util.hash_pandas_object(X, index=False).to_numpy().tobytes())
    elif sp.issparse(X):
        csr = sp.csr_matrix(X)
        csr.sort_indices()
        # Index arrays as int64: the same matrix may come with int32 or int64 indices.
        for part in (np.asarray(csr.shape), csr.indptr.astype(np.int64),
                     csr.indices.astype(np.int64), csr.data):
            digest.update(np.ascontiguousarray(part).tobytes())
    else:
        array = np.asarray(X)
        digest.update(repr((array.shape, str(array.dtype))).encode())
        if array.dtype == object:
            array = pd.util.hash_pandas_object(pd.DataFrame(array), index=False).to_numpy()
        digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()


def _folds_digest(splits: Sequence[tuple[np.ndarray, np.ndarray]]) -> str:
    digest = _digest()
    for train, valid in splits:
        for part in (train, valid):
            digest.update(np.ascontiguousarray(part, dtype=np.int64).tobytes())
            digest.update(b"|")
    return digest.hexdigest()


def _space_digest(space: Any) -> str:
    return _digest_text(repr([_family_description(f) for f in space.families]))


def _qualname(obj: Any) -> str:
    if obj is None:
        return "none"
    if isinstance(obj, functools.partial):
        # Its repr holds the function's memory address: a partial scorer or factory made
        # every new process's fit "changed" and load_model's reselect refused (audit).
        keywords = sorted((k, _stable(v)) for k, v in obj.keywords.items())
        return f"functools.partial({_qualname(obj.func)}, {[_stable(a) for a in obj.args]}, {keywords})"
    return f"{getattr(obj, '__module__', '')}.{getattr(obj, '__qualname__', obj)}"


def _stable(value: Any) -> str:
    """A description of a fixed setting that is the same in every process.

    A default repr holds a memory address, and scikit-learn's repr elides long
    parameters; callables are named, estimators described by all their parameters.
    """
    if hasattr(value, "get_params"):
        params = value.get_params(deep=True)
        return f"{_qualname(type(value))}({sorted((k, _stable(v)) for k, v in params.items())})"
    if callable(value):
        return _qualname(value)
    if isinstance(value, (list, tuple)):
        return f"{type(value).__name__}({[_stable(v) for v in value]})"
    if isinstance(value, dict):
        return f"dict({sorted((str(k), _stable(v)) for k, v in value.items())})"
    return repr(value)


def _family_description(family: Any) -> tuple:
    described = (family.name, _qualname(family.classifier), _qualname(family.regressor),
                 family.preprocessing, sorted((k, _stable(v)) for k, v in family.fixed.items()),
                 sorted((k, repr(v)) for k, v in family.params.items()),
                 sorted((k, repr(v)) for k, v in family.conditions.items()),
                 _qualname(family.transform))
    # Left out, a resume with scale_target switched mixed standardised-target and plain
    # models under one family name (audit). Named only where it differs from what the family
    # inherits (its base's, the built-in's of its name, else off), so that folders of earlier
    # versions still resume.
    from ensemble_hpo.spaces import BUILTIN_FAMILIES

    inherited = BUILTIN_FAMILIES.get(getattr(family, "base", None) or family.name)
    if bool(family.scale_target) != (inherited is not None and inherited.scale_target):
        described += (("scale_target", bool(family.scale_target)),)
    return described


def _digest_text(text: str) -> str:
    digest = _digest()
    digest.update(text.encode())
    return digest.hexdigest()


def run_identity(X: Any, y: np.ndarray, splits: Sequence[tuple[np.ndarray, np.ndarray]], *,
                 task: str, sample_weight: Any = None, groups: Any = None,
                 space: Any = None) -> dict[str, str]:
    """One digest per component of :data:`COMPONENTS`."""
    return {
        "X": features_digest(X),
        "y": _array_digest(y),
        "folds": _folds_digest(splits),
        "task": task,
        "sample_weight": _array_digest(None if sample_weight is None
                                       else np.asarray(sample_weight, dtype=np.float64)),
        "groups": _groups_digest(groups),
        "space": "none" if space is None else _space_digest(space),
    }


def target_and_folds_identity(y: np.ndarray,
                              splits: Sequence[tuple[np.ndarray, np.ndarray]]) -> dict[str, str]:
    """The part of :func:`run_identity` a bare search run knows (no features or space)."""
    return {"y": _array_digest(y), "folds": _folds_digest(splits)}


def changed_components(stored: Mapping[str, str] | None,
                       current: Mapping[str, str]) -> list[str]:
    """The components of :data:`COMPONENTS` recorded in both identities that differ.

    Components missing from one of them (a folder written by an older version that
    recorded fewer, a bare search run that knows only the target and folds) are not compared.
    """
    if not stored:
        return []
    return [key for key in COMPONENTS if key in stored and key in current
            and stored[key] != current[key]]


def check_identity(stored: Mapping[str, str] | None, current: Mapping[str, str], *,
                   where: str, method: str | None = None) -> None:
    """Raise :class:`RunFolderMismatch` naming every component that differs
    (:func:`changed_components`). ``method`` names a call on a fitted estimator
    (``reselect``), which needs ``fit``'s own data rather than a new run folder.
    """
    changed = changed_components(stored, current)
    if not changed:
        return
    what = ", ".join(COMPONENTS[key] for key in changed)
    if method is not None:
        raise RunFolderMismatch(
            f"{method}() selects again on the out-of-fold predictions of {where}, so it needs "
            f"the X, y, sample_weight and groups given to fit, as they were given; {what} "
            "changed. To use other data, fit again.")
    raise RunFolderMismatch(
        f"The run in {where} was computed on different data or models: {what} changed, so "
        "its stored out-of-fold predictions cannot be reused for this fit. Use a new "
        "'run_dir' or storage (with SearchRun, a new study_name) for the new data, or fit "
        "with the same data, cv, random_state, sample_weight, groups and models as before."
    )


def scoring_key(scorer: Any) -> str:
    """A stable text for a :class:`~ensemble_hpo.metrics.PredictionScorer`'s metric.

    Scorer names are kept as they are (they can be rebuilt from the key); callables
    are described by their repr (``make_scorer(...)``) or qualified name. A scorer that
    reads the user's labels (``classes`` set, see ``metrics.stage_scoring``) is marked
    with :data:`USER_LABELS`: ``"f1"`` of runs before labels were decoded scored the
    encoded ones, another metric, so such a study is rescored on resume.
    """
    scoring = scorer.scoring
    suffix = USER_LABELS if getattr(scorer, "classes", None) is not None else ""
    if isinstance(scoring, str):
        return scoring + suffix
    if hasattr(scoring, "_score_func"):
        return f"callable:{scoring!r}{suffix}"
    return f"callable:{_qualname(scoring)}{suffix}"


USER_LABELS = "@user_labels"
