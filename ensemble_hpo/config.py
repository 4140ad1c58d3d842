"""Validated run configuration (YAML → pydantic) and its mapping to the estimators.

This is the one place that maps YAML names to classes; the core only sees objects.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Collection, Hashable
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictInt,
    ValidationError,
    field_validator,
    model_validator,
)

from ensemble_hpo._checks import CLASSIFICATION
from ensemble_hpo._params import MAX_SEED

__all__ = ["ConfigError", "RunConfig", "apply_overrides", "load_config"]


def _optuna_pruner(class_name: str, **params: Any) -> Callable[[], Any]:
    def make() -> Any:
        import optuna

        return getattr(optuna.pruners, class_name)(**params)
    return make


#: YAML's ``search.pruner`` names (name -> factory of the Optuna pruner).
PRUNERS: dict[str, Callable[[], Any]] = {
    "median": _optuna_pruner("MedianPruner", n_startup_trials=5, n_warmup_steps=0),
    "successive_halving": _optuna_pruner("SuccessiveHalvingPruner"),
    "hyperband": _optuna_pruner("HyperbandPruner", min_resource=1, max_resource=10),
}


class ConfigError(ValueError):
    """A configuration file or override is invalid; the message names key, value and what is allowed."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _not_bool_or_text(value: Any) -> Any:
    if isinstance(value, (bool, str)):
        raise ValueError(f"Input should be a number, not {type(value).__name__}")
    return value


#: A float field that takes ints and floats only: YAML's ``yes`` was read as 1.0 (a one-second
#: time_budget ran) and ``'10'`` as 10, where the estimators refuse both (audit).
Number = Annotated[float, BeforeValidator(_not_bool_or_text)]


class DataConfig(_Strict):
    builtin: str | None = None
    path: str | None = None
    target: str | None = None
    test_size: Number = Field(0.25, gt=0.0, lt=1.0)
    drop: list[str] = Field(default_factory=list)
    # How a CSV is read (pandas.read_csv's sep and na_values), at run and at predict.
    sep: str = Field(",", min_length=1)
    na_values: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _one_source(self) -> DataConfig:
        if (self.builtin is None) == (self.path is None):
            raise ValueError("exactly one of 'builtin' or 'path' must be given")
        if self.path is not None and not self.target:
            raise ValueError("'target' is required with 'path'")
        return self

    @field_validator("builtin")
    @classmethod
    def _known(cls, value: str | None) -> str | None:
        from ensemble_hpo.datasets import BUILTIN_DATASETS

        if value is not None and value not in BUILTIN_DATASETS:
            raise ValueError(f"must be one of {BUILTIN_DATASETS}, got {value!r}")
        return value


class SearchConfig(_Strict):
    strategy: str = "tpe"
    options: dict[str, Any] = Field(default_factory=dict)
    models: str | list[str | dict[str, Any]] = "auto"
    n_trials: StrictInt | None = Field(None, gt=0)
    time_budget: Number | None = Field(None, gt=0, allow_inf_nan=False)
    trial_timeout: Number | None = Field(None, gt=0, allow_inf_nan=False)
    warm_start: str | None = "portfolio"
    pruner: str | None = None
    objective: str = "candidate"

    @field_validator("warm_start")
    @classmethod
    def _warm_start(cls, value: str | None) -> str | None:
        from ensemble_hpo.spaces import WARM_START_KINDS

        return value if value is None else _registered(value, WARM_START_KINDS)

    @field_validator("pruner")
    @classmethod
    def _pruner_name(cls, value: str | None) -> str | None:
        return value if value is None else _registered(value, PRUNERS)

    @field_validator("objective")
    @classmethod
    def _objective(cls, value: str) -> str:
        from ensemble_hpo.search import TRIAL_VALUES

        return _registered(value, TRIAL_VALUES)

    @field_validator("strategy")
    @classmethod
    def _strategy(cls, value: str) -> str:
        from ensemble_hpo.search import STRATEGIES

        return _registered(value, STRATEGIES)

    @field_validator("models")
    @classmethod
    def _family_specs(cls, value: str | list[str | dict[str, Any]]) -> str | list[str | dict[str, Any]]:
        # A spec's 'classifier'/'regressor' is an import path called with parameters from
        # this file: check that it names an estimator class now, before any data is read.
        from ensemble_hpo.spaces import family_from_spec, get_family

        specs = value if isinstance(value, list) else ([] if value == "auto" else [value])
        for spec in specs:  # the search's own lookups, so a typo fails before any data is read
            if isinstance(spec, dict):
                family_from_spec(spec)
            else:
                get_family(spec)
        return value

    @model_validator(mode="after")
    def _strategy_options(self) -> SearchConfig:
        _construct(lambda: _configured_strategy(self), "search.options")
        return self


#: The method of a selection or fusion section that names none.
_DEFAULT_METHODS = {"selection": "greedy", "fusion": "average"}


