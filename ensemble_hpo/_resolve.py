"""Turn the estimators' short-hand parameters (names, ints) into stage objects."""

from __future__ import annotations

from typing import Any

from sklearn.base import clone

__all__ = ["check_stage_params", "make_fuser", "make_selector", "make_trial_value"]


def _with_run_defaults(cls: type, options: dict[str, Any], *, scoring: Any,
                       random_state: int | None) -> Any:
    """``cls(**options)``, with the run's metric and seed wherever the class takes them.

    Selectors and fusers that learn optimise the user's ``scoring`` (OptimizedWeights
    through the equivalent ``loss``), and seeded ones follow ``random_state``; explicit
    options win.
    """
    from ensemble_hpo.fusion._optimized import loss_for_scoring

    params = cls().get_params()
    defaults = {"scoring": scoring, "random_state": random_state, "loss": loss_for_scoring(scoring)}
    kwargs = {k: v for k, v in defaults.items() if k in params}
    return cls(**{**kwargs, **options})


def _resolve_named(value: Any, registry: dict[str, type], what: str, noun: str, method: str, *,
                   scoring: Any, random_state: int | None, options: dict[str, Any],
                   labels: tuple[str, Any] | None = None) -> Any:
    if isinstance(value, str):
        if value not in registry:
            raise ValueError(f"The '{what}' parameter must be one of {sorted(registry)} or a "
                             f"{noun} object. Got {value!r} instead.")
        return _with_run_defaults(registry[value], options, scoring=scoring,
                                  random_state=random_state)
    if hasattr(value, method):
        return _with_run_scoring(clone(value), scoring, labels)
    raise ValueError(f"The '{what}' parameter must be a name or a {noun} object with a {method} "
                     f"method. Got {value!r} instead.")


def _with_run_scoring(stage: Any, scoring: Any, labels: tuple[str, Any] | None = None) -> Any:
    """A stage object optimises the run's metric unless it was given its own.

    Left at None, its ``scoring`` (or ``OptimizedWeights``' ``loss``) is the run's, as for a
    stage given by name (an object kept its default: ``selection=GreedySelector()`` selected
    by log loss under ``scoring="accuracy"``). One made with the run's metric by name
    (``scoring="f1"``, as YAML builds them) gets the run's scorer, which reads the user's
    labels (see ``stage_scoring``); so does its own metric, given ``labels`` (the task and
    the user's classes).
    """
    from ensemble_hpo.fusion._optimized import loss_for_scoring
    from ensemble_hpo.metrics import PredictionScorer, stage_scoring

    params = stage.get_params(deep=False)
    named = scoring.scoring if isinstance(scoring, PredictionScorer) else scoring
    updates = {}
    own = params.get("scoring")
    if scoring is not None and "scoring" in params and (own is None or _is(own, named)):
        updates["scoring"] = scoring
    elif own is not None and labels is not None:
        updates["scoring"] = stage_scoring(own, *labels)
    if scoring is not None and "loss" in params and (params["loss"] is None or _is(params["loss"], named)):
        updates["loss"] = loss_for_scoring(scoring)
    return stage.set_params(**updates) if updates else stage


def _is(value: Any, scoring: Any) -> bool:
    """The same metric: the same name, or a scorer object equal to it up to a clone's copy."""
    if value is scoring or (isinstance(value, str) and value == scoring):
        return True
    return not isinstance(value, str) and callable(value) and repr(value) == repr(scoring)


def make_selector(selection: Any, random_state: int | None, scoring: Any = None,
                  options: dict[str, Any] | None = None, labels: tuple[str, Any] | None = None) -> Any:
    """A selector by name (:data:`ensemble_hpo.selection.SELECTORS`), optimising ``scoring``.

    ``labels`` (task, classes) makes a selector object's own label-reading metric score the
    user's labels.
    """
    from ensemble_hpo.selection import SELECTORS

    return _resolve_named(selection, SELECTORS, "selection", "selector", "fit", scoring=scoring,
                          random_state=random_state, options=options or {}, labels=labels)


def make_trial_value(objective: Any, selector: Any) -> Any:
    """The search objective by name (:data:`ensemble_hpo.search.TRIAL_VALUES`) or object.

    ``"ensemble"`` measures each candidate's gain with ``selector``, the fit's own selector.
    """
    from ensemble_hpo.search import TRIAL_VALUES, EnsembleGain, TrialValue

    if isinstance(objective, TrialValue):
        return objective
    if objective not in TRIAL_VALUES:
        raise ValueError(f"The 'objective' parameter must be one of {sorted(TRIAL_VALUES)} or a "
                         f"TrialValue. Got {objective!r} instead.")
    cls = TRIAL_VALUES[objective]
    return cls(selector) if cls is EnsembleGain else cls()


def make_fuser(fusion: Any, random_state: int | None, scoring: Any = None,
               options: dict[str, Any] | None = None, labels: tuple[str, Any] | None = None) -> Any:
    """A fuser by name (:data:`ensemble_hpo.fusion.FUSERS`); learned ones fit in ``scoring``."""
    from ensemble_hpo.fusion import FUSERS

    return _resolve_named(fusion, FUSERS, "fusion", "fuser", "combine", scoring=scoring,
                          random_state=random_state, options=options or {}, labels=labels)


def check_stage_params(selector: Any, fuser: Any, task: str) -> None:
    """Check the library stages' options without data, before the search.

    Selectors and fusers check their options when fitted, after the whole search: a
    ``max_iter=0`` or a misspelt scorer there cost every trained candidate (all of them
    without a ``run_dir``). Other libraries' stage objects are checked when fitted.
    """
    from ensemble_hpo.fusion import BaseFuser
    from ensemble_hpo.selection import BaseSelector

    if isinstance(selector, BaseSelector):
        selector._validate_params(task)  # noqa: SLF001 - the selectors' own check, run early
    if isinstance(fuser, BaseFuser):
        fuser._check_params(task)  # noqa: SLF001 - the fusers' own check, run early
