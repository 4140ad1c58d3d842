"""Fusers and compare_fusers on real members' out-of-fold predictions."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from scipy.optimize import check_grad
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.datasets import load_breast_cancer, load_diabetes, load_wine
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.model_selection import KFold, StratifiedKFold, cross_val_predict
from sklearn.naive_bayes import GaussianNB
from sklearn.neighbors import KNeighborsClassifier, KNeighborsRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor
from threadpoolctl import threadpool_limits

from ensemble_hpo.fusion import (
    HardVoting,
    OptimizedWeights,
    SoftVoting,
    Stacking,
    WeightedAverage,
    compare_fusers,
)
from ensemble_hpo.fusion._optimized import (
    _softmax_objective,
    log_loss_objective,
    squared_error_objective,
)
from ensemble_hpo.metrics import get_prediction_scorer


@pytest.fixture(scope="module", autouse=True)
def _single_blas_thread():
    # BLAS threads only add overhead on these small matrices, badly so on a loaded machine.
    with threadpool_limits(limits=1):
        yield


def _classifiers() -> list[BaseEstimator]:
    return [
        make_pipeline(StandardScaler(), LogisticRegression(C=0.01)),
        GaussianNB(),
        DecisionTreeClassifier(max_depth=3, random_state=0),
        KNeighborsClassifier(n_neighbors=15),
        RandomForestClassifier(n_estimators=20, max_depth=4, random_state=0),
    ]


def _classification_members(loader) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    X, y = loader(return_X_y=True)
    cv = StratifiedKFold(n_splits=5, shuffle=True, random_state=0)
    P = np.stack(
        [cross_val_predict(m, X, y, cv=cv, method="predict_proba") for m in _classifiers()]
    )
    return X, y, P


@pytest.fixture(scope="module")
def binary():
    return _classification_members(load_breast_cancer)


@pytest.fixture(scope="module")
def multiclass():
    return _classification_members(load_wine)


@pytest.fixture(scope="module")
def regression():
    X, y = load_diabetes(return_X_y=True)
    models = [
        Ridge(alpha=1.0),
        DecisionTreeRegressor(max_depth=3, random_state=0),
        KNeighborsRegressor(n_neighbors=10),
        Ridge(alpha=100.0),
    ]
    cv = KFold(n_splits=5, shuffle=True, random_state=0)
    return X, y, np.stack([cross_val_predict(m, X, y, cv=cv) for m in models])


@pytest.fixture(params=["binary", "multiclass", "regression"])
def members(request):
    return request.getfixturevalue(request.param)


def _score(y, fused, task, scoring=None):
    return get_prediction_scorer(scoring, task)(y, fused)


def _task(P):
    return "classification" if P.ndim == 3 else "regression"


# ---------------------------------------------------------------- weights


@pytest.mark.parametrize(
    "fuser", [WeightedAverage(), SoftVoting(), OptimizedWeights()], ids=lambda f: type(f).__name__
)
def test_fitted_weights_are_a_distribution(fuser, members):
    X, y, P = members
    selection = np.arange(1, P.shape[0] + 1, dtype=float)
    weights = fuser.fit(P, y, weights=selection).weights_
    assert weights.shape == (P.shape[0],)
    assert np.all(weights >= 0)
    assert weights.sum() == pytest.approx(1.0)


def test_weighted_average_one_hot_reproduces_member(members):
    X, y, P = members
    for m in range(P.shape[0]):
        one_hot = np.eye(P.shape[0])[m]
        fused = WeightedAverage().fit(P, y, weights=one_hot).combine(P)
        np.testing.assert_allclose(fused, P[m], atol=1e-12)


def test_weighted_average_matches_numpy_average(members):
    X, y, P = members
    counts = np.array([3, 0, 1, 2, 5][: P.shape[0]])
    fused = WeightedAverage().fit(P, y, weights=counts).combine(P)
    np.testing.assert_allclose(fused, np.average(P, axis=0, weights=counts))


def test_soft_voting_ignores_weight_magnitude(members):
    X, y, P = members
    counts = np.array([7, 0, 1, 0, 2][: P.shape[0]])
    fuser = SoftVoting().fit(P, y, weights=counts)
    np.testing.assert_allclose(fuser.combine(P), P[counts > 0].mean(axis=0))
    np.testing.assert_allclose(fuser.weights_[counts > 0], 1.0 / np.count_nonzero(counts))


# ---------------------------------------------------------------- hard voting


def test_hard_voting_is_majority_vote_without_ties(binary):
    X, y, P = binary  # 5 members, 2 classes: a strict majority always exists
    votes = P.argmax(axis=2)
    majority = (votes.sum(axis=0) >= 3).astype(int)
    shares = HardVoting().fit(P, y).combine(P)
    np.testing.assert_array_equal(shares.argmax(axis=1), majority)
    np.testing.assert_allclose(shares[:, 1], votes.mean(axis=0))


def test_hard_voting_tie_goes_to_lowest_class_index(multiclass):
    X, y, P = multiclass
    votes = P.argmax(axis=2)
    rows = np.flatnonzero(votes[0] != votes[3])
    assert rows.size > 0
    pair = P[[0, 3]][:, rows]
    shares = HardVoting().fit(pair, y[rows]).combine(pair)
    np.testing.assert_array_equal(shares.max(axis=1), 0.5)
    np.testing.assert_array_equal(shares.argmax(axis=1), np.minimum(votes[0], votes[3])[rows])


def test_hard_voting_float_weight_tie_is_exact():
    # 0.1 + 0.2 != 0.3 in floating point; the tie must still go to class 0.
    P = np.array([[[0.2, 0.8]], [[0.3, 0.7]], [[0.9, 0.1]]])
    shares = HardVoting().fit(P, np.array([0]), weights=[0.1, 0.2, 0.3]).combine(P)
    assert shares[0, 0] == shares[0, 1] == 0.5
    assert shares.argmax(axis=1)[0] == 0


def test_hard_voting_member_own_tie_votes_lowest_class():
    P = np.array([[[0.2, 0.4, 0.4]], [[0.1, 0.45, 0.45]]])
    shares = HardVoting().fit(P, np.array([2])).combine(P)
    np.testing.assert_array_equal(shares, [[0.0, 1.0, 0.0]])


def test_hard_voting_weighted_and_unweighted(binary):
    X, y, P = binary
    heavy = np.array([10.0, 1, 1, 1, 1])
    weighted = HardVoting().fit(P, y, weights=heavy).combine(P)
    np.testing.assert_array_equal(weighted.argmax(axis=1), P[0].argmax(axis=1))
    unweighted = HardVoting(weighted=False).fit(P, y, weights=heavy).combine(P)
    np.testing.assert_allclose(unweighted, HardVoting().fit(P, y).combine(P))


# ---------------------------------------------------------------- optimised weights


@pytest.mark.parametrize("init", [None, [5, 1, 1, 1, 3]])
def test_optimized_weights_never_worse_than_init(members, init):
    X, y, P = members
    task = _task(P)
    init = None if init is None else init[: P.shape[0]]
    baseline = WeightedAverage().fit(P, y, weights=init).combine(P)
    fuser = OptimizedWeights().fit(P, y, weights=init)
    assert fuser.loss_ <= fuser.init_loss_
    scoring = "neg_log_loss" if task == "classification" else "neg_mean_squared_error"
    assert _score(y, fuser.combine(P), task, scoring) >= _score(y, baseline, task, scoring) - 1e-9
    # Real members differ in quality, so the optimum is strictly better than uniform.
    if init is None:
        assert fuser.loss_ < 0.99 * fuser.init_loss_


def test_optimized_weights_analytic_gradients_are_correct(multiclass, regression):
    rng = np.random.default_rng(0)
    cases = [(multiclass, log_loss_objective), (regression, squared_error_objective)]
    for (_, y, P), make in cases:
        sample_weight = rng.uniform(0.5, 2.0, size=y.shape[0])
        objective = _softmax_objective(make(P, y, sample_weight))
        z = rng.normal(size=P.shape[0])
        grad = objective(z)[1]
        error = check_grad(lambda v, f=objective: f(v)[0], lambda v, f=objective: f(v)[1], z,
                           epsilon=1e-7)
        assert error / (np.linalg.norm(grad) + 1.0) < 1e-4


def test_optimized_weights_with_scorer_loss(binary):
    X, y, P = binary
    fuser = OptimizedWeights(loss="neg_brier_score", max_iter=50).fit(P, y)
    assert fuser.loss_ <= fuser.init_loss_
    assert fuser.init_loss_ == pytest.approx(-_score(y, P.mean(axis=0), "classification",
                                                     "neg_brier_score"))


# ---------------------------------------------------------------- stacking


def test_stacking_cv_score_is_honest_on_noise_members(binary):
    X, y, _ = binary
    rng = np.random.default_rng(0)
    noise = rng.dirichlet([1.0, 1.0], size=(6, y.shape[0]))
    fuser = Stacking(
        final_estimator=DecisionTreeClassifier(random_state=0), scoring="roc_auc", random_state=0
    ).fit(noise, y)
    in_sample = _score(y, fuser.combine(noise), "classification", "roc_auc")
    assert in_sample > 0.95  # a meta-learner scored on its own training rows looks great
    assert abs(fuser.cv_score_ - 0.5) < 0.08  # ... but on unseen folds it is at chance


class _RowSpy(ClassifierMixin, BaseEstimator):
    """Predicts 1 for rows whose id (last passthrough column) it was trained on."""

    def fit(self, X, y):
        self.classes_ = np.unique(y)
        self.seen_ = set(X[:, -1].tolist())
        return self

    def predict_proba(self, X):
        seen = np.array([row_id in self.seen_ for row_id in X[:, -1]], dtype=float)
        return np.column_stack([1.0 - seen, seen])


def test_stacking_cv_predictions_come_from_models_that_did_not_see_the_row(binary):
    X, y, P = binary
    row_id = np.arange(y.shape[0], dtype=float)[:, None]
    fuser = Stacking(final_estimator=_RowSpy(), passthrough=True, random_state=0)
    fuser.fit(P, y, X=row_id)
    np.testing.assert_array_equal(fuser.cv_predictions_[:, 1], 0.0)
    # Sanity check of the spy: the final model saw every row.
    np.testing.assert_array_equal(fuser.combine(P, X=row_id)[:, 1], 1.0)


def test_stacking_meta_features_and_passthrough(binary, multiclass):
    for X, y, P in (binary, multiclass):
        n_members, _, n_classes = P.shape
        plain = Stacking(random_state=0).fit(P, y)
        assert plain.n_meta_features_ == n_members * (n_classes - 1)
        assert plain.weights_ is None
        wide = Stacking(passthrough=True, random_state=0).fit(P, y, X=X)
        assert wide.n_meta_features_ == plain.n_meta_features_ + X.shape[1]
        assert wide.combine(P, X=X).shape == (y.shape[0], n_classes)
        with pytest.raises(ValueError, match="The 'X' parameter must be given"):
            wide.combine(P)


def test_stacking_uses_only_selected_members(binary):
    X, y, P = binary
    fuser = Stacking(random_state=0).fit(P, y, weights=[0, 2, 0, 1, 1])
    np.testing.assert_array_equal(fuser.members_, [1, 3, 4])
    assert fuser.n_meta_features_ == 3


def test_stacking_scores_are_consistent(members):
    X, y, P = members
    task = _task(P)
    fuser = Stacking(random_state=0).fit(P, y)
    assert fuser.cv_predictions_.shape == P.shape[1:]
    assert fuser.cv_score_ == pytest.approx(_score(y, fuser.cv_predictions_, task))
    best_member = max(_score(y, p, task) for p in P)
    assert fuser.cv_score_ > best_member - 0.1 * abs(best_member)
    if task == "classification":
        np.testing.assert_allclose(fuser.cv_predictions_.sum(axis=1), 1.0)


def test_stacking_sample_weight(binary):
    X, y, P = binary
    sample_weight = np.where(y == 1, 1.0, 3.0)
    fitted = Stacking(random_state=0).fit(P, y, sample_weight=sample_weight)
    assert np.isfinite(fitted.cv_score_)
    custom = Stacking(final_estimator=LogisticRegression(), random_state=0)
    assert np.isfinite(custom.fit(P, y, sample_weight=sample_weight).cv_score_)
    with pytest.raises(ValueError, match="The 'final_estimator' parameter must accept"):
        Stacking(final_estimator=KNeighborsClassifier()).fit(P, y, sample_weight=sample_weight)


# ---------------------------------------------------------------- compare_fusers


def test_compare_fusers_defaults(members):
    X, y, P = members
    table = compare_fusers(P, y, random_state=0)
    expected = {"WeightedAverage", "SoftVoting", "OptimizedWeights", "Stacking"}
    if P.ndim == 3:
        expected.add("HardVoting")
    assert list(table.columns) == ["fusion", "cv_score", "cv_std", "fit_seconds"]
    assert set(table["fusion"]) == expected and len(table) == len(expected)
    assert np.all(np.isfinite(table[["cv_score", "cv_std", "fit_seconds"]].to_numpy()))
    assert table["cv_score"].is_monotonic_decreasing


def test_compare_fusers_custom_fusers_and_scoring(binary):
    X, y, P = binary
    fusers = {"avg": WeightedAverage(), "stack+X": Stacking(passthrough=True, cv=3)}
    table = compare_fusers(P, y, fusers, X=X, scoring="accuracy", cv=3, random_state=1)
    assert set(table["fusion"]) == {"avg", "stack+X"}
    assert table["cv_score"].between(0.85, 1.0).all()
    repeated = compare_fusers(P, y, [SoftVoting(), SoftVoting()], cv=3, random_state=1)
    assert list(repeated["fusion"]) == ["SoftVoting", "SoftVoting#2"]


def test_compare_fusers_with_a_selector_reselects_on_each_training_part():
    from ensemble_hpo.selection import GreedySelector

    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 300)
    p = rng.uniform(0.2, 0.8, (40, 300))  # 40 candidates with no signal at all
    P = np.stack([1 - p, p], axis=2)
    weights = GreedySelector().fit(P, y).weights_  # chosen on every row, held-out ones included
    fixed = compare_fusers(P, y, [WeightedAverage()], weights=weights, cv=5, random_state=0)
    nested = compare_fusers(P, y, [WeightedAverage()], selector=GreedySelector(), cv=5,
                            random_state=0)
    # Weights chosen on the scored rows look better than chance; chosen per fold they do not.
    assert fixed["cv_score"].item() > nested["cv_score"].item() + 0.005
    assert nested["cv_score"].item() < -np.log(2) + 0.005


def test_stackings_regression_meta_learner_chooses_its_penalty_on_group_folds():
    """Audit: RidgeCV chose it leaving one row out, so a row's group mates helped predict it."""
    from sklearn.linear_model import RidgeCV
    from sklearn.model_selection import GroupKFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from ensemble_hpo.fusion import Stacking

    rng = np.random.default_rng(0)
    groups = np.repeat(np.arange(30), 8)
    y = rng.normal(size=30)[groups] + rng.normal(scale=0.3, size=len(groups))
    # Members that memorised each group's mean: near duplicates within a group.
    preds = y + rng.normal(scale=[[0.1], [0.5], [1.0]], size=(3, len(y)))
    grouped = Stacking(random_state=0).fit(preds, y, groups=groups)
    ridge = grouped.final_estimator_[-1]
    folds = list(GroupKFold(5).split(preds.T, groups=groups))
    expected = make_pipeline(StandardScaler(), RidgeCV(alphas=np.logspace(-3, 3, 13), cv=folds))
    assert tuple(ridge.alphas) == (expected.fit(preds.T, y)[-1].alpha_,)
    plain = Stacking(random_state=0).fit(preds, y)
    assert len(plain.final_estimator_[-1].alphas) == 13  # without groups: leave-one-out


