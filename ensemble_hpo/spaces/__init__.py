"""Search spaces: model families, their hyperparameter distributions and conditional spaces."""

from ensemble_hpo.spaces._builtin import (
    BUILTIN_FAMILIES,
    DEFAULT_FAMILIES,
    LOG_TARGET_FAMILIES,
    REGRESSION_DEFAULT_FAMILIES,
    get_family,
    log_target_suits,
)
from ensemble_hpo.spaces._early_stopping import EarlyStoppingClassifier, EarlyStoppingRegressor
from ensemble_hpo.spaces._family import ModelFamily
from ensemble_hpo.spaces._portfolio import WARM_START_KINDS
from ensemble_hpo.spaces._space import SearchSpace, distribution_from_spec, family_from_spec
from ensemble_hpo.spaces._target import LogTargetRegressor, StandardizedTargetRegressor

__all__ = [
    "BUILTIN_FAMILIES",
    "DEFAULT_FAMILIES",
    "EarlyStoppingClassifier",
    "EarlyStoppingRegressor",
    "LOG_TARGET_FAMILIES",
    "LogTargetRegressor",
    "ModelFamily",
    "REGRESSION_DEFAULT_FAMILIES",
    "SearchSpace",
    "StandardizedTargetRegressor",
    "WARM_START_KINDS",
    "distribution_from_spec",
    "family_from_spec",
    "get_family",
    "log_target_suits",
]
