"""Input validation run at the very start of ``fit`` and ``predict``.

Every check is cheap and runs before any search or model fitting, so a bad
input fails in milliseconds with a message that names the problem instead of
failing minutes later inside some candidate model.

Decisions
---------
* **Rare classes.** For classification, a class with fewer members than
  ``cv_n_splits`` cannot appear in every stratified fold, so some fold models
  would not know it and the out-of-fold probability matrices would not line up.
  This raises by default (listing the classes and their counts and suggesting
  fewer folds); ``rare_classes="warn"`` downgrades it to a ``UserWarning``.
* **Column names at predict.** When ``X`` was a DataFrame with string column
  names at fit, a DataFrame at predict must have the same columns *in the same
  order*; missing, unexpected or reordered columns raise, listing them, with
  scikit-learn's wording ("The feature names should match those that were
  passed during fit."). Reordering silently would be unambiguous here (the
  preprocessors select by name), but we keep scikit-learn's behaviour so that
  its estimator checks pass and users meet one rule everywhere; the message
  says how to fix it (``X[est.feature_names_in_]``). An array or sparse matrix
  of the right width is accepted with a ``UserWarning`` (as scikit-learn does)
  and given the fit column names.
* **Messages** are ours but keep the phrases scikit-learn's estimator checks
  look for ("0 feature(s) (shape=...", "Reshape your data", "Complex data not
  supported", "X has 3 features, but ... is expecting 4 features as input").
* **Missing values in X** are allowed (including all-NaN columns); infinite
  values in numeric columns are rejected, naming the columns.
* **Datetime columns** are rejected by :func:`infer_column_kinds`.
* **Sparse X** is accepted; formats other than CSR/CSC are converted to CSR
  (CV folds need row indexing). At predict, dense/sparse input is converted to
  the representation seen at fit.
* **Complex** X or y raise a ``ValueError``; **datetime** columns a ``TypeError``
  (see :func:`~ensemble_hpo._preprocessing.infer_column_kinds`).
"""

from __future__ import annotations

import decimal
import numbers
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.exceptions import DataConversionWarning
from sklearn.utils.multiclass import type_of_target

from ._checks import REGRESSION, check_sample_weight, check_task
from ._preprocessing import ColumnKinds, _as_float, _is_real_number, infer_column_kinds

__all__ = ["InputInfo", "as_row_arrays", "validate_fit_data", "validate_predict_data",
           "validate_row_arrays"]

_MAX_LISTED = 10


@dataclass(frozen=True)
class InputInfo:
    """What :func:`validate_fit_data` learned about the training data.

    Parameters
    ----------
    n_features_in_ : int
        Number of columns of ``X``.
    feature_names_in_ : ndarray of str or None
        Column names when ``X`` is a DataFrame whose column names are all strings.
    column_kinds : ColumnKinds
        Numeric and categorical columns, for :func:`make_preprocessor`.
    dtypes : tuple of str
        The dtype of each column of ``X`` at fit.
    input_type : {"dataframe", "array", "sparse"}
        Container type of ``X`` at fit.
    n_samples : int
        Number of rows of ``X``.
    classes : ndarray or None
        Sorted class labels (classification only).
    class_counts : ndarray of int or None
        Number of samples of each class, aligned with ``classes``.

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> X, y = load_iris(return_X_y=True, as_frame=True)
    >>> X, y, info = validate_fit_data(X, y, task="classification", cv_n_splits=5)
    >>> info.n_features_in_, info.input_type, info.classes.tolist()
    (4, 'dataframe', [0, 1, 2])
    """

    n_features_in_: int
    feature_names_in_: np.ndarray | None
    column_kinds: ColumnKinds
    dtypes: tuple[str, ...]
    input_type: Literal["dataframe", "array", "sparse"]
    n_samples: int
    classes: np.ndarray | None = None
    class_counts: np.ndarray | None = None
    # A DataFrame's column labels when they are not all strings (no feature_names_in_):
    # a DataFrame at predict must have them in the same order.
    columns: tuple[Any, ...] | None = None


# ----------------------------------------------------------------------------- helpers


def _listing(items: Sequence[Any], *, quote: bool = True) -> str:
    shown = ", ".join(repr(item) if quote else str(item) for item in items[:_MAX_LISTED])
    more = len(items) - _MAX_LISTED
    return f"{shown} and {more} more" if more > 0 else shown


def _first_positions(mask: np.ndarray) -> tuple[int, int]:
    """Number of true entries and position of the first one."""
    positions = np.flatnonzero(mask)
    return len(positions), int(positions[0]) if len(positions) else -1


