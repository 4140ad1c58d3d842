"""The conditional multi-family search space: the family is itself a hyperparameter."""

from __future__ import annotations

import importlib
import inspect
import math
import numbers
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import optuna
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)

from ensemble_hpo._checks import CLASSIFICATION, REGRESSION
from ensemble_hpo._compat import distribution_contains
from ensemble_hpo._preprocessing import PREPROCESSING_KINDS
from ensemble_hpo.spaces._builtin import (
    BUILTIN_FAMILIES,
    DEFAULT_FAMILIES,
    LOG_TARGET_FAMILIES,
    LOG_TARGET_SUFFIX,
    REGRESSION_DEFAULT_FAMILIES,
    get_family,
    log_target_suits,
)
from ensemble_hpo.spaces._early_stopping import _fit_accepts
from ensemble_hpo.spaces._family import PARAM_SEPARATOR, ModelFamily
from ensemble_hpo.spaces._portfolio import (
    DEFAULT_KIND,
    WARM_START_KINDS,
    mined_configs,
    mined_families,
)

__all__ = ["SearchSpace", "distribution_from_spec", "family_from_spec"]

FAMILY_PARAM = "family"


@dataclass(frozen=True)
class SearchSpace:
    """A set of model families for one task, sampled as a conditional space.

    Trials first choose ``"family"`` and then only that family's parameters,
    named ``"{family}__{param}"`` so that samplers see one distribution per name.

    Examples
    --------
    >>> space = SearchSpace.from_models(["random_forest", "logistic"], task="classification")
    >>> space.family_names
    ('random_forest', 'logistic')
    """

    families: tuple[ModelFamily, ...]
    task: str

    @classmethod
    def from_models(cls, models: Any, *, task: str, y: Any = None, weighted: bool = False) -> SearchSpace:
        """Build from ``"auto"``, family names, :class:`ModelFamily` objects or spec dicts.

        With ``"auto"``, a regression target ``y`` that is non-negative and right-skewed
        (:func:`~ensemble_hpo.spaces.log_target_suits`) adds the log-target twins
        (``"xgboost_log"``...) of the default families. ``weighted`` (a fit with
        ``sample_weight``) leaves out of ``"auto"`` the families whose estimator cannot take
        weights, with a warning, and refuses them when named.
        """
        if isinstance(models, SearchSpace):
            if models.task != task:
                raise ValueError(f"The 'models' parameter must be a SearchSpace for {task}. Got "
                                 f"one built for {models.task} instead.")
            return models
        if models is None or (isinstance(models, str) and models == "auto"):
            names = list(DEFAULT_FAMILIES)
            if task == REGRESSION:
                names += REGRESSION_DEFAULT_FAMILIES
            if task == REGRESSION and y is not None and log_target_suits(y):
                names += [f"{n}{LOG_TARGET_SUFFIX}" for n in LOG_TARGET_FAMILIES if n in names]
            families = [f for f in map(get_family, names) if f.supports(task)]
            if weighted:
                families = _taking_weights(families, task)
        else:
            if isinstance(models, (str, ModelFamily, Mapping)):
                models = [models]
            families = [_as_family(m) for m in models]
            unsupported = [f.name for f in families if not f.supports(task)]
            if unsupported:
                raise ValueError(
                    f"The 'models' parameter must only name families that support {task}. "
                    f"Got {unsupported} instead."
                )
        if not families:
            raise ValueError("The 'models' parameter must name at least one model family. Got none.")
        unweighted = [f.name for f in families if weighted and not _takes_weights(f, task)]
        if unweighted:
            # Every candidate of such a family failed, each using up a trial (audit: 14 of 20).
            raise ValueError(
                "The 'models' parameter must name families whose estimators accept sample_weight "
                f"when it is given. Got {unweighted} instead; drop them or fit without weights.")
        for family in families:
            # Fail before any training rather than record every candidate as failed.
            family.check_available()
            _check_family_class(family, task)
        if task == REGRESSION and y is not None:
            _check_log_target(families, y)
        names = [f.name for f in families]
        if len(set(names)) != len(names):
            raise ValueError(f"The 'models' parameter must not repeat a family. Got {names} instead.")
        return cls(families=tuple(families), task=task)

    @property
    def family_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.families)

    def family(self, name: str) -> ModelFamily:
        for f in self.families:
            if f.name == name:
                return f
        raise KeyError(name)

    def suggest(self, trial: optuna.trial.BaseTrial) -> tuple[ModelFamily, dict[str, Any]]:
        """Sample a family and its hyperparameters from ``trial``."""
        name = trial.suggest_categorical(FAMILY_PARAM, list(self.family_names))
        family = self.family(name)
        return family, family.suggest(trial)

    def contains(self, flat: Mapping[str, Any]) -> bool:
        """Whether study parameters ``flat`` are a point of this space (family, names, ranges)."""
        family = flat.get(FAMILY_PARAM)
        if family not in self.family_names:
            return False
        return _fits(self.family(family), self.from_trial_params(flat)[1])

    def to_trial_params(self, family: str, params: Mapping[str, Any]) -> dict[str, Any]:
        """Flatten ``(family, params)`` to the study's parameter names (for enqueueing)."""
        flat = {FAMILY_PARAM: family}
        flat.update({f"{family}{PARAM_SEPARATOR}{k}": v for k, v in params.items()})
        return flat

    @staticmethod
    def from_trial_params(flat: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
        family = flat[FAMILY_PARAM]
        prefix = f"{family}{PARAM_SEPARATOR}"
        return family, {k[len(prefix):]: v for k, v in flat.items() if k.startswith(prefix)}

    def portfolio(self, kind: str = "portfolio") -> list[dict[str, Any]]:
        """Configurations a warm-started search runs first, as study parameters (for enqueueing).

        ``kind="portfolio"`` (the default) is the library's recommended warm start, today
        ``"defaults"`` (``ensemble_hpo.spaces._portfolio.DEFAULT_KIND``): the mined list is
        not yet ahead of it at 30 s and 60 s in the leave-one-table-out simulation
        (``benchmarks/results/portfolio_loto.md``).

        ``kind="defaults"``: every family's own ``portfolio`` (the library defaults), cheapest
        families first, interleaved (one per family, then the second ones...).

        ``kind="mined"``: the mined portfolio shipped in
        ``ensemble_hpo/spaces/portfolio.json`` for this task, in its order, restricted to this
        space's families; for ``models="auto"`` the list the leave-one-table-out simulation
        evaluated (on the other tables of the task), with regression's MLP, which was not
        mined, interleaved as below. Only built-in
        families used unchanged take part (a family built from a spec, even with ``base=``,
        may not accept the mined values, and its author's ``portfolio`` says what to try
        first). Families the file was not mined over (``svm``, ``mlp``, ``lightgbm``,
        ``catboost``, user families) and customised ones contribute their own ``portfolio``
        (in ``"defaults"`` order) interleaved with the mined list (mined, own, mined, own...),
        so that every family of the space is tried early. A family the file was mined over
        but that has no mined configuration for this task (mining found it added nothing per
        second on average) gets its own ``portfolio`` after the mined list. A mined
        configuration outside its family's distributions is skipped.
        """
        if kind not in WARM_START_KINDS:
            raise ValueError(
                f"The portfolio kind must be one of {list(WARM_START_KINDS)}. Got {kind!r} instead."
            )
        if kind == "portfolio":
            kind = DEFAULT_KIND
        if kind == "defaults":
            return self._default_portfolio(self.families)
        covered = {f.name: f for f in self.families
                   if f.name in mined_families() and BUILTIN_FAMILIES.get(f.name) == f}
        mined = [(name, params) for name, params in mined_configs(self.task)
                 if name in covered and _fits(covered[name], params)]
        used = {name for name, _ in mined}
        own = self._default_portfolio([f for f in self.families if f.name not in covered])
        merged: list[dict[str, Any]] = []
        for i in range(max(len(mined), len(own))):
            if i < len(mined):
                merged.append(self.to_trial_params(*mined[i]))
            if i < len(own):
                merged.append(own[i])
        unmined = [f for name, f in covered.items() if name not in used]
        return merged + self._default_portfolio(unmined)

    def _default_portfolio(self, families: Any) -> list[dict[str, Any]]:
        families = sorted(families, key=lambda f: f.relative_cost)
        per_family = [[self.to_trial_params(f.name, p) for p in f.portfolio] for f in families]
        depth = max((len(p) for p in per_family), default=0)
        return [p[i] for i in range(depth) for p in per_family if i < len(p)]


def _fits(family: ModelFamily, params: Mapping[str, Any]) -> bool:
    """Whether ``params`` is a point of ``family``'s space (known names, in range, active ones set)."""
    if set(params) - set(family.params):
        return False
    for name, distribution in family.params.items():
        active = family.is_active(name, params)
        if (name in params) != active:
            return False
        if active and not distribution_contains(distribution, params[name]):
            return False
    return True


def _as_family(model: Any) -> ModelFamily:
    if isinstance(model, ModelFamily):
        return model
    if isinstance(model, str):
        return get_family(model)
    if isinstance(model, Mapping):
        return family_from_spec(model)
    raise ValueError(
        "The 'models' parameter must contain family names, ModelFamily objects or spec dicts. "
        f"Got {type(model).__name__} instead."
    )


_SPEC_KEYS = {"float": {"type", "low", "high", "log", "step"},
              "int": {"type", "low", "high", "log", "step"},
              "categorical": {"type", "choices"}}


def distribution_from_spec(name: str, spec: Any) -> BaseDistribution:
    """Turn a YAML-style parameter spec into an Optuna distribution.

    ``{"type": "float", "low": 0.01, "high": 1, "log": true}``, ``{"type": "int", ...}``,
    ``{"type": "categorical", "choices": [...]}`` or a plain list (categorical). Read
    strictly: an unknown key (``lg``), a ``log`` that is not a bool, an int bound that is not
    whole or choices that are not a list would otherwise search another space silently.
    """
    if isinstance(spec, BaseDistribution):
        return spec
    if isinstance(spec, (list, tuple)):
        return CategoricalDistribution(list(spec))
    if not isinstance(spec, Mapping) or spec.get("type") not in _SPEC_KEYS:
        raise ValueError(
            f"The spec of parameter {name!r} must be a list of choices or a mapping with a 'type' "
            f"key ('int', 'float' or 'categorical'). Got {spec!r} instead."
        )
    kind = spec["type"]
    unknown = sorted(set(spec) - _SPEC_KEYS[kind])
    if unknown:
        raise ValueError(f"The spec of parameter {name!r} must only have the keys "
                         f"{sorted(_SPEC_KEYS[kind])}. Got {unknown} instead.")
    missing = sorted(_SPEC_KEYS[kind] - set(spec) - {"log", "step"})
    if missing:
        raise ValueError(f"The spec of parameter {name!r} misses the key {missing[0]!r}.")
    if kind == "categorical":
        if not isinstance(spec["choices"], (list, tuple)) or not spec["choices"]:
            raise ValueError(f"The 'choices' of parameter {name!r} must be a non-empty list. "
                             f"Got {spec['choices']!r} instead.")
        return CategoricalDistribution(list(spec["choices"]))
    log = spec.get("log", False)
    if not isinstance(log, bool):
        raise ValueError(f"The 'log' of parameter {name!r} must be true or false. Got {log!r} instead.")
    number = _spec_int if kind == "int" else _spec_float
    low, high = number(name, "low", spec["low"]), number(name, "high", spec["high"])
    step = None if spec.get("step") is None else number(name, "step", spec["step"])
    try:
        if kind == "float":
            return FloatDistribution(low, high, log=log, step=step)
        return IntDistribution(low, high, log=log, step=1 if step is None else step)
    except ValueError as exc:
        raise ValueError(f"The spec of parameter {name!r} is invalid: {exc}") from None


def _spec_float(name: str, key: str, value: Any) -> float:
    # PyYAML reads an exponent without a dot (1e-3) as a string: a number all the same.
    number = _parsed_number(value)
    if number is None:
        raise ValueError(f"The {key!r} of parameter {name!r} must be a finite number. Got "
                         f"{value!r} instead.")
    return number


def _spec_int(name: str, key: str, value: Any) -> int:
    number = _parsed_number(value)
    if number is None or not number.is_integer():
        raise ValueError(f"The {key!r} of int parameter {name!r} must be a whole number. "
                         f"Got {value!r} instead.")
    return int(number)


def _parsed_number(value: Any) -> float | None:
    """A finite float from a number or a numeric string; None for anything else (bools too)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real | str):
        return None
    try:
        number = float(value)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def _import_object(path: str) -> Any:
    module, _, attr = path.rpartition(".")
    if not module:
        raise ValueError(f"The estimator path must look like 'package.module.Class'. Got {path!r} instead.")
    try:
        return getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as exc:
        raise ValueError(f"The estimator {path!r} could not be imported: {exc}") from None


def _is_estimator_class(obj: Any) -> bool:
    # Duck-typed like scikit-learn's clone (not issubclass(BaseEstimator)) so that
    # XGBoost, LightGBM and CatBoost classes pass.
    return isinstance(obj, type) and all(callable(getattr(obj, m, None)) for m in ("fit", "get_params"))


def _kind(obj: Any) -> str:
    if isinstance(obj, type):
        return "a class without fit and get_params"
    if inspect.isroutine(obj):
        return "a function"
    if inspect.ismodule(obj):
        return "a module"
    return f"a {type(obj).__name__} object"


def import_estimator_class(path: str, role: str) -> type:
    """Import the estimator class ``path`` names for the ``role`` key of a family spec.

    A spec (possibly from a YAML file) is called with its ``fixed`` and sampled
    parameters, so any other callable would be run with arguments the file chooses
    (``subprocess.run`` with ``fixed: {args: [...]}``). Only classes with ``fit`` and
    ``get_params`` are accepted, checked here, before any training.
    """
    obj = _import_object(path)
    if not _is_estimator_class(obj):
        raise ValueError(
            f"The {role!r} parameter must name an estimator class (with fit and get_params). "
            f"Got {path!r}, {_kind(obj)}, instead."
        )
    return obj


def family_from_spec(spec: Mapping[str, Any]) -> ModelFamily:
    """Build a family from a spec dict (used for user-defined spaces in Python and YAML).

    Keys: ``name``; either ``base`` (a built-in family to override) or ``classifier`` /
    ``regressor`` (import paths of estimator classes, or classes or factories given in
    Python); ``params`` (name → distribution spec);
    optional ``fixed``, ``conditions``, ``preprocessing``, ``portfolio`` and ``scale_target``
    (regression on the standardised target; a ``base`` family's setting by default, else off).
    """
    spec = dict(spec)
    base = get_family(spec.pop("base")) if "base" in spec else None
    name = spec.pop("name", base.name if base else None)
    if not name:
        raise ValueError("A model family spec must have a 'name' (or a 'base' built-in family).")
    unknown = set(spec) - {"classifier", "regressor", "params", "fixed", "conditions", "preprocessing",
                           "portfolio", "scale_target"}
    if unknown:
        raise ValueError(f"The model family spec {name!r} has unknown keys {sorted(unknown)}.")
    if base is None and not ({"classifier", "regressor"} & set(spec)):
        # It was reported as a family that does not support the task (audit).
        raise ValueError(f"The model family spec {name!r} must give a 'base' built-in family or "
                         "a 'classifier' and/or 'regressor' estimator class. Got neither.")
    factories = {k: import_estimator_class(v, k) if isinstance(v, str) else v
                 for k, v in spec.items() if k in ("classifier", "regressor")}
    for key in ("params", "fixed", "conditions"):
        if not isinstance(spec.get(key) or {}, Mapping):
            raise ValueError(f"The {key!r} of model family spec {name!r} must be a mapping. "
                             f"Got {spec[key]!r} instead.")
    params = {k: distribution_from_spec(k, v) for k, v in (spec.get("params") or {}).items()}
    _check_spec_classes(name, factories, [*params, *(spec.get("fixed") or {}),
                                          *(k for config in spec.get("portfolio", ()) for k in config)])
    defaults = base or ModelFamily(name)
    _check_spec_parts(name, spec, params or defaults.params)
    own_fixed = dict(spec.get("fixed") or {})
    both = sorted(set(own_fixed) & set(params))
    if both:
        raise ValueError(f"The model family spec {name!r} both fixes and searches {both}: give "
                         "each in 'fixed' or in 'params', not in both.")
    searched, conditions, portfolio = _pinned(
        own_fixed, params or defaults.params,
        spec.get("conditions", defaults.conditions if not params else {}),
        spec["portfolio"] if "portfolio" in spec else _points_of(defaults.portfolio, params))
    return ModelFamily(
        name=name,
        classifier=factories.get("classifier", defaults.classifier),
        regressor=factories.get("regressor", defaults.regressor),
        params=searched,
        # A base family's fixed settings (n_jobs=1, early stopping...) stay unless overridden.
        fixed={**defaults.fixed, **own_fixed},
        conditions=conditions,
        preprocessing=spec.get("preprocessing", defaults.preprocessing),
        portfolio=portfolio,
        transform=defaults.transform if not params else None,
        relative_cost=defaults.relative_cost,
        requires=defaults.requires,
        scale_target=_spec_flag(name, spec, "scale_target", defaults.scale_target),
        base=None if base is None else base.name,
    )


def _points_of(portfolio: Sequence[Mapping[str, Any]],
               params: Mapping[str, Any]) -> tuple[dict[str, Any], ...]:
    """A base family's portfolio in a spec's own ``params``: each entry's values for the
    searched parameters, where all of them are in the new ranges (a spec with ``params`` had
    no warm start at all; audit). Without ``params`` the portfolio is the base's."""
    if not params:
        return tuple(dict(config) for config in portfolio)
    points: list[dict[str, Any]] = []
    for config in portfolio:
        point = {k: v for k, v in config.items() if k in params}
        if point and point not in points and all(
                distribution_contains(params[k], v) for k, v in point.items()):
            points.append(point)
    return tuple(points)


def _pinned(fixed: Mapping[str, Any], params: Mapping[str, Any],
            conditions: Mapping[str, Mapping[str, Sequence[Any]]],
            portfolio: Sequence[Mapping[str, Any]]) -> tuple[dict, dict, tuple]:
    """A base family's search with the spec's ``fixed`` values taking its parameters out.

    Sampled values override fixed ones when both are given, so ``base: random_forest`` with
    ``fixed: {max_depth: 2}`` searched depths None to 16 without a word (audit). A child
    conditioned on a fixed parent is tuned whenever the fixed value allows it, else never.
    """
    pinned = set(fixed) & set(params)
    never = {child for child, parents in conditions.items()
             if any(p in pinned and fixed[p] not in allowed for p, allowed in parents.items())}
    gone = pinned | never
    kept_conditions = {}
    for child, parents in conditions.items():
        left = {p: allowed for p, allowed in parents.items() if p not in pinned}
        if child not in gone and left:
            kept_conditions[child] = left
    configs = tuple({k: v for k, v in config.items() if k not in gone} for config in portfolio)
    return {k: v for k, v in params.items() if k not in gone}, kept_conditions, configs


def _spec_flag(name: str, spec: Mapping[str, Any], key: str, default: bool) -> bool:
    value = spec.get(key, default)
    if not isinstance(value, bool):
        raise ValueError(f"The {key!r} of model family spec {name!r} must be true or false. "
                         f"Got {value!r} instead.")
    return value


def _check_spec_parts(name: str, spec: Mapping[str, Any], params: Mapping[str, Any]) -> None:
    """Conditions, preprocessing and portfolio entries that would silently do nothing."""
    for child, parents in (spec.get("conditions") or {}).items():
        named = [child, *parents] if isinstance(parents, Mapping) else [child]
        unknown = [p for p in named if p not in params]
        lists = isinstance(parents, Mapping) and all(isinstance(v, list | tuple)
                                                     for v in parents.values())
        if not lists or unknown:
            raise ValueError(
                f"The 'conditions' of model family spec {name!r} must map a tuned parameter to "
                f"{{parent parameter: [allowed values]}} among {sorted(params)}. Got "
                f"{child!r}: {parents!r} instead.")
    kind = spec.get("preprocessing")
    if kind is not None and kind not in PREPROCESSING_KINDS:
        raise ValueError(f"The 'preprocessing' of model family spec {name!r} must be one of "
                         f"{PREPROCESSING_KINDS}. Got {kind!r} instead.")
    for config in spec.get("portfolio", ()):
        untuned = sorted(set(config) - set(params))
        if untuned:
            raise ValueError(
                f"The 'portfolio' of model family spec {name!r} must only set tuned parameters "
                f"({sorted(params)}); set the others in 'fixed'. Got {untuned} instead.")
        # Enqueued as they are, a value outside its range trained a candidate outside the
        # space (C=1000 for C in [0.01, 0.1]) or failed one that counted against n_trials.
        outside = {k: v for k, v in config.items() if not distribution_contains(params[k], v)}
        if outside:
            raise ValueError(
                f"The 'portfolio' of model family spec {name!r} must give values inside the "
                f"searched distributions ({ {k: params[k] for k in outside} }). Got {outside} "
                "instead.")


def _takes_weights(family: ModelFamily, task: str) -> bool:
    """Whether the family's estimator class takes ``sample_weight`` in ``fit`` (a factory
    function cannot be told before it is called: assumed to)."""
    factory = family.classifier if task == CLASSIFICATION else family.regressor
    return not isinstance(factory, type) or _fit_accepts(factory, "sample_weight")


def _taking_weights(families: list[ModelFamily], task: str) -> list[ModelFamily]:
    left_out = [f.name for f in families if not _takes_weights(f, task)]
    if left_out:
        warnings.warn(f"models='auto' leaves out {left_out}: their estimators do not accept "
                      "sample_weight.", UserWarning, stacklevel=4)
    return [f for f in families if f.name not in left_out]


def _check_family_class(family: ModelFamily, task: str) -> None:
    """:func:`_check_spec_classes` for the estimator class ``task`` uses, whatever made the
    family (a spec with ``base``, a ``ModelFamily`` object): its parameters are checked
    unless a ``transform`` maps them to the estimator's (MLP's ``width`` and ``depth``)."""
    role = "classifier" if task == CLASSIFICATION else "regressor"
    keys = [] if family.transform is not None else [
        *family.params, *family.fixed, *(k for config in family.portfolio for k in config)]
    _check_spec_classes(family.name, {role: getattr(family, role)}, keys)


def _check_spec_classes(name: str, factories: Mapping[str, Any], keys: list[str]) -> None:
    """Refuse before training what would fail every candidate of a spec family: a parameter
    its estimator class does not take, a classifier without ``predict_proba`` (seen: each
    such candidate failed and ``fit`` went on with the other families, silently)."""
    for role, factory in factories.items():
        if not isinstance(factory, type):
            continue  # a factory function: its parameters are its own business
        signature = inspect.signature(factory.__init__).parameters
        if not any(p.kind == inspect.Parameter.VAR_KEYWORD for p in signature.values()):
            unknown = sorted({k for k in keys if k not in signature})
            if unknown:
                raise ValueError(
                    f"The model family {name!r} must only set parameters its {role} "
                    f"{factory.__name__} takes. Got {unknown} instead.")
        if role == "classifier" and not hasattr(factory, "predict_proba"):
            raise ValueError(
                f"The model family {name!r} must name a classifier with predict_proba "
                f"(ensembles average probabilities). Got {factory.__name__} instead.")


def _check_log_target(families: list[ModelFamily], y: Any) -> None:
    """Refuse a target log-target twins cannot fit before training, not as failed candidates."""
    twins = [f.name for f in families
             if f.name.endswith(LOG_TARGET_SUFFIX) and BUILTIN_FAMILIES.get(f.name) is f]
    low = float(np.min(y)) if len(y) else 0.0
    if twins and low <= -1:
        raise ValueError(
            f"The 'models' parameter names log-target families {twins}, which need a target "
            f"greater than -1. Got a target with minimum {low:g} instead.")
