"""Scorers that read labels (pos_label) score the user's labels, not the encoded ones."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer
from sklearn.metrics import f1_score, make_scorer, recall_score

from ensemble_hpo import EnsembleClassifier
from ensemble_hpo.selection import (
    BestSingleSelector,
    CrossValidatedSelector,
    GreedySelector,
    GuardedGreedySelector,
)

X, y01 = load_breast_cancer(return_X_y=True)
KW = dict(models=["logistic", "knn"], search="random", n_trials=4, cv=3, random_state=0,
          warm_start_configs=None)


def _oof_labels(model, number):
    proba = model.population_.store.load_predictions(number)
    return model.classes_[np.argmax(proba, axis=1)]


def test_f1_on_labels_1_and_2_takes_class_1_as_positive_like_scikit_learn():
    y = y01 + 1  # classes [1, 2]; the encoded 1 is the user's 2
    model = EnsembleClassifier(**KW, scoring="f1").fit(X, y)
    best = model.best_candidate_.number
    pred = _oof_labels(model, best)
    assert model.best_score_ == pytest.approx(f1_score(y, pred, pos_label=1))
    assert model.best_score_ != pytest.approx(f1_score(y, pred, pos_label=2))
    board = model.leaderboard_.set_index("number")["score"]
    for number in board.index[:3]:
        assert board[number] == pytest.approx(f1_score(y, _oof_labels(model, number), pos_label=1))


def test_a_pos_label_scorer_on_string_labels():
    y = np.where(y01 == 0, "malignant", "benign")
    scorer = make_scorer(recall_score, pos_label="malignant")
    model = EnsembleClassifier(**KW, scoring=scorer).fit(X, y)
    pred = _oof_labels(model, model.best_candidate_.number)
    assert model.best_score_ == pytest.approx(recall_score(y, pred, pos_label="malignant"))


def test_a_scorer_that_cannot_read_the_labels_fails_before_training(tmp_path):
    y = np.where(y01 == 0, "malignant", "benign")
    with pytest.raises(ValueError, match="must be able to score this target.*pos_label"):
        EnsembleClassifier(**KW, scoring="f1", run_dir=str(tmp_path / "run")).fit(X, y)
    assert not (tmp_path / "run" / "study.log").exists()  # refused before the search started


def test_the_default_and_0_to_k_labels_keep_the_plain_scoring():
    from ensemble_hpo.metrics import PredictionScorer, stage_scoring

    assert stage_scoring("f1", "classification", np.array([0, 1])) == "f1"
    assert stage_scoring(None, "classification", np.array(["a", "b"])) is None
    assert isinstance(stage_scoring("f1", "classification", np.array([1, 2])), PredictionScorer)


def test_stages_built_with_the_scoring_name_read_the_users_labels_too():
    # As config.build_estimator builds them (YAML 'scoring: f1' with stage options).
    from ensemble_hpo.fusion import OptimizedWeights
    from ensemble_hpo.selection import GreedySelector

    y = y01 + 1
    by_object = EnsembleClassifier(**KW, scoring="f1", selection=GreedySelector(scoring="f1"),
                                   fusion=OptimizedWeights(loss="f1")).fit(X, y)
    by_name = EnsembleClassifier(**KW, scoring="f1", fusion="optimized").fit(X, y)
    assert by_object.selection_score_ == pytest.approx(by_name.selection_score_)
    assert by_object.cv_score_ == pytest.approx(by_name.cv_score_)
    assert by_object.selector_.scoring.classes.tolist() == [1, 2]


def test_a_stage_object_without_its_own_metric_optimises_the_runs():
    from ensemble_hpo.fusion import OptimizedWeights
    from ensemble_hpo.selection import GreedySelector

    model = EnsembleClassifier(**KW, scoring="accuracy", selection=GreedySelector(max_members=2),
                               fusion=OptimizedWeights()).fit(X, y01)
    assert model.selector_.scoring == "accuracy" and model.ensemble_.fuser.loss == "accuracy"
    assert model.selection_score_ >= model.best_score_ - 1e-12  # one metric, as documented
    own = EnsembleClassifier(**KW, scoring="accuracy", selection=GreedySelector(scoring="neg_log_loss"))
    assert own.fit(X, y01).selector_.scoring == "neg_log_loss"  # an explicit metric is kept



def test_a_study_scored_on_encoded_labels_is_rescored_on_resume(tmp_path):
    import optuna

    from ensemble_hpo.storage import make_storage

    y = y01 + 1
    kwargs = dict(KW, scoring="f1", run_dir=str(tmp_path / "run"))
    EnsembleClassifier(**kwargs).fit(X, y)
    study = optuna.load_study(study_name="ensemble_hpo",
                              storage=make_storage(f"journal://{tmp_path / 'run' / 'study.log'}"))
    assert study.user_attrs["scoring"] == "f1@user_labels"
    study.set_user_attr("scoring", "f1")  # as runs before labels were decoded recorded it
    with pytest.warns(UserWarning, match="rescored"):
        resumed = EnsembleClassifier(**dict(kwargs, n_trials=6)).fit(X, y)
    board = resumed.leaderboard_.set_index("number")["score"]
    for number in board.index:  # old and new candidates alike on the user's class 1
        assert board[number] == pytest.approx(f1_score(y, _oof_labels(resumed, number), pos_label=1))


def test_a_poisson_deviance_on_counts_with_zeros_is_accepted():
    from ensemble_hpo import EnsembleRegressor

    rng = np.random.default_rng(0)
    counts = rng.poisson(np.exp(X[:, 0] / X[:, 0].max()))
    assert (counts == 0).any()
    model = EnsembleRegressor(models=["random_forest"], n_trials=2, cv=3, random_state=0,
                              warm_start_configs=None, scoring="neg_mean_poisson_deviance")
    assert np.isfinite(model.fit(X, counts).best_score_)


def test_a_stage_objects_own_label_reading_metric_reads_the_users_labels():
    from ensemble_hpo.selection import GreedySelector

    own_f1 = GreedySelector(scoring="f1")
    model = EnsembleClassifier(**KW, scoring="accuracy", selection=own_f1).fit(X, y01 + 1)
    assert model.selector_.scoring.classes.tolist() == [1, 2]
    y = np.where(y01 == 0, "malignant", "benign")
    scorer = make_scorer(recall_score, pos_label="malignant")  # the run's, cloned into the stage
    same = GreedySelector(scoring=scorer)
    fitted = EnsembleClassifier(**KW, scoring=scorer, selection=same).fit(X, y)
    assert fitted.selection_score_ >= fitted.best_score_ - 1e-12


@pytest.mark.parametrize("make", [
    lambda s: BestSingleSelector(scoring=s),
    lambda s: GreedySelector(scoring=s),
    lambda s: CrossValidatedSelector(scoring=s, random_state=0),
    lambda s: GuardedGreedySelector(scoring=s, min_gain=1.0, random_state=0),
], ids=["best", "greedy", "greedy_cv", "guarded"])
def test_standalone_selectors_score_the_labels_they_were_given(make):
    """'f1' on labels [1, 2] scored class 2 (the code 1) as positive; pos_label='pos' failed."""
    from sklearn.metrics import f1_score, make_scorer

    rng = np.random.default_rng(0)
    codes = rng.integers(0, 2, 300)
    p1 = np.clip(0.7 * codes + 0.15 + rng.normal(0, 0.25, 300), 0.01, 0.99)
    P = np.stack([np.stack([1 - p1, p1], axis=1)] * 2)
    y = codes + 1
    selector = make("f1").fit(P, y)
    assert selector.score_ == pytest.approx(f1_score(y, np.where(p1 > 0.5, 2, 1), pos_label=1))
    text = np.where(codes == 1, "pos", "neg")
    scorer = make_scorer(f1_score, pos_label="pos")
    assert make(scorer).fit(P, text).score_ == pytest.approx(
        f1_score(text, np.where(p1 > 0.5, "pos", "neg"), pos_label="pos"))


def _accuracy_for_sklearn(estimator, X, y):
    return float(np.mean(estimator.predict(X) == y))


def _recall_of_malignant(estimator, X, y):
    return recall_score(y, estimator.predict(X), pos_label="malignant")


def test_a_scorer_function_written_for_scikit_learn_scores_like_its_scorer_name():
    """Audit: scoring=f(estimator, X, y), as scikit-learn takes it, was called as
    f(y_true, y_pred) and refused ("missing 1 required positional argument: 'y'"). The
    estimator replays the stored predictions; the labels are the user's."""
    X, y = load_breast_cancer(return_X_y=True)
    labels = np.array(["malignant", "benign"])[y]
    params = {"models": ["logistic"], "n_trials": 2, "cv": 3, "random_state": 0}
    by_function = EnsembleClassifier(scoring=_accuracy_for_sklearn, **params).fit(X, labels)
    by_name = EnsembleClassifier(scoring="accuracy", **params).fit(X, labels)
    np.testing.assert_allclose(by_function.leaderboard_["score"], by_name.leaderboard_["score"])
    assert by_function.cv_score_ == pytest.approx(by_name.cv_score_)
    reads_labels = EnsembleClassifier(scoring=_recall_of_malignant, **params).fit(X, labels)
    expected = make_scorer(recall_score, pos_label="malignant")
    by_scorer = EnsembleClassifier(scoring=expected, **params).fit(X, labels)
    assert reads_labels.cv_score_ == pytest.approx(by_scorer.cv_score_)
