"""Small real-data prediction libraries shared by the selection tests (cached per session)."""

from __future__ import annotations

from functools import cache

import numpy as np
from sklearn.datasets import load_breast_cancer, load_diabetes, load_wine
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.model_selection import KFold, StratifiedKFold, cross_val_predict
from sklearn.neighbors import KNeighborsClassifier, KNeighborsRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor


@cache
def classification_library(name: str) -> tuple[np.ndarray, np.ndarray]:
    """OOF probabilities (n_models, n_samples, n_classes) of 9 quick models."""
    loader = {"breast_cancer": load_breast_cancer, "wine": load_wine}[name]
    X, y = loader(return_X_y=True)
    models = [
        make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=500))
        for c in (0.01, 0.1, 1)
    ]
    models += [make_pipeline(StandardScaler(), KNeighborsClassifier(k)) for k in (3, 15, 31)]
    models += [DecisionTreeClassifier(max_depth=d, random_state=0) for d in (2, 4, None)]
    cv = StratifiedKFold(5, shuffle=True, random_state=0)
    preds = [cross_val_predict(m, X, y, cv=cv, method="predict_proba") for m in models]
    return np.stack(preds), y


@cache
def regression_library() -> tuple[np.ndarray, np.ndarray]:
    """OOF predictions (n_models, n_samples) of 11 quick regressors on diabetes."""
    X, y = load_diabetes(return_X_y=True)
    models = [Ridge(alpha=a) for a in (0.001, 0.1, 1, 10)]
    models += [KNeighborsRegressor(k) for k in (3, 7, 15, 31)]
    models += [DecisionTreeRegressor(max_depth=d, random_state=0) for d in (2, 3, 5)]
    cv = KFold(5, shuffle=True, random_state=0)
    return np.stack([cross_val_predict(m, X, y, cv=cv) for m in models]), y.astype(float)


def noise_library(n_rows: int = 60, n_junk: int = 150, seed: int = 0):
    """One good model plus many copies of it with independent noise added.

    Averaging in a noisy copy only helps by chance on the rows it was chosen on, so plain
    greedy selection overfits here while the best single model generalises.
    """
    rng = np.random.default_rng(seed)
    y = rng.normal(size=n_rows)
    good = y + rng.normal(scale=0.3, size=n_rows)
    junk = good + rng.normal(scale=1.0, size=(n_junk, n_rows))
    return np.vstack([good, junk]), y
