"""Per-family preprocessing of real tabular data.

Every candidate model is wrapped as
``Pipeline([("prep", make_preprocessor(kind, column_kinds)), ("model", estimator)])``
and refitted per CV fold, so the preprocessors below never see validation rows.

Column kinds
------------
:func:`infer_column_kinds` splits the columns of ``X`` into *numeric* and
*categorical* ones:

* numpy arrays: numeric/bool dtypes are all numeric, string dtypes all
  categorical, object arrays are decided per column (see below); rows given as
  lists keep each cell's type (numbers and text mixed become an object array,
  not an all-string one);
* pandas DataFrames: numeric dtypes (including nullable ``Int64``/``Float64``)
  and ``bool``/``boolean`` (as 0/1) are numeric, ``category`` and string dtypes
  are categorical, ``object`` columns are decided per column;
* scipy sparse matrices: all numeric.

An ``object`` column is numeric when it has non-missing values and all of them
are real numbers (``int``, ``float``, ``bool``, ``decimal.Decimal``, numpy scalars); otherwise
(strings, a mix of strings and numbers, or only missing values) it is
categorical and its values are compared as strings (``2``, ``2.0`` and
``"2"`` are the same category). Datetime, timedelta and period columns are rejected with a
``TypeError``: the right numeric encoding (epoch, year, day of week...) is
problem specific, so the user must choose it.

Preprocessing kinds
-------------------
``"tree_native"``
    For XGBoost / HistGradientBoosting: numeric columns as float (NaN kept),
    categorical columns ordinal-encoded with missing and unseen categories
    encoded as NaN. Dense ``float32`` output, numeric columns first, then the
    categorical ones (in :class:`ColumnKinds` order).
``"tree"``
    For RandomForest / ExtraTrees. Since scikit-learn 1.4 (RandomForest) and 1.6
    (ExtraTrees) these forests split on NaN natively (the estimator tags report
    ``allow_nan=True`` with scikit-learn 1.9), so this is the same as
    ``"tree_native"``. With an older scikit-learn whose forests reject NaN,
    numeric NaN are imputed by the median plus missing-indicator columns and
    missing/unseen categories are encoded as ``-1``.
``"linear"``
    For linear models, kNN, SVM, MLP: numeric columns median-imputed with
    missing indicators and standardized; categorical columns imputed with the
    constant ``"__missing__"`` and one-hot encoded (rare categories and unseen
    ones grouped into an "infrequent" column). Dense input gives a dense
    ``float64`` output; sparse input stays sparse (scaling without centering).
``"none"`` or ``None``
    Identity: the user supplies their own preprocessing.
"""

from __future__ import annotations

import decimal
import numbers
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import ExtraTreesRegressor, RandomForestRegressor
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, OrdinalEncoder, StandardScaler

__all__ = [
    "PREPROCESSING_KINDS",
    "ColumnKinds",
    "infer_column_kinds",
    "make_preprocessor",
]

PREPROCESSING_KINDS = ("tree_native", "tree", "linear", "none")
MISSING_CATEGORY = "__missing__"
# Categories seen fewer times than this in a training fold become "infrequent"
# for one-hot encoding: a column that is 1 for a handful of rows mostly adds noise
# to linear models and kNN distances.
MIN_ONEHOT_FREQUENCY = 5

ColumnKey = int | str


@dataclass(frozen=True)
class ColumnKinds:
    """Which columns of ``X`` are numeric and which are categorical.

    Parameters
    ----------
    numeric, categorical : tuple of str or int
        Column keys: names when ``X`` is a DataFrame whose column names are all
        strings, positions otherwise. Together they cover every column once.
    sparse : bool
        Whether ``X`` is a scipy sparse matrix (then every column is numeric).

    Examples
    --------
    >>> import pandas as pd
    >>> kinds = infer_column_kinds(pd.DataFrame({"age": [30, 41], "city": ["Oslo", "Lima"]}))
    >>> kinds
    ColumnKinds(numeric=('age',), categorical=('city',), sparse=False)
    >>> kinds.n_features
    2
    """

    numeric: tuple[ColumnKey, ...] = ()
    categorical: tuple[ColumnKey, ...] = ()
    sparse: bool = False

    @property
    def n_features(self) -> int:
        """Total number of input columns."""
        return len(self.numeric) + len(self.categorical)


# ----------------------------------------------------------------------------- inference


def _is_real_number(value: Any) -> bool:
    # Decimal is what SQL drivers return for NUMERIC columns; it is not a numbers.Real.
    return isinstance(value, numbers.Real | np.bool_ | decimal.Decimal)