class StageConfig(_Strict):
    method: str
    options: dict[str, Any] = Field(default_factory=dict)


class CVConfig(_Strict):
    """Outer folds: ``n_splits`` folds, shuffled again ``n_repeats`` times (repeated k-fold
    bagging: out-of-fold predictions averaged over the repeats)."""

    n_splits: StrictInt = Field(5, ge=2)
    n_repeats: StrictInt = Field(1, ge=1)


class ParallelConfig(_Strict):
    n_jobs: StrictInt = Field(1, gt=0)
    backend: Literal["loky", "dask"] = "loky"
    scheduler: str | None = None


class RunConfig(_Strict):
    """The whole run: data, task, metric, search, CV, selection, fusion, storage, parallelism."""

    name: str = "run"
    data: DataConfig
    task: Literal["auto", "classification", "regression"] = "auto"
    scoring: str | None = None
    search: SearchConfig = Field(default_factory=SearchConfig)
    cv: Annotated[StrictInt, Field(ge=2)] | CVConfig = 5
    selection: StageConfig = Field(default_factory=lambda: StageConfig(method=_DEFAULT_METHODS["selection"]))
    fusion: StageConfig = Field(default_factory=lambda: StageConfig(method=_DEFAULT_METHODS["fusion"]))
    final_models: Literal["folds", "refit"] = "folds"
    storage: str | None = None
    parallel: ParallelConfig = Field(default_factory=ParallelConfig)
    output_dir: str = "runs"
    # Strict: YAML's true would otherwise be read as 1 (the estimators refuse a bool).
    random_state: StrictInt | None = Field(0, ge=0, le=MAX_SEED)
    verbose: StrictInt = Field(1, ge=0)

    @field_validator("cv", mode="before")
    @classmethod
    def _one_cv_message(cls, value: Any) -> Any:
        # Neither an int nor a mapping: pydantic listed why each union branch refused it.
        if isinstance(value, bool) or not isinstance(value, int | dict | CVConfig) or (
                isinstance(value, int) and value < 2):
            raise ValueError("must be an integer of at least 2, or a mapping with n_splits and "
                             "n_repeats")
        return value

    @model_validator(mode="before")
    @classmethod
    def _default_stage_methods(cls, raw: Any) -> Any:
        # A stage section with only options (YAML, or --set selection.options.max_iter=5) keeps
        # the default method; it failed as "selection.method: Field required" (audit).
        if not isinstance(raw, dict):
            return raw
        raw = dict(raw)
        for stage, method in _DEFAULT_METHODS.items():
            if isinstance(raw.get(stage), dict) and "method" not in raw[stage]:
                raw[stage] = {"method": method, **raw[stage]}
        return raw

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        # The run folder is output_dir/name: an empty name made it output_dir itself, and
        # --force then removed every other run there (audit).
        if value in ("", ".", "..") or "/" in value or "\\" in value:
            raise ValueError("must be a folder name (not empty, '.', '..', or with a path separator)")
        return value

    @field_validator("selection")
    @classmethod
    def _selection(cls, value: StageConfig) -> StageConfig:
        from ensemble_hpo._resolve import make_selector
        from ensemble_hpo.selection import SELECTORS

        _registered(value.method, SELECTORS)
        _construct(lambda: make_selector(value.method, None, None, value.options), "selection.options")
        return value

    @field_validator("fusion")
    @classmethod
    def _fusion(cls, value: StageConfig) -> StageConfig:
        from ensemble_hpo._resolve import make_fuser
        from ensemble_hpo.fusion import FUSERS

        _registered(value.method, FUSERS)
        _construct(lambda: make_fuser(value.method, None, None, value.options), "fusion.options")
        return value

    @field_validator("scoring")
    @classmethod
    def _scoring(cls, value: str | None) -> str | None:
        from ensemble_hpo.metrics import get_prediction_scorer

        if value is not None:
            get_prediction_scorer(value, "regression")  # scorer names do not depend on the task
        return value


def _construct(build: Callable[[], Any], where: str) -> None:
    """Build a stage from its options now, so that an unknown option fails before any data."""
    try:
        build()
    except TypeError as exc:
        what = "search strategy" if where.startswith("search") else "stage"
        raise ValueError(f"{where} has an option the {what} does not take: {exc}") from None


def _configured_strategy(search: SearchConfig) -> Any:
    from ensemble_hpo.search import make_strategy

    strategy = make_strategy(search.strategy)
    if search.options:
        strategy = type(strategy)(**{**_init_kwargs(strategy), **search.options})
    return strategy


def _registered(name: str, registry: Collection[str]) -> str:
    """A stage's name must be in that stage's registry, the one the estimators read too."""
    if name not in registry:
        raise ValueError(f"must be one of {sorted(registry)}, got {name!r}")
    return name


