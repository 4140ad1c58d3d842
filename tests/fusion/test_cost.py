"""Prediction cost and ensemble trimming on real members (fold models on bundled data sets)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.datasets import load_breast_cancer, load_diabetes
from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.model_selection import KFold, StratifiedKFold
from sklearn.neighbors import KNeighborsClassifier, KNeighborsRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from ensemble_hpo._ensemble import Ensemble, Member
from ensemble_hpo.fusion import (
    HardVoting,
    OptimizedWeights,
    SoftVoting,
    Stacking,
    WeightedAverage,
)
from ensemble_hpo.fusion._cost import prediction_cost, trim_ensemble

# Selection weights of the three members: the slow forest is the lightest.
WEIGHTS = np.array([0.5, 0.3, 0.2])


def _models(task: str) -> list[tuple[str, Any]]:
    if task == "classification":
        return [("logistic", make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))),
                ("knn", make_pipeline(StandardScaler(), KNeighborsClassifier(n_neighbors=15))),
                ("random_forest", RandomForestClassifier(n_estimators=60, random_state=0))]
    return [("ridge", make_pipeline(StandardScaler(), Ridge())),
            ("knn", make_pipeline(StandardScaler(), KNeighborsRegressor(n_neighbors=15))),
            ("random_forest", RandomForestRegressor(n_estimators=60, random_state=0))]


def fold_members(X: np.ndarray, y: np.ndarray, task: str) -> tuple[list[Member], np.ndarray]:
    """Three members with 3 fold models each, like a search's candidates, and their OOF output."""
    kind = StratifiedKFold if task == "classification" else KFold
    folds = list(kind(n_splits=3, shuffle=True, random_state=0).split(X, y))
    members, oof = [], []
    for number, ((family, model), weight) in enumerate(zip(_models(task), WEIGHTS, strict=True)):
        fitted = [clone(model).fit(X[train], y[train]) for train, _ in folds]
        out = np.zeros((len(y), len(np.unique(y))) if task == "classification" else len(y))
        for fold_model, (_, test) in zip(fitted, folds, strict=True):
            out[test] = (fold_model.predict_proba(X[test]) if task == "classification"
                         else fold_model.predict(X[test]))
        members.append(Member(number=number, family=family, params={}, weight=float(weight),
                              models=fitted))
        oof.append(out)
    return members, np.stack(oof)


def with_fuser(members: list[Member], oof: np.ndarray, y: np.ndarray, fuser: Any) -> Ensemble:
    task = "classification" if oof.ndim == 3 else "regression"
    fuser.fit(oof, y, weights=[m.weight for m in members])
    return Ensemble(members=members, fuser=fuser, task=task,
                    n_classes=oof.shape[2] if oof.ndim == 3 else None)


@pytest.fixture(scope="module")
def cancer_members():
    X, y = load_breast_cancer(return_X_y=True)
    members, oof = fold_members(X, y, "classification")
    return X, y, members, oof