_NUMERIC_INFERRED = frozenset({"integer", "floating", "mixed-integer-float", "boolean", "decimal"})


def _object_column_is_numeric(values: np.ndarray) -> bool:
    # infer_dtype says "empty" for an all-missing column: that is ambiguous, and
    # categorical handling accepts any later value (cast to str) while numeric
    # handling would fail on a string, so it counts as categorical.
    inferred = pd.api.types.infer_dtype(values, skipna=True)
    if inferred in _NUMERIC_INFERRED:
        return True
    if inferred not in ("mixed", "mixed-integer"):
        return False
    # Numbers mixed with booleans are reported as "mixed"; strings end the scan early.
    return all(_is_real_number(v) for v in values[~pd.isna(values)])


def _reject_temporal(dtype: Any, column: ColumnKey) -> None:
    temporal = (
        pd.api.types.is_datetime64_any_dtype(dtype)
        or pd.api.types.is_timedelta64_dtype(dtype)
        or isinstance(dtype, pd.PeriodDtype)
    )
    if temporal:
        raise TypeError(
            f"Column {column!r} has dtype {dtype}, which is not supported. Convert date/time "
            "columns to numeric features first (e.g. year, day of week, or seconds since "
            "an origin)."
        )


def _reject_complex(dtype: Any, column: ColumnKey) -> None:
    if pd.api.types.is_complex_dtype(dtype):
        # Same wording as scikit-learn's check_array, which its estimator checks expect.
        raise ValueError(f"Complex data not supported: column {column!r} has dtype {dtype}.")


def _pandas_column_is_numeric(column: pd.Series, key: ColumnKey) -> bool:
    dtype = column.dtype
    _reject_temporal(dtype, key)
    _reject_complex(dtype, key)
    if pd.api.types.is_object_dtype(dtype):
        return _object_column_is_numeric(column.to_numpy(dtype=object))
    if isinstance(dtype, pd.CategoricalDtype) or pd.api.types.is_string_dtype(dtype):
        return False
    return pd.api.types.is_numeric_dtype(dtype) or pd.api.types.is_bool_dtype(dtype)


def _column_keys(frame: pd.DataFrame) -> list[ColumnKey]:
    if all(isinstance(name, str) for name in frame.columns):
        return list(frame.columns)
    return list(range(frame.shape[1]))


def _infer_frame(X: pd.DataFrame) -> ColumnKinds:
    numeric: list[ColumnKey] = []
    categorical: list[ColumnKey] = []
    for key, (_, column) in zip(_column_keys(X), X.items(), strict=True):
        (numeric if _pandas_column_is_numeric(column, key) else categorical).append(key)
    return ColumnKinds(tuple(numeric), tuple(categorical))


def _infer_array(X: np.ndarray) -> ColumnKinds:
    if X.ndim != 2:
        raise ValueError(f"Expected a 2D array for X. Got an array with {X.ndim} dimension(s).")
    _reject_complex(X.dtype, "all columns")
    positions = tuple(range(X.shape[1]))
    kind = X.dtype.kind
    if kind in "biuf":
        return ColumnKinds(numeric=positions)
    if kind in "US":
        return ColumnKinds(categorical=positions)
    if kind == "O":
        numeric = tuple(j for j in positions if _object_column_is_numeric(X[:, j]))
        categorical = tuple(j for j in positions if j not in set(numeric))
        return ColumnKinds(numeric, categorical)
    _reject_temporal(X.dtype, "all columns")
    raise TypeError(f"Arrays of dtype {X.dtype} are not supported for X.")


def infer_column_kinds(X: Any) -> ColumnKinds:
    """Split the columns of ``X`` into numeric and categorical ones.

    Parameters
    ----------
    X : array-like, pandas DataFrame or scipy sparse matrix of shape (n_samples, n_features)
        Input data. Lists are converted with :func:`numpy.asarray`.

    Returns
    -------
    ColumnKinds
        Column keys are names for DataFrames with string column names and
        positions otherwise.

    Raises
    ------
    TypeError
        For datetime, timedelta and period columns.
    ValueError
        For complex columns.

    Examples
    --------
    >>> import numpy as np
    >>> infer_column_kinds(np.array([[1, "a"], [2.5, None]], dtype=object))
    ColumnKinds(numeric=(0,), categorical=(1,), sparse=False)
    """
    if sp.issparse(X):
        _reject_complex(X.dtype, "all columns")
        return ColumnKinds(numeric=tuple(range(X.shape[1])), sparse=True)
    if isinstance(X, pd.DataFrame):
        return _infer_frame(X)
    return _infer_array(np.asarray(X))


