"""Shared fixtures: small real data sets and quick estimator settings."""

from __future__ import annotations

import os
import warnings

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer, load_diabetes, load_iris

os.environ.setdefault("MPLBACKEND", "Agg")


@pytest.fixture(autouse=True, scope="session")
def _isolated_signing_key(tmp_path_factory: pytest.TempPathFactory):
    # Model files are signed with a per-user key; tests must not touch the real one. Session
    # scope, so module-scoped fixtures that write run folders sign with the same test key.
    key_dir = tmp_path_factory.getbasetemp() / "signing"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("ENSEMBLE_HPO_KEY_FILE", str(key_dir / "signing.key"))
        yield


@pytest.fixture(scope="session")
def cancer() -> tuple[np.ndarray, np.ndarray]:
    X, y = load_breast_cancer(return_X_y=True)
    return X, y


@pytest.fixture(scope="session")
def cancer_frame():
    return load_breast_cancer(return_X_y=True, as_frame=True)


@pytest.fixture(scope="session")
def iris() -> tuple[np.ndarray, np.ndarray]:
    return load_iris(return_X_y=True)


@pytest.fixture(scope="session")
def diabetes() -> tuple[np.ndarray, np.ndarray]:
    return load_diabetes(return_X_y=True)


def pytest_configure(config: pytest.Config) -> None:
    warnings.filterwarnings("ignore", category=FutureWarning, module="optuna")
