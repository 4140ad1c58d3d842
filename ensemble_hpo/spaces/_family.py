"""A model family: an estimator class, its hyperparameter space and how to preprocess for it."""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import optuna
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)

from ensemble_hpo._checks import CLASSIFICATION
from ensemble_hpo.spaces._target import StandardizedTargetRegressor

__all__ = ["ModelFamily", "suggest"]

PARAM_SEPARATOR = "__"


def suggest(trial: optuna.trial.BaseTrial, name: str, distribution: BaseDistribution) -> Any:
    """Ask ``trial`` for ``name`` through the public ``suggest_*`` API of its distribution type."""
    if isinstance(distribution, FloatDistribution):
        return trial.suggest_float(
            name, distribution.low, distribution.high, log=distribution.log, step=distribution.step
        )
    if isinstance(distribution, IntDistribution):
        return trial.suggest_int(
            name, distribution.low, distribution.high, log=distribution.log, step=distribution.step
        )
    if isinstance(distribution, CategoricalDistribution):
        return trial.suggest_categorical(name, distribution.choices)
    raise TypeError(
        "The 'distribution' parameter must be an Int, Float or Categorical distribution. "
        f"Got {type(distribution).__name__} instead."
    )


@dataclass(frozen=True)
class ModelFamily:
    """One model family of the search space.

    Parameters
    ----------
    name : str
        Short identifier (``"xgboost"``, ``"random_forest"``...), also the prefix
        of its parameters in the Optuna study (``"xgboost__max_depth"``).
    classifier, regressor : callable or None
        Estimator class (or factory) for each task; ``None`` when the family
        does not support that task.
    params : mapping of str to optuna distribution
        The tunable hyperparameters, passed to the estimator as keyword arguments.
    fixed : mapping
        Keyword arguments always passed (may be overridden by tuned params).
    conditions : mapping
        ``{child: {parent: [allowed values]}}``: ``child`` is only tuned when
        ``parent`` takes one of the allowed values (conditional spaces).
    preprocessing : str
        Preprocessing kind for :func:`ensemble_hpo._preprocessing.make_preprocessor`
        (``"tree_native"``, ``"tree"``, ``"linear"`` or ``"none"``).
    portfolio : sequence of mappings
        Known-good configurations tried first in warm-started searches.
    transform : callable, optional
        Maps sampled params to estimator kwargs when they are not one-to-one
        (e.g. an MLP's layer width and depth to ``hidden_layer_sizes``).
    relative_cost : float, default=1.0
        Rough training cost compared with a boosted-tree candidate; cheap families'
        portfolio configurations run first so a short budget still yields candidates.
    requires : mapping of str to str
        Optional packages the family imports, as ``{module: pip install command}``;
        :meth:`check_available` names the command when one is missing.
    scale_target : bool, default=False
        For regression, fit the estimator on the target standardised with each training
        fold's mean and standard deviation, and map its predictions back
        (:class:`~ensemble_hpo.spaces.StandardizedTargetRegressor`). The built-in families
        set it: their hyperparameters then mean the same on every table, whatever the
        target's units and offset. Leave it off for an objective that needs the raw target
        (Poisson, Tweedie or gamma losses need non-negative or positive values).
    base : str or None, default=None
        The built-in family a spec started from (:func:`family_from_spec` sets it); None for
        the built-ins themselves and families built from classes. Not compared: a spec that
        changes nothing equals its base.

    Examples
    --------
    >>> from optuna.distributions import FloatDistribution
    >>> from sklearn.linear_model import Ridge
    >>> fam = ModelFamily("ridge", regressor=Ridge,
    ...                   params={"alpha": FloatDistribution(1e-3, 1e3, log=True)})
    >>> fam.build("regression", {"alpha": 2.0})
    Ridge(alpha=2.0)
    """

    name: str
    classifier: Callable[..., Any] | None = None
    regressor: Callable[..., Any] | None = None
    params: Mapping[str, BaseDistribution] = field(default_factory=dict)
    fixed: Mapping[str, Any] = field(default_factory=dict)
    conditions: Mapping[str, Mapping[str, Sequence[Any]]] = field(default_factory=dict)
    preprocessing: str = "linear"
    portfolio: Sequence[Mapping[str, Any]] = ()
    transform: Callable[[dict[str, Any]], dict[str, Any]] | None = None
    relative_cost: float = 1.0
    requires: Mapping[str, str] = field(default_factory=dict)
    scale_target: bool = False
    base: str | None = field(default=None, compare=False)

    def supports(self, task: str) -> bool:
        return (self.classifier if task == CLASSIFICATION else self.regressor) is not None

    def check_available(self) -> None:
        """Raise an ``ImportError`` naming the ``pip install`` command if a required package is missing."""
        for module, command in self.requires.items():
            try:
                importlib.import_module(module)
            except ImportError as exc:
                raise missing_package_error(self.name, module, command) from exc

    def is_active(self, param: str, values: Mapping[str, Any]) -> bool:
        """Whether ``param`` is tuned given the already chosen ``values``."""
        conditions = self.conditions.get(param, {})
        return all(values.get(parent) in allowed for parent, allowed in conditions.items())

    def suggest(self, trial: optuna.trial.BaseTrial, *, prefix: bool = True) -> dict[str, Any]:
        """Sample this family's hyperparameters (un-prefixed names) from ``trial``."""
        values: dict[str, Any] = {}
        for param, distribution in self._ordered_params():
            if self.is_active(param, values):
                name = f"{self.name}{PARAM_SEPARATOR}{param}" if prefix else param
                values[param] = suggest(trial, name, distribution)
        return values

    def _ordered_params(self) -> list[tuple[str, BaseDistribution]]:
        # Parents before children so conditions can be evaluated while sampling.
        children = [p for p in self.params if p in self.conditions]
        parents = [p for p in self.params if p not in self.conditions]
        return [(p, self.params[p]) for p in parents + children]

    def build(self, task: str, params: Mapping[str, Any], *, random_state: int | None = None) -> Any:
        """Instantiate the estimator for ``task`` with ``params`` on top of ``fixed``."""
        factory = self.classifier if task == CLASSIFICATION else self.regressor
        if factory is None:
            raise ValueError(f"The model family {self.name!r} does not support {task}.")
        kwargs = {**self.fixed, **params}
        if self.transform is not None:
            kwargs = self.transform(kwargs)
        if random_state is not None and _accepts(factory, "random_state"):
            kwargs.setdefault("random_state", random_state)
        estimator = factory(**kwargs)
        if self.scale_target and task != CLASSIFICATION:
            return StandardizedTargetRegressor(regressor=estimator)
        return estimator


def missing_package_error(family: str, module: str, command: str) -> ImportError:
    """The error raised when an optional package of a model family is not installed."""
    return ImportError(
        f"The {family!r} model family needs the optional package {module!r}, which is not installed. "
        f"Install it with: {command}"
    )


def _accepts(factory: Callable[..., Any], keyword: str) -> bool:
    try:
        parameters = inspect.signature(factory).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(p.name == keyword or p.kind is p.VAR_KEYWORD for p in parameters)