def test_stackings_grouped_penalty_is_chosen_by_the_weighted_score():
    """RidgeCV(cv=folds) scored a fold whose held-out rows all weigh 0 as NaN for every
    penalty (26 'Scoring failed' warnings) and took the first; rows of weight 0 must neither
    fit nor score."""
    from ensemble_hpo.fusion import Stacking

    rng = np.random.default_rng(0)
    groups = np.repeat(np.arange(30), 8)
    y = rng.normal(size=len(groups))
    preds = y + rng.normal(scale=[[0.3], [0.6], [1.0]], size=(3, len(y)))
    weight = np.where(groups % 3 == 0, 0.0, 1.0)
    noisy = np.where(weight == 0, y + rng.normal(scale=50.0, size=len(y)), y)

    def penalty(target):
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # no fold scored NaN
            fitted = Stacking(random_state=0).fit(preds, target, sample_weight=weight, groups=groups)
        return fitted.final_estimator_[-1].alphas[0]

    # Rows of weight 0 neither fit nor score: their targets cannot move the penalty.
    assert penalty(noisy) == penalty(y) < 100


def test_stackings_grouped_penalty_leaves_out_folds_that_train_on_no_weight():
    """Review: a fold whose training rows all weigh 0 made the penalty search raise."""
    from ensemble_hpo.fusion._stacking import _grouped_ridge

    rng = np.random.default_rng(0)
    groups = np.repeat(np.arange(6), 20)
    y = rng.normal(size=len(groups))
    features = (y + rng.normal(scale=[[0.3], [0.6]], size=(2, len(y)))).T
    weight = np.where(groups == 0, 1.0, 0.0)
    assert _grouped_ridge(features, y, weight, groups) is not None