def _as_2d_input(X: Any) -> Any:
    """DataFrames and CSR/CSC matrices as given, other sparse as CSR, the rest as ndarray."""
    if isinstance(X, pd.DataFrame):
        return X
    if sp.issparse(X):
        return X if X.format in ("csr", "csc") else X.tocsr()
    if isinstance(X, pd.Series):
        raise ValueError(
            "X must be 2D (n_samples, n_features); got a pandas Series. "
            "Use X.to_frame().T for a single row (df.iloc[[i]] keeps it a DataFrame), or "
            "X.to_frame() for a single feature."
        )
    array = np.asarray(X)
    if array.dtype.kind in "US" and not isinstance(X, np.ndarray):
        # Rows mixing numbers and strings become an all-string array, which would make
        # every column categorical (numbers compared as text); keep each cell's own type.
        array = np.asarray(X, dtype=object)
    if array.ndim != 2:
        raise ValueError(
            f"X must be 2D (n_samples, n_features); got an array with {array.ndim} "
            "dimension(s). Reshape your data with X.reshape(-1, 1) for a single feature "
            "or X.reshape(1, -1) for a single sample."
        )
    if array.dtype.kind == "c":
        raise ValueError(f"Complex data not supported: X has dtype {array.dtype}.")
    return array


def _check_not_empty(X: Any) -> None:
    n_rows, n_cols = X.shape
    for count, what in ((n_rows, "sample"), (n_cols, "feature")):
        if count == 0:
            raise ValueError(
                f"X is empty: found 0 {what}(s) (shape=({n_rows}, {n_cols})) while a minimum "
                "of 1 is required."
            )


def _check_column_names(X: Any) -> None:
    if not isinstance(X, pd.DataFrame):
        return
    names = list(X.columns)
    kinds = {type(name).__name__ for name in names}
    if len(kinds) > 1 and any(isinstance(name, str) for name in names):
        raise TypeError(
            "The column names of X must be all strings (or all non-strings); got a mix of "
            f"{sorted(kinds)}. Convert them with X.columns = X.columns.astype(str)."
        )
    duplicated = pd.Index(names)[pd.Index(names).duplicated()].unique().tolist()
    if duplicated:
        raise ValueError(f"X has duplicated column names: {_listing(duplicated)}.")


def _column_label(key: Any) -> str:
    return repr(key) if isinstance(key, str) else f"at position {key}"


def _numeric_block(X: Any, kinds: ColumnKinds) -> Any:
    if sp.issparse(X):
        return X
    if isinstance(X, pd.DataFrame):
        columns = list(kinds.numeric)
        return _as_float(X.loc[:, columns] if _by_name(kinds) else X.iloc[:, columns])
    return _as_float(X[:, list(kinds.numeric)])


def _by_name(kinds: ColumnKinds) -> bool:
    keys = kinds.numeric + kinds.categorical
    return bool(keys) and isinstance(keys[0], str)


#: Values of a text column looked at to tell a number column with a few stray cells.
_SNIFFED_VALUES = 2000
#: Distinct values of an all-number text column up to which it passes for a set of codes.
_FEW_LEVELS = 20


def _warn_numbers_read_as_categories(X: Any, kinds: ColumnKinds) -> None:
    """Warn about text columns whose values are nearly all numbers (or ISO dates).

    One ``"?"`` in a CSV column of numbers makes pandas read the whole column as text, and
    it becomes a category with one level per distinct number: the signal was lost without a
    word (held-out log loss 0.26 -> 0.81 on a table whose target depends on that column;
    audit). A pandas ``category`` column was made so on purpose and is left alone.
    """
    if sp.issparse(X):
        return
    for key in kinds.categorical:
        # Arrays too: np.array(rows) of mixed rows is all text ('<U32': log loss 0.21 -> 0.68).
        column = (pd.Series(np.asarray(X)[:, key]) if not isinstance(X, pd.DataFrame)
                  else X[key] if isinstance(key, str) else X.iloc[:, key])
        if isinstance(column.dtype, pd.CategoricalDtype):
            continue
        values = column.dropna().iloc[:_SNIFFED_VALUES].astype(str)
        if len(values) < 10:
            continue
        numbers_ = pd.to_numeric(values, errors="coerce")
        strays = values[numbers_.isna()]
        if 0 < len(strays) <= 0.1 * len(values):
            warnings.warn(
                f"Column {key!r} is read as categorical because {len(strays)} of its first "
                f"{len(values)} values are not numbers ({_listing(sorted(set(strays))[:5])}); "
                "the others are. If they mean 'missing', make them NaN (e.g. pandas.read_csv("
                "na_values=...)) so that the column is numeric.", UserWarning, stacklevel=4)
        elif len(strays) == 0 and values.nunique() > _FEW_LEVELS:
            # All numbers, as text (read_csv(dtype=str), JSON): one level per value (audit:
            # log loss 0.23 -> 0.67 for an age column).
            warnings.warn(
                f"Column {key!r} holds numbers as text ({values.nunique()} distinct values "
                "among its first values); it is read as categorical, one level per value. If "
                "they are quantities, make the column numeric (e.g. X[col].astype(float)).",
                UserWarning, stacklevel=4)
        elif len(strays) == len(values) and _mostly_dates(values):
            warnings.warn(
                f"Column {key!r} holds dates as text; it is read as categorical (one level per "
                "date). Encode them as numbers (e.g. days since a start date, the month) to let "
                "the models use their order.", UserWarning, stacklevel=4)