def _format_error(error: ValidationError, source: str) -> str:
    lines = [f"Invalid configuration in {source}:"]
    for item in error.errors():
        key = ".".join(str(p) for p in item["loc"]) or "(top level)"
        value = item.get("input")
        shown = "" if isinstance(value, dict) else f" (got {value!r})"
        lines.append(f"  - {key}: {item['msg']}{shown}")
    return "\n".join(lines)


def _parse_scalar(text: str) -> Any:
    return yaml.safe_load(text) if text != "" else ""


def apply_overrides(raw: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply ``key.sub=value`` overrides (values parsed as YAML scalars)."""
    raw = copy.deepcopy(raw)
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"The override {item!r} must look like 'key.sub=value'.")
        key, value = item.split("=", 1)
        node = raw
        parts = key.strip().split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"The override {item!r} goes through {part!r}, which is not a mapping.")
        node[parts[-1]] = _parse_scalar(value)
    return raw


class _UniqueKeyLoader(yaml.SafeLoader):
    """``yaml.safe_load``'s loader, refusing a key written twice in one mapping.

    PyYAML keeps the last one silently: a second ``search:`` section dropped the first's
    ``n_trials`` (audit). Keys brought in by a merge (``<<: *anchor``) may still be overridden.
    """

    def construct_mapping(self, node: yaml.Node, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in getattr(node, "value", []):
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=deep)
            if isinstance(key, Hashable) and key in seen:
                raise yaml.constructor.ConstructorError(
                    "while constructing a mapping", node.start_mark,
                    f"found the key {key!r} a second time", key_node.start_mark)
            if isinstance(key, Hashable):
                seen.add(key)
        return super().construct_mapping(node, deep=deep)


def load_config(path: str | Path, overrides: list[str] | None = None) -> RunConfig:
    """Read a YAML file (safe loading, each key once per mapping), apply overrides and
    validate."""
    path = Path(path)
    try:
        raw = yaml.load(path.read_text(), Loader=_UniqueKeyLoader) or {}  # noqa: S506 - a SafeLoader
    except FileNotFoundError:
        raise ConfigError(f"The configuration file {str(path)!r} does not exist.") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"The configuration file {str(path)!r} is not valid YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"The configuration file {str(path)!r} must contain a mapping at the top level.")
    raw = apply_overrides(raw, overrides or [])
    try:
        return RunConfig.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(_format_error(exc, str(path))) from None


def _pruner(name: str | None) -> Any:
    return PRUNERS[name]() if name else None


def build_estimator(config: RunConfig, task: str, run_dir: str | None, *,
                    trusted: bool = False) -> Any:
    """Instantiate the estimator a configuration describes.

    ``trusted`` is not a configuration field on purpose: a run folder's own config must
    not be able to switch off the signature check of that folder's model files.
    """
    from ensemble_hpo import EnsembleClassifier, EnsembleRegressor
    from ensemble_hpo._resolve import check_stage_params, make_fuser, make_selector

    strategy = _configured_strategy(config.search)
    seed, scoring = config.random_state, config.scoring
    cls = EnsembleClassifier if task == CLASSIFICATION else EnsembleRegressor
    selector = make_selector(config.selection.method, seed, scoring, config.selection.options)
    fuser = make_fuser(config.fusion.method, seed, scoring, config.fusion.options)
    try:  # here, so that the run folder is not even created for a bad option
        check_stage_params(selector, fuser, task)
    except ValueError as exc:
        raise ConfigError(f"selection/fusion options: {exc}") from None
    return cls(
        models=config.search.models, search=strategy, n_trials=config.search.n_trials,
        time_budget=config.search.time_budget, cv=_cv(config.cv, task, seed), scoring=config.scoring,
        selection=selector, fusion=fuser,
        objective=config.search.objective,
        pruner=_pruner(config.search.pruner), warm_start_configs=config.search.warm_start,
        storage=config.storage, run_dir=run_dir, n_jobs=config.parallel.n_jobs,
        backend=_backend(config.parallel), trial_timeout=config.search.trial_timeout,
        final_models=config.final_models, trusted=trusted,
        random_state=config.random_state, verbose=config.verbose,
    )


def _cv(cv: int | CVConfig, task: str, seed: int | None) -> Any:
    """An int, or for repeats scikit-learn's repeated (stratified, for classification) K-fold."""
    if isinstance(cv, int):
        return cv
    if cv.n_repeats == 1:
        return cv.n_splits
    from sklearn.model_selection import RepeatedKFold, RepeatedStratifiedKFold

    kind = RepeatedStratifiedKFold if task == CLASSIFICATION else RepeatedKFold
    return kind(n_splits=cv.n_splits, n_repeats=cv.n_repeats, random_state=seed)


def _backend(parallel: ParallelConfig) -> Any:
    if parallel.backend == "loky":
        return None
    return parallel.scheduler or "dask"


def _init_kwargs(strategy: Any) -> dict[str, Any]:
    return {k: v for k, v in vars(strategy).items() if not k.startswith("_")}