# ----------------------------------------------------------------------------- conversions
# Module-level functions (not lambdas) so fitted pipelines pickle with joblib.


def _as_float(X: Any) -> Any:
    """Numeric columns as float64 with NaN for every kind of missing value."""
    if sp.issparse(X):
        return X.astype(np.float64)
    if isinstance(X, pd.DataFrame):
        return _frame_as_float(X)
    return _object_safe_float(np.asarray(X))


def _frame_as_float(X: pd.DataFrame) -> np.ndarray:
    # Columns with a plain numpy int/uint/float/bool dtype cannot hold pd.NA, so they are
    # converted together, block by block: one Series per column took 2.2 ms per call on
    # mlc_churn's 15 numeric columns, the block 0.3 ms. Nullable and object columns keep
    # the per-column path.
    plain = np.array([isinstance(d, np.dtype) and d.kind in "biuf" for d in X.dtypes], dtype=bool)
    if plain.all():
        return np.ascontiguousarray(X.to_numpy(dtype=np.float64))
    out = np.empty(X.shape, dtype=np.float64)
    if plain.any():
        out[:, plain] = X.iloc[:, np.flatnonzero(plain)].to_numpy(dtype=np.float64)
    for j in np.flatnonzero(~plain):
        out[:, j] = _column_as_float(X.iloc[:, j])
    return out


def _object_safe_float(values: np.ndarray) -> np.ndarray:
    if values.dtype == object:
        # float() rejects pd.NA and None, which object columns may hold.
        values = np.where(pd.isna(values), np.nan, values)
    return values.astype(np.float64)


def _column_as_float(column: pd.Series) -> np.ndarray:
    if column.dtype == object:
        return _object_safe_float(column.to_numpy(dtype=object))
    return column.to_numpy(dtype=np.float64, na_value=np.nan)


def _category_label(value: Any) -> Any:
    if pd.isna(value):
        return np.nan
    # 3, 3.0 and np.int64(3) must be the same category in a mixed object column.
    if isinstance(value, float | np.floating) and float(value).is_integer():
        return str(int(value))
    if isinstance(value, np.generic):
        value = value.item()
    return str(value)


def _column_labels(column: Any) -> np.ndarray:
    # Label the distinct values only: categorical columns have few of them, and a
    # Python call per cell would dominate the per-fold cost on large tables.
    try:
        codes, uniques = pd.factorize(column, use_na_sentinel=True)
    except TypeError:
        # Unhashable cells (e.g. dicts in an object column): label every cell.
        return np.asarray([_category_label(value) for value in column], dtype=object)
    labels = [_category_label(value) for value in np.asarray(uniques, dtype=object)]
    # Code -1 (missing) picks the trailing NaN.
    return np.asarray([*labels, np.nan], dtype=object)[codes]


def _as_str_categories(X: Any) -> np.ndarray:
    """Categorical columns as an object array of str, with ``np.nan`` for missing values."""
    if isinstance(X, pd.DataFrame):
        columns = [X.iloc[:, j] for j in range(X.shape[1])]
    else:
        values = np.asarray(X, dtype=object)
        columns = list((values.reshape(-1, 1) if values.ndim == 1 else values).T)
    if not columns:
        return np.empty((len(X), 0), dtype=object)
    return np.column_stack([_column_labels(column) for column in columns])


def _as_dense_float32(X: Any) -> np.ndarray:
    dense = X.toarray() if sp.issparse(X) else np.asarray(X)
    return dense.astype(np.float32)


def _converter(func: Any) -> FunctionTransformer:
    return FunctionTransformer(func, accept_sparse=True, feature_names_out="one-to-one")


# ----------------------------------------------------------------------------- builders


def _forests_support_nan() -> bool:
    """Whether this scikit-learn's RandomForest and ExtraTrees split on NaN natively."""
    return all(
        model().__sklearn_tags__().input_tags.allow_nan
        for model in (RandomForestRegressor, ExtraTreesRegressor)
    )


def _column_transformer(
    parts: Sequence[tuple[str, Any, tuple[ColumnKey, ...]]],
) -> ColumnTransformer:
    used = [(name, step, list(columns)) for name, step, columns in parts if columns]
    return ColumnTransformer(used, remainder="drop", sparse_threshold=0.0)


def _median_imputer() -> SimpleImputer:
    # keep_empty_features: an all-NaN column (allowed in X) becomes zeros instead of
    # being dropped with a warning, so the output width does not depend on the fold.
    return SimpleImputer(strategy="median", add_indicator=True, keep_empty_features=True)