def _warn_unaligned_indexes(X: Any, rows: dict[str, Any]) -> None:
    """Warn when ``X`` and a pandas ``y``, ``sample_weight`` or ``groups`` have different
    indexes: rows are matched by position, as in scikit-learn (audit: ``y.sample(frac=1)``
    kept every index-label pair yet trained on scrambled labels, without a word)."""
    if not isinstance(X, (pd.DataFrame, pd.Series)):
        return
    unaligned = [name for name, values in rows.items()
                 if isinstance(values, (pd.Series, pd.DataFrame)) and len(values) == len(X)
                 and not values.index.equals(X.index)]
    if unaligned:
        warnings.warn(
            f"{_listing(unaligned, quote=False)} and X have different pandas indexes; rows are "
            "matched by position, not by index (as in scikit-learn). Align them first (e.g. "
            "y.loc[X.index]) if their orders differ.", UserWarning, stacklevel=4)


def _warn_row_counters(X: Any, kinds: ColumnKinds) -> None:
    """Warn about numeric DataFrame columns that count the rows (n, n+1, n+2, ...): an
    identifier a CSV kept (audit: an 'id' column was trained on without a word), on which
    trees split by row order, which leaks where the rows are sorted by time or target."""
    if not isinstance(X, pd.DataFrame) or len(X) < 10:
        return
    for key in kinds.numeric:
        column = X[key] if isinstance(key, str) else X.iloc[:, key]
        if not (isinstance(column.dtype, np.dtype) and column.dtype.kind in "iu"):
            continue
        steps = np.diff(column.to_numpy())
        if (steps == 1).all():
            warnings.warn(
                f"Column {key!r} counts the rows ({column.iloc[0]}, {column.iloc[1]}, "
                f"{column.iloc[2]}, ...): if it is an identifier, drop it (YAML: data.drop), or "
                "the models learn the row order.", UserWarning, stacklevel=4)


def _mostly_dates(values: pd.Series) -> bool:
    parsed = pd.to_datetime(values.iloc[:200], errors="coerce", format="ISO8601")
    return bool(parsed.notna().mean() >= 0.9)


def _check_finite_features(X: Any, kinds: ColumnKinds) -> None:
    if not kinds.numeric:
        return
    block = _numeric_block(X, kinds)
    for test, problem, advice in (
            (np.isinf, "infinite values", "Replace them (e.g. with NaN, which is allowed)."),
            # The tree families compute in float32: such values became inf there and every
            # forest and XGBoost candidate failed; linear scaling overflowed (audit).
            (_beyond_float32, "finite values beyond float32's range (|x| > 3.4e38)",
             "Rescale those columns.")):
        bad = [f"{_column_label(kinds.numeric[j])} ({int(count)} value(s))"
               for j, count in enumerate(_per_column(block, test)) if count]
        if bad:
            raise ValueError(f"X contains {problem} in numeric column(s) "
                             f"{_listing(bad, quote=False)}. {advice}")


def _beyond_float32(values: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore"):
        return np.isfinite(values) & (np.abs(values) > np.finfo(np.float32).max)


def _per_column(block: Any, test: Any) -> np.ndarray:
    if sp.issparse(block):
        coo = block.tocoo()
        return np.bincount(coo.col[test(coo.data)], minlength=block.shape[1])
    return test(block).sum(axis=0)


def _dtypes_of(X: Any) -> tuple[str, ...]:
    if isinstance(X, pd.DataFrame):
        return tuple(str(dtype) for dtype in X.dtypes)
    return (str(X.dtype),) * X.shape[1]


def _validated_x(X: Any) -> Any:
    X = _as_2d_input(X)
    _check_not_empty(X)
    _check_column_names(X)
    _check_no_signalling_nan_features(X)
    return X


def _check_no_signalling_nan_features(X: Any) -> None:
    if isinstance(X, pd.DataFrame):
        for j in np.flatnonzero([pd.api.types.is_object_dtype(dtype) for dtype in X.dtypes]):
            _check_no_signalling_nan(X.iloc[:, j].to_numpy(), f"X column {_column_label(X.columns[j])}")
    elif not sp.issparse(X):
        for j in range(X.shape[1] if X.dtype == object else 0):
            _check_no_signalling_nan(X[:, j], f"X column {_column_label(j)}")


def _check_no_signalling_nan(values: np.ndarray, where: str) -> None:
    # pandas raises decimal.InvalidOperation when it tests Decimal('sNaN') for missingness
    # (and TypeError when it hashes one), so every later step would fail on it obscurely.
    if values.dtype != object:
        return
    try:
        pd.isna(values)
    except decimal.InvalidOperation:
        first = next(i for i, v in enumerate(values)
                     if isinstance(v, decimal.Decimal) and v.is_snan())
        raise ValueError(
            f"{where} holds a signalling NaN, Decimal('sNaN'), at row {first}, which pandas "
            "cannot read. Replace it with None or NaN (a missing value)."
        ) from None


# ----------------------------------------------------------------------------- target


def _as_1d(values: Any, name: str) -> np.ndarray:
    """A 1-D numpy array, with pandas missing values (pd.NA) turned into NaN."""
    if isinstance(values, pd.DataFrame):
        if values.shape[1] != 1:
            raise ValueError(
                f"{name} must be 1D; got a DataFrame with {values.shape[1]} columns. "
                "Multi-output targets are not supported."
            )
        values = values.iloc[:, 0]
    if isinstance(values, pd.Series):
        values = _series_to_numpy(values)
    array = np.asarray(values)
    if array.dtype.kind == "c":
        raise ValueError(f"Complex data not supported: {name} has dtype {array.dtype}.")
    if array.ndim == 2 and array.shape[1] == 1:
        if name == "y":
            # scikit-learn warns here too (its estimator checks expect it).
            warnings.warn(
                "A column-vector y was passed when a 1d array was expected; it is raveled "
                "to shape (n_samples,).",
                DataConversionWarning,
                stacklevel=3,
            )
        array = array.ravel()
    if array.ndim != 1:
        raise ValueError(
            f"{name} must be 1D (n_samples,); got an array of shape {array.shape}. "
            "Multi-output targets are not supported."
        )
    _check_no_signalling_nan(array, name)
    return array


def _series_to_numpy(series: pd.Series) -> np.ndarray:
    dtype = series.dtype
    extension_numeric = isinstance(dtype, pd.api.extensions.ExtensionDtype) and (
        pd.api.types.is_numeric_dtype(dtype) and not isinstance(dtype, pd.CategoricalDtype)
    )
    if extension_numeric:
        if series.isna().any() or pd.api.types.is_bool_dtype(dtype):
            return series.to_numpy(dtype=np.float64, na_value=np.nan)
        return series.to_numpy(dtype=dtype.numpy_dtype)
    return series.to_numpy()


def _missing_mask(values: np.ndarray) -> np.ndarray:
    return np.asarray(pd.isna(values), dtype=bool)


def _infinite_mask(values: np.ndarray) -> np.ndarray:
    if values.dtype.kind in "fc":
        return np.isinf(values)
    if values.dtype == object:
        return np.array([_is_real_number(v) and _is_infinite(v) for v in values], dtype=bool)
    return np.zeros(values.shape, dtype=bool)


def _is_infinite(value: Any) -> bool:
    # numpy's isinf takes no Decimal (SQL NUMERIC targets), which has its own test.
    return value.is_infinite() if isinstance(value, decimal.Decimal) else bool(np.isinf(value))


def _check_target_finite(y: np.ndarray) -> None:
    for mask, what in ((_missing_mask(y), "missing (NaN)"), (_infinite_mask(y), "infinite")):
        count, first = _first_positions(mask)
        if count:
            raise ValueError(
                f"The target y contains {count} {what} value(s); the first is at position "
                f"{first}. Drop those rows (or fill the target) before fitting."
            )


def _plain(value: Any) -> Any:
    """Numpy scalars as Python ones, so messages show 'a' rather than np.str_('a')."""
    return value.item() if isinstance(value, np.generic) else value


def _regression_target(y: np.ndarray) -> np.ndarray:
    if y.dtype.kind in "biuf":
        return y.astype(np.float64)
    if y.dtype == object and all(_is_real_number(v) for v in y):
        return y.astype(np.float64)
    examples = pd.unique(np.asarray([_plain(v) for v in y if not _is_real_number(v)], object))
    dtype = "str" if y.dtype.kind in "US" else str(y.dtype)
    raise ValueError(
        f"The target y must be numeric for regression; got dtype {dtype} with values like "
        f"{_listing(list(examples[:2]))}. Use task='classification' for class labels."
    )


# Below this standard deviation the tree families stop splitting (scikit-learn treats a node
# impurity under machine epsilon as pure): at y x 1e-9 XGBoost, random and extra trees
# predicted a constant (fourth audit).
TINY_TARGET_STD = 1e-6


# Squared errors of a target beyond this overflow float64 (1e154 squared is 1e308): a fit on
# |y| = 1e155 ran its whole search, then failed in the stacking comparison with
# "Input contains NaN" (fifth audit).
HUGE_TARGET = 1e150


def _check_target_scale(y: np.ndarray) -> None:
    largest = float(np.max(np.abs(y))) if len(y) else 0.0
    if largest > HUGE_TARGET:
        raise ValueError(
            f"The target y must be smaller than {HUGE_TARGET:.0e} in magnitude: squared errors of "
            f"such values overflow. Got values up to {largest:.3g} instead; rescale y (e.g. y / "
            f"{10 ** int(np.log10(largest)):.0e}) and scale the predictions back.")
    _warn_if_tiny(y)


def _warn_if_tiny(y: np.ndarray) -> None:
    spread = float(np.std(y)) if len(y) else 0.0
    if 0.0 < spread < TINY_TARGET_STD:
        warnings.warn(
            f"The target y varies very little (standard deviation {spread:.3g}): tree models stop "
            "splitting at such a scale and predict a constant. Rescale it (e.g. y * 1e6) and "
            "scale the predictions back.", UserWarning, stacklevel=4)


def _class_counts(y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    try:
        return np.unique(y, return_counts=True)
    except TypeError:
        types = sorted({type(v).__name__ for v in y})
        raise ValueError(
            f"The target y mixes label types {types}; use a single type for class labels."
        ) from None


def _check_classification_target(y: np.ndarray) -> None:
    target_type = type_of_target(y, input_name="y")
    if target_type == "continuous":
        example = next(_plain(v) for v in y if not float(v).is_integer())
        raise ValueError(
            "The target y looks continuous (e.g. the non-integer value "
            f"{example!r}), which is not a set of class labels. Use task='regression' for "
            "numeric targets."
        )


def _check_classes(
    classes: np.ndarray,
    counts: np.ndarray,
    cv_n_splits: int | None,
    rare_classes: str,
) -> None:
    if len(classes) < 2:
        raise ValueError(
            f"The target y has a single class ({_plain(classes[0])!r}); classification needs "
            "at least 2 classes."
        )
    if cv_n_splits is None:
        return
    pairs = zip(classes, counts, strict=True)
    rare = [f"{_plain(c)!r} ({n} member(s))" for c, n in pairs if n < cv_n_splits]
    if not rare:
        return
    fewest = int(counts.min())
    remedy = f"use cv_n_splits <= {fewest}" if fewest >= 2 else "use fewer folds"
    message = (
        f"The target y has class(es) with fewer members than cv_n_splits={cv_n_splits}: "
        f"{_listing(rare, quote=False)}. Each class must appear in every fold; {remedy} "
        "or merge/drop the rare classes."
    )
    if rare_classes == "raise":
        raise ValueError(message)
    warnings.warn(message, UserWarning, stacklevel=3)


# ----------------------------------------------------------------------------- fit extras


def _check_length(name: str, length: int, n_samples: int) -> None:
    if length != n_samples:
        raise ValueError(
            f"X has {n_samples} rows but {name} has {length} elements; they must match."
        )


def _check_sample_weight(sample_weight: Any, n_samples: int) -> None:
    weights = _as_1d(sample_weight, "sample_weight")
    _check_length("sample_weight", len(weights), n_samples)
    check_sample_weight(weights, n_samples)


def _check_groups(groups: Any, n_samples: int, cv_n_splits: int | None) -> None:
    labels = _as_1d(groups, "groups")
    _check_length("groups", len(labels), n_samples)
    count, first = _first_positions(_missing_mask(labels))
    if count:
        raise ValueError(
            f"groups contains {count} missing value(s); the first is at position {first}."
        )
    n_groups = len(pd.unique(labels))
    if cv_n_splits is not None and n_groups < cv_n_splits:
        raise ValueError(
            f"groups has {n_groups} distinct group(s), fewer than cv_n_splits={cv_n_splits}; "
            "use fewer folds or more groups."
        )


def as_row_arrays(sample_weight: Any, groups: Any) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Checked ``sample_weight`` as 1-D float64 and ``groups`` as a 1-D array (None kept)."""
    weights = None if sample_weight is None else _as_1d(sample_weight, "sample_weight").astype(np.float64)
    return weights, None if groups is None else _as_1d(groups, "groups")


def validate_row_arrays(sample_weight: Any, groups: Any, n_samples: int, *,
                        cv_n_splits: int | None = None) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Check per-row ``sample_weight`` and ``groups`` against ``n_samples``; see :func:`as_row_arrays`."""
    _check_row_arrays(sample_weight, groups, n_samples, cv_n_splits)
    return as_row_arrays(sample_weight, groups)


def _check_row_arrays(sample_weight: Any, groups: Any, n_samples: int,
                      cv_n_splits: int | None) -> None:
    if sample_weight is not None:
        _check_sample_weight(sample_weight, n_samples)
    if groups is not None:
        _check_groups(groups, n_samples, cv_n_splits)


def _check_params(task: str, cv_n_splits: int | None, rare_classes: str) -> None:
    check_task(task)
    valid_splits = cv_n_splits is None or (
        isinstance(cv_n_splits, numbers.Integral)
        and not isinstance(cv_n_splits, bool)
        and cv_n_splits >= 2
    )
    if not valid_splits:
        raise ValueError(
            f"The 'cv_n_splits' parameter must be an int >= 2 or None. Got {cv_n_splits!r} "
            "instead."
        )
    if rare_classes not in ("raise", "warn"):
        raise ValueError(
            "The 'rare_classes' parameter must be 'raise' or 'warn'. "
            f"Got {rare_classes!r} instead."
        )


def _validated_target(
    y: np.ndarray, task: str, cv_n_splits: int | None, rare_classes: str
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    _check_target_finite(y)
    if task == REGRESSION:
        y = _regression_target(y)
        _check_target_scale(y)
        return y, None, None
    _check_classification_target(y)
    classes, counts = _class_counts(y)
    _check_classes(classes, counts, cv_n_splits, rare_classes)
    return y, classes, counts


def validate_fit_data(
    X: Any,
    y: Any,
    *,
    task: str,
    cv_n_splits: int | None,
    sample_weight: Any = None,
    groups: Any = None,
    rare_classes: Literal["raise", "warn"] = "raise",
) -> tuple[Any, np.ndarray, InputInfo]:
    """Check the training data before any expensive work.

    Parameters
    ----------
    X : array-like, pandas DataFrame or scipy sparse matrix of shape (n_samples, n_features)
        Training features. Missing values are allowed, infinite values are not.
    y : array-like of shape (n_samples,)
        Target: class labels for classification, numbers for regression.
    task : {"classification", "regression"}
        Learning task.
    cv_n_splits : int or None
        Number of CV folds that will be used, for the rare-class and group
        checks; ``None`` skips them.
    sample_weight : array-like of shape (n_samples,), optional
        Finite non-negative weights, not all zero.
    groups : array-like of shape (n_samples,), optional
        Group labels for group-aware CV.
    rare_classes : {"raise", "warn"}, default="raise"
        What to do when a class has fewer members than ``cv_n_splits``.

    Returns
    -------
    X : DataFrame, ndarray or sparse matrix
        ``X`` as given (DataFrames kept, lists converted to arrays, sparse
        formats other than CSR/CSC converted to CSR).
    y : ndarray of shape (n_samples,)
        The target; float64 for regression, labels as given for classification.
    info : InputInfo
        Facts about ``X`` needed at predict time and for preprocessing.

    Raises
    ------
    ValueError, TypeError
        With a message naming the problem.

    Examples
    --------
    >>> X, y, info = validate_fit_data([[1.0, 2.0], [3.0, float("nan")]], ["a", "b"],
    ...                                task="classification", cv_n_splits=None)
    >>> X.shape, y.tolist(), info.n_features_in_
    ((2, 2), ['a', 'b'], 2)
    >>> validate_fit_data([[1.0], [2.0]], ["a", "b"], task="regression", cv_n_splits=None)
    Traceback (most recent call last):
    ...
    ValueError: The target y must be numeric for regression; got dtype str with values like \
'a', 'b'. Use task='classification' for class labels.
    """
    _check_params(task, cv_n_splits, rare_classes)
    if y is None:
        raise ValueError("This estimator requires y to be passed, but the target y is None.")
    _warn_unaligned_indexes(X, {"y": y, "sample_weight": sample_weight, "groups": groups})
    X = _validated_x(X)
    n_samples = X.shape[0]
    y = _as_1d(y, "y")
    _check_length("y", len(y), n_samples)
    if cv_n_splits is not None and n_samples < cv_n_splits:
        raise ValueError(
            f"X has {n_samples} sample(s), fewer than cv_n_splits={cv_n_splits}; use fewer "
            "folds."
        )
    y, classes, counts = _validated_target(y, task, cv_n_splits, rare_classes)
    _check_row_arrays(sample_weight, groups, n_samples, cv_n_splits)
    kinds = infer_column_kinds(X)
    _check_finite_features(X, kinds)
    _warn_numbers_read_as_categories(X, kinds)
    _warn_row_counters(X, kinds)
    info = InputInfo(
        n_features_in_=X.shape[1],
        feature_names_in_=np.asarray(list(X.columns), dtype=object) if _by_name(kinds) else None,
        column_kinds=kinds,
        dtypes=_dtypes_of(X),
        input_type=_input_type(X),
        n_samples=n_samples,
        classes=classes,
        class_counts=counts,
        columns=(tuple(X.columns) if isinstance(X, pd.DataFrame) and not _by_name(kinds) else None),
    )
    return X, y, info


def _input_type(X: Any) -> Literal["dataframe", "array", "sparse"]:
    if isinstance(X, pd.DataFrame):
        return "dataframe"
    return "sparse" if sp.issparse(X) else "array"


# ----------------------------------------------------------------------------- predict


def _name_lines(names: Sequence[str]) -> str:
    shown = "".join(f"- {name}\n" for name in names[:_MAX_LISTED])
    return shown + ("- ...\n" if len(names) > _MAX_LISTED else "")


def _column_mismatch(given: list[Any], expected: list[str]) -> str:
    unexpected = sorted(set(map(str, given)) - set(expected))
    missing = sorted(set(expected) - set(map(str, given)))
    if not unexpected and not missing:
        return "Feature names must be in the same order as they were in fit.\n"
    message = ""
    if unexpected:
        message += "Feature names unseen at fit time:\n" + _name_lines(unexpected)
    if missing:
        message += "Feature names seen at fit time, yet now missing:\n" + _name_lines(missing)
    return message


def _named_columns(X: Any, info: InputInfo) -> pd.DataFrame:
    expected = [str(name) for name in info.feature_names_in_]
    if not isinstance(X, pd.DataFrame):
        _check_width(X, info)
        warnings.warn(
            "X does not have valid feature names, but it was fitted with feature names; "
            "its columns are taken to be, in order: " + _listing(expected) + ".",
            UserWarning,
            stacklevel=3,
        )
        dense = X.toarray() if sp.issparse(X) else X
        return pd.DataFrame(dense, columns=expected)
    given = list(X.columns)
    if given != expected:
        raise ValueError(
            "The feature names should match those that were passed during fit.\n"
            + _column_mismatch(given, expected)
            + "Select the fit columns in the fit order, e.g. X[est.feature_names_in_]."
        )
    return X


def _check_unnamed_columns(X: Any, info: InputInfo) -> None:
    """A DataFrame fitted with non-string column labels (0, 1, ...) must keep their order:
    the preprocessors select such columns by position, so reordered ones would be used
    silently as the wrong features (scikit-learn does not check them either)."""
    fitted = getattr(info, "columns", None)  # None: fitted before this check existed
    if fitted is None or not isinstance(X, pd.DataFrame) or tuple(X.columns) == fitted:
        return
    if [str(c) for c in X.columns] == [str(c) for c in fitted]:
        raise ValueError(
            "The column labels of X must have the types seen at fit: "
            f"{sorted({type(c).__name__ for c in fitted})}. Got "
            f"{sorted({type(c).__name__ for c in X.columns})} instead (e.g. '0' for 0).")
    raise ValueError(
        "The columns of X should match those that were passed during fit.\n"
        + _column_mismatch(list(X.columns), [str(c) for c in fitted])
        + "Select the fit columns in the fit order, e.g. X[list_of_fit_columns].")


def _check_width(X: Any, info: InputInfo) -> None:
    if X.shape[1] != info.n_features_in_:
        raise ValueError(
            f"X has {X.shape[1]} features, but it is expecting {info.n_features_in_} features "
            "as input (the number seen at fit)."
        )


def _same_representation(X: Any, info: InputInfo) -> Any:
    if info.input_type == "sparse" and not sp.issparse(X):
        _warn_names_unseen(X)
        return sp.csr_matrix(_as_float(X))
    if info.input_type != "sparse" and sp.issparse(X):
        return X.toarray()
    if info.input_type == "array" and isinstance(X, pd.DataFrame):
        # The preprocessors were fitted on positions; a DataFrame would make scikit-learn
        # warn about feature names it never saw, so say it here: reordered named columns
        # were predicted from without a word (audit: probabilities off by up to 0.9998).
        _warn_names_unseen(X)
        return X.to_numpy()
    return X


def _warn_names_unseen(X: Any) -> None:
    if isinstance(X, pd.DataFrame) and any(isinstance(c, str) for c in X.columns):
        warnings.warn("X has feature names, but the model was fitted on an array without "
                      "them: its columns are taken by position.", UserWarning, stacklevel=5)


def _numeric_positions(kinds: ColumnKinds, columns: Sequence[Any] | None) -> set[int]:
    if columns is None or not _by_name(kinds):
        return {int(key) for key in kinds.numeric}
    position = {name: j for j, name in enumerate(columns)}
    return {position[key] for key in kinds.numeric}


def _column_at(X: Any, position: int) -> pd.Series:
    return X.iloc[:, position] if isinstance(X, pd.DataFrame) else pd.Series(X[:, position])


def _check_kinds_unchanged(X: Any, info: InputInfo) -> None:
    if info.column_kinds.sparse or sp.issparse(X):
        return
    now = infer_column_kinds(X)
    columns = list(X.columns) if isinstance(X, pd.DataFrame) else None
    fit_columns = None if info.feature_names_in_ is None else list(info.feature_names_in_)
    numeric_at_fit = _numeric_positions(info.column_kinds, fit_columns)
    numeric_now = _numeric_positions(now, columns)

    def _filled(positions: set[int]) -> list[int]:
        # An all-missing column (e.g. all None) changes its inferred kind, not its meaning.
        return sorted(j for j in positions if not _column_at(X, j).isna().all())

    changed = _filled(numeric_at_fit - numeric_now)
    if changed:
        labels = [_column_label(columns[j] if _by_name(now) else j) for j in changed]
        # A category dtype of numbers is not numeric either (it read "non-numeric values"
        # for a column of numbers; audit).
        raise ValueError(
            f"Column(s) {_listing(labels, quote=False)} of X were numeric at fit but now "
            "contain non-numeric values or have a non-numeric dtype (text, category). Give "
            "them as numbers, as at fit."
        )
    # The other way: text at fit (one '?' in a training CSV), numbers now. A number matches
    # a fit category only where the text was written the same way ('5' and 5, not '5.0'):
    # every row became an unseen category without a word (audit: log loss 0.22 -> 0.78).
    became = _filled(numeric_now - numeric_at_fit)
    if became:
        labels = [_column_label(columns[j] if _by_name(now) else j) for j in became]
        warnings.warn(
            f"Column(s) {_listing(labels, quote=False)} of X were text (categorical) at fit and "
            "are numbers now: a number matches a category of the fit only where its text was "
            "written the same way ('5' and 5 match, '5.0' and 5 do not). Give them as at fit, "
            "or fit again with them numeric.", UserWarning, stacklevel=4)


def validate_predict_data(X: Any, info: InputInfo) -> Any:
    """Check new data against what was seen at fit.

    Parameters
    ----------
    X : array-like, pandas DataFrame or scipy sparse matrix of shape (n_samples, n_features)
        New data.
    info : InputInfo
        Returned by :func:`validate_fit_data` at fit.

    Returns
    -------
    X : DataFrame, ndarray or sparse matrix
        ``X`` converted to the dense/sparse representation seen at fit; an
        array given where a named DataFrame was fitted becomes a DataFrame
        with the fit column names (with a ``UserWarning``).

    Raises
    ------
    ValueError
        For empty ``X``, a wrong number of features, missing, unexpected or
        reordered DataFrame columns, numeric columns that became non-numeric
        and infinite values in numeric columns.

    Examples
    --------
    >>> import pandas as pd
    >>> train = pd.DataFrame({"a": [1.0, 2.0], "b": ["x", "y"]})
    >>> _, _, info = validate_fit_data(train, [0.5, 1.5], task="regression", cv_n_splits=None)
    >>> validate_predict_data(train, info) is train
    True
    >>> validate_predict_data(train[["a"]], info)
    Traceback (most recent call last):
    ...
    ValueError: The feature names should match those that were passed during fit.
    Feature names seen at fit time, yet now missing:
    - b
    Select the fit columns in the fit order, e.g. X[est.feature_names_in_].
    """
    X = _validated_x(X)
    if info.feature_names_in_ is not None:
        X = _named_columns(X, info)
    else:
        _check_width(X, info)
        _check_unnamed_columns(X, info)
    X = _same_representation(X, info)
    _check_kinds_unchanged(X, info)
    _check_finite_features(X, info.column_kinds)
    return X