def _ordinal_encoder(unknown: float) -> OrdinalEncoder:
    # unknown is np.nan or the int -1 (OrdinalEncoder rejects the float -1.0).
    return OrdinalEncoder(
        handle_unknown="use_encoded_value",
        unknown_value=unknown,
        encoded_missing_value=unknown,
        dtype=np.float64,
    )


def _tree_preprocessor(kinds: ColumnKinds, *, impute: bool) -> Pipeline:
    if kinds.sparse:
        # HistGradientBoosting rejects sparse input, so tree kinds always densify.
        return Pipeline([("dense", _converter(_as_dense_float32))])
    numeric: Any = _converter(_as_float)
    if impute:
        numeric = Pipeline(
            [
                ("float", numeric),
                ("impute", _median_imputer()),
            ]
        )
    categorical = Pipeline(
        [
            ("str", _converter(_as_str_categories)),
            ("ordinal", _ordinal_encoder(-1 if impute else np.nan)),
        ]
    )
    columns = _column_transformer(
        [("num", numeric, kinds.numeric), ("cat", categorical, kinds.categorical)]
    )
    return Pipeline([("columns", columns), ("float32", _converter(_as_dense_float32))])


def _linear_preprocessor(kinds: ColumnKinds, max_onehot_categories: int) -> Any:
    numeric = Pipeline(
        [
            ("float", _converter(_as_float)),
            ("impute", _median_imputer()),
            ("scale", StandardScaler(with_mean=not kinds.sparse)),
        ]
    )
    if kinds.sparse:
        return numeric
    categorical = Pipeline(
        [
            ("str", _converter(_as_str_categories)),
            (
                "impute",
                SimpleImputer(
                    strategy="constant", fill_value=MISSING_CATEGORY, keep_empty_features=True
                ),
            ),
            (
                "onehot",
                OneHotEncoder(
                    handle_unknown="infrequent_if_exist",
                    max_categories=max_onehot_categories,
                    min_frequency=MIN_ONEHOT_FREQUENCY,
                    sparse_output=False,
                ),
            ),
        ]
    )
    return _column_transformer(
        [("num", numeric, kinds.numeric), ("cat", categorical, kinds.categorical)]
    )


def make_preprocessor(
    kind: str | None,
    column_kinds: ColumnKinds,
    *,
    max_onehot_categories: int = 20,
) -> Any:
    """Build the (unfitted) preprocessing transformer for a model family.

    Parameters
    ----------
    kind : {"tree_native", "tree", "linear", "none"} or None
        Preprocessing kind of the model family (see the module docstring).
    column_kinds : ColumnKinds
        Output of :func:`infer_column_kinds` on the training data.
    max_onehot_categories : int, default=20
        Maximum number of one-hot columns per categorical feature for
        ``"linear"``, the infrequent-category column included.

    Returns
    -------
    transformer
        An unfitted scikit-learn transformer (a ``Pipeline``,
        ``ColumnTransformer`` or identity ``FunctionTransformer``).

    Examples
    --------
    >>> import numpy as np
    >>> import pandas as pd
    >>> X = pd.DataFrame({"x": [1.0, np.nan, 3.0, 4.0], "c": ["a", "b", None, "a"]})
    >>> prep = make_preprocessor("tree_native", infer_column_kinds(X))
    >>> prep.fit_transform(X)
    array([[ 1.,  0.],
           [nan,  1.],
           [ 3., nan],
           [ 4.,  0.]], dtype=float32)
    >>> make_preprocessor("linear", infer_column_kinds(X)).fit_transform(X).shape
    (4, 3)
    """
    if not isinstance(column_kinds, ColumnKinds):
        raise TypeError(
            "The 'column_kinds' parameter must be a ColumnKinds instance. "
            f"Got {type(column_kinds).__name__} instead."
        )
    is_int = isinstance(max_onehot_categories, numbers.Integral)
    if not is_int or isinstance(max_onehot_categories, bool) or max_onehot_categories < 2:
        raise ValueError(
            "The 'max_onehot_categories' parameter must be an int >= 2. "
            f"Got {max_onehot_categories!r} instead."
        )
    if kind is None or kind == "none":
        return FunctionTransformer(accept_sparse=True, feature_names_out="one-to-one")
    if kind == "tree_native":
        return _tree_preprocessor(column_kinds, impute=False)
    if kind == "tree":
        return _tree_preprocessor(column_kinds, impute=not _forests_support_nan())
    if kind == "linear":
        return _linear_preprocessor(column_kinds, max_onehot_categories)
    raise ValueError(
        f"The 'kind' parameter must be one of {PREPROCESSING_KINDS} or None. Got {kind!r} instead."
    )
