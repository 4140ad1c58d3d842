"""Run report: HTML + PNG files from real fitted runs, and a render in headless Chromium."""

from __future__ import annotations

import ast
import copy
import re
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer, load_diabetes
from sklearn.exceptions import NotFittedError

from ensemble_hpo import EnsembleClassifier, EnsembleRegressor
from ensemble_hpo.report import FIGURE_KEYS, make_report
from ensemble_hpo.report._data import param_importances
from ensemble_hpo.report._html import leaderboard_table

pytest.importorskip("matplotlib")

_IMG_PATTERN = re.compile(r'<img [^>]*src="data:image/png;base64,[A-Za-z0-9+/=]+"')
_CHROMIUM = next((p for p in (shutil.which("chromium"), shutil.which("chromium-browser"),
                              "/usr/bin/chromium") if p and Path(p).exists()), None)


@pytest.fixture(scope="module")
def cancer_run() -> tuple[EnsembleClassifier, np.ndarray, np.ndarray]:
    X, y = load_breast_cancer(return_X_y=True)
    clf = EnsembleClassifier(models=["logistic", "knn", "random_forest"], n_trials=6, cv=3,
                             random_state=0).fit(X, y)
    return clf, X, y


@pytest.fixture(scope="module")
def diabetes_run() -> tuple[EnsembleRegressor, np.ndarray, np.ndarray]:
    X, y = load_diabetes(return_X_y=True)
    reg = EnsembleRegressor(models=["ridge", "knn"], n_trials=6, cv=3, random_state=0).fit(X, y)
    return reg, X, y


@pytest.fixture(scope="module")
def cancer_report(cancer_run, tmp_path_factory) -> Path:
    clf, X, y = cancer_run
    return make_report(clf, tmp_path_factory.mktemp("cancer"), X=X, y=y, max_learning_members=2)


@pytest.fixture(scope="module")
def diabetes_report(diabetes_run, tmp_path_factory) -> Path:
    reg, X, y = diabetes_run
    return make_report(reg, tmp_path_factory.mktemp("diabetes"), X=X, y=y, title="Diabetes <run>",
                       max_learning_members=2)


def _png_pixels(path: Path) -> np.ndarray:
    from matplotlib.image import imread

    return imread(path)


@pytest.mark.parametrize("report", ["cancer_report", "diabetes_report"])
def test_report_writes_html_and_every_figure(report: str, request: pytest.FixtureRequest) -> None:
    path = request.getfixturevalue(report)
    assert path.name == "report.html" and path.is_file()
    for key in FIGURE_KEYS:
        pixels = _png_pixels(path.parent / "figures" / f"{key}.png")
        assert pixels.shape[0] > 100 and pixels.shape[1] > 300
        assert pixels[..., :3].std() > 0.01, f"{key}.png is blank"


@pytest.mark.parametrize("report", ["cancer_report", "diabetes_report"])
def test_html_is_self_contained_with_one_image_per_figure(
    report: str, request: pytest.FixtureRequest
) -> None:
    text = request.getfixturevalue(report).read_text(encoding="utf-8")
    assert len(_IMG_PATTERN.findall(text)) == len(FIGURE_KEYS)
    assert not re.search(r"(src|href)=\"(https?:)?//", text)
    assert "<script" not in text
    for key in FIGURE_KEYS:
        assert f'<section id="{key}">' in text
    assert text.count('<p class="how">') == len(FIGURE_KEYS)


def test_html_content_describes_the_run(cancer_run, cancer_report, diabetes_report) -> None:
    clf, _, _ = cancer_run
    text = cancer_report.read_text(encoding="utf-8")
    assert "neg_log_loss" in text
    for member in clf.ensemble_.members:
        assert f"#{member.number} {member.family}" in text
    # Every candidate is in the leaderboard table (6 < 30 rows).
    assert text.count("<tr class=") == len(clf.leaderboard_)
    # The title is escaped, not injected as markup.
    assert "<title>Diabetes &lt;run&gt;</title>" in diabetes_report.read_text(encoding="utf-8")


def test_leaderboard_table_shows_failed_rows_with_their_error() -> None:
    board = pd.DataFrame([
        {"number": 0, "family": "ridge", "status": "ok", "score": -1.5, "fold_scores": [],
         "fit_time": 0.1, "weight": 1.0, "params": {"alpha": 0.123456}, "error": None},
        {"number": 1, "family": "knn", "status": "failed", "score": np.nan, "fold_scores": [],
         "fit_time": None, "weight": 0.0, "params": {}, "error": "ValueError: x < 0 & y"},
    ])
    html = leaderboard_table(board, limit=30)
    failed = re.search(r'<tr class="failed">(.*?)</tr>', html).group(1)
    assert "failed" in failed and "ValueError: x &lt; 0 &amp; y" in failed
    assert '<tr class="member">' in html and "0.1235" in html


def test_leaderboard_table_keeps_top_rows_and_failed_ones() -> None:
    ok = [{"number": i, "family": "ridge", "status": "ok", "score": -float(i), "fold_scores": [],
           "fit_time": 0.1, "weight": 0.0, "params": {}, "error": None} for i in range(40)]
    bad = [{**ok[0], "number": 99, "status": "timeout", "score": np.nan, "error": "too slow"}]
    html = leaderboard_table(pd.DataFrame(ok + bad), limit=30)
    assert html.count("<tr class=") == 31 and "too slow" in html


def test_report_says_how_many_unfinished_candidates_it_leaves_out(cancer_run, tmp_path: Path) -> None:
    clf, _, _ = cancer_run
    crowded = copy.copy(clf)
    board = clf.leaderboard_
    failed = pd.DataFrame([{**board.iloc[0].to_dict(), "number": 100 + i, "status": "failed",
                            "score": np.nan, "weight": 0.0, "error": "boom"} for i in range(15)])
    crowded.leaderboard_ = pd.concat([board, failed], ignore_index=True)
    text = make_report(crowded, tmp_path).read_text(encoding="utf-8")
    assert "Showing 10 of 15 candidates that did not finish (15 failed)" in text


def test_report_says_when_only_the_fusion_in_use_was_estimated(cancer_run, tmp_path: Path) -> None:
    clf, _, _ = cancer_run
    trimmed = copy.copy(clf)
    chosen = type(clf.ensemble_.fuser).__name__
    table = clf.fusion_comparison_
    trimmed.fusion_comparison_ = table[table["fusion"] == chosen].reset_index(drop=True)
    text = make_report(trimmed, tmp_path).read_text(encoding="utf-8")
    assert f"Only {chosen}, the fusion in use, was estimated" in text


def test_report_names_learning_curve_sizes_a_member_cannot_fit(tmp_path: Path) -> None:
    # Audit: kNN with 40 neighbours cannot fit 30 rows; that size vanished without a word.
    X, y = load_breast_cancer(return_X_y=True)
    family = {"name": "knn40", "base": "knn", "params": {"n_neighbors": [40]}}
    clf = EnsembleClassifier(models=[family], n_trials=1, cv=3, random_state=0,
                             warm_start_configs=None).fit(X[:150], y[:150])
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # no bare numpy warning either
        text = make_report(clf, tmp_path, X=X[:150], y=y[:150]).read_text(encoding="utf-8")
    assert "no score at [" in text and "cannot be fitted on so few rows" in text


def test_report_without_trials_falls_back_to_leaderboard(diabetes_run, tmp_path: Path) -> None:
    reg, _, _ = diabetes_run
    bare = copy.copy(reg)
    del bare.trials_
    path = make_report(bare, tmp_path, learning_curves=False)
    text = path.read_text(encoding="utf-8")
    figures = tmp_path / "figures"
    assert (figures / "optimization_history.png").is_file()
    assert not (figures / "param_importances.png").exists()
    assert not (figures / "learning_curves.png").exists()
    assert "trials_" in text and "learning_curves=False" in text


def test_importances_single_family_and_too_few_trials(cancer_run) -> None:
    clf, _, _ = cancer_run
    groups, notes = param_importances(clf.trials_)
    assert set(groups["family choice"]) == {"family"}
    assert set(groups["knn"]) == {"knn__n_neighbors", "knn__p", "knn__weights"}
    assert np.isclose(sum(groups["knn"].values()), 1.0)
    assert any("logistic" in note for note in notes)

    knn_only = [t for t in clf.trials_ if t.params["family"] == "knn"]
    groups, notes = param_importances(knn_only)
    assert "family choice" not in groups and "knn" in groups
    assert any("one model family has finished candidates" in note for note in notes)

    groups, notes = param_importances(clf.trials_[:1])
    assert groups == {} and "at least 2 completed trials" in notes[0]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"X": np.zeros((3, 2))}, "'X' and 'y' parameters must be given together"),
        ({"max_learning_members": 0}, "'max_learning_members' parameter must be a positive int"),
        ({"learning_curves": "yes"}, "'learning_curves' parameter must be a bool"),
        ({"sample_weight": np.ones(569)}, "need the training data"),
    ],
)
def test_invalid_arguments(cancer_run, tmp_path: Path, kwargs: dict, match: str) -> None:
    clf, _, _ = cancer_run
    with pytest.raises(ValueError, match=match):
        make_report(clf, tmp_path, **kwargs)


def test_unseen_class_and_length_mismatch_raise(cancer_run, tmp_path: Path) -> None:
    clf, X, y = cancer_run
    with pytest.raises(ValueError, match="classes seen during fit"):
        make_report(clf, tmp_path, X=X, y=np.where(y == 1, 7, 0))
    with pytest.raises(ValueError, match="same number of samples"):
        make_report(clf, tmp_path, X=X[:-1], y=y)
    with pytest.raises(ValueError, match="sample_weight has 568 elements"):
        make_report(clf, tmp_path, X=X, y=y, sample_weight=np.ones(568))


def test_unfitted_estimator_raises(tmp_path: Path) -> None:
    with pytest.raises(NotFittedError):
        make_report(EnsembleRegressor(), tmp_path)


def test_missing_matplotlib_names_the_extra(cancer_run, tmp_path, monkeypatch) -> None:
    clf, _, _ = cancer_run
    for name in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.setitem(sys.modules, name, None)
    with pytest.raises(ImportError, match=r"pip install 'ensemble_hpo\[report\]'"):
        make_report(clf, tmp_path)


def test_core_package_does_not_import_the_report_and_matplotlib_is_lazy() -> None:
    # Read the sources rather than importing in a fresh interpreter (seconds per import).
    package = Path(__import__("ensemble_hpo").__file__).parent
    for source in package.rglob("*.py"):
        if "report" in source.relative_to(package).parts or source.name == "cli.py":
            continue
        assert not re.search(r"^\s*(from|import) ensemble_hpo\.report|^from ensemble_hpo import "
                             r"report", source.read_text(encoding="utf-8"), re.M), source
    for source in (package / "report").glob("*.py"):
        tree = ast.parse(source.read_text(encoding="utf-8"))
        top_level = [n for n in tree.body if isinstance(n, ast.Import | ast.ImportFrom)]
        names = [a.name for n in top_level if isinstance(n, ast.Import) for a in n.names]
        names += [n.module or "" for n in top_level if isinstance(n, ast.ImportFrom)]
        assert not [n for n in names if n.split(".")[0] == "matplotlib"], source


def test_failing_section_becomes_a_note_and_stale_figures_go(cancer_run, tmp_path: Path) -> None:
    clf, _, _ = cancer_run
    broken = copy.copy(clf)
    broken.fusion_comparison_ = pd.DataFrame({"fusion": ["A"], "cv_score": ["not a number"],
                                              "cv_std": [0.1]})
    figures = tmp_path / "figures"
    figures.mkdir()
    for key in ("fusion_comparison", "learning_curves"):
        (figures / f"{key}.png").write_bytes(b"from an older report")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        path = make_report(broken, tmp_path)  # no X, y: no learning curves this time
    text = path.read_text(encoding="utf-8")
    assert any("Fusion comparison" in str(w.message) for w in caught)
    assert "This section could not be drawn" in text and "pass the training data" in text
    assert not (figures / "fusion_comparison.png").exists()
    assert not (figures / "learning_curves.png").exists()
    assert (figures / "ensemble_weights.png").is_file()


def test_trajectory_of_a_selector_in_another_metric_is_drawn_in_its_own(tmp_path: Path) -> None:
    # Audit: accuracies were drawn under "neg_log_loss" beside the best single candidate's
    # log loss, a gain of 1.05 that was not there; and the in-sample path read as held-out.
    from ensemble_hpo.selection import GreedySelector

    X, y = load_breast_cancer(return_X_y=True)
    clf = EnsembleClassifier(models=["logistic", "knn"], n_trials=4, cv=3, random_state=0,
                             selection=GreedySelector(scoring="accuracy")).fit(X[:200], y[:200])
    text = make_report(clf, tmp_path).read_text(encoding="utf-8")
    assert "The selector scores by accuracy, not by neg_log_loss" in text
    held_out = f"{clf.cv_score_ - clf.best_single_cv_score_:+.5g} in neg_log_loss"
    assert held_out in text and "in-sample, so optimistic" in text


def test_notes_name_a_scorer_object_without_internal_marks(tmp_path: Path) -> None:
    """Audit: notes printed the internal key ("callable:make_scorer(...)@user_labels")."""
    from sklearn.metrics import f1_score, make_scorer

    from ensemble_hpo.selection import GreedySelector

    X, y = load_breast_cancer(return_X_y=True)
    labels = np.where(y == 1, "benign", "malignant")
    clf = EnsembleClassifier(models=["logistic", "knn"], n_trials=4, cv=3, random_state=0,
                             scoring=make_scorer(f1_score, pos_label="malignant"),
                             selection=GreedySelector(scoring="accuracy")).fit(X[:200], labels[:200])
    text = make_report(clf, tmp_path, learning_curves=False).read_text(encoding="utf-8")
    assert "not by make_scorer(f1_score" in text and "callable:" not in text


@pytest.mark.parametrize("fusion", ["soft_voting", "stacking"])
def test_weights_are_those_the_fusion_combines_by(tmp_path: Path, fusion: str) -> None:
    # Audit: selection weights were shown as each member's share of the combined prediction
    # whatever the fusion (soft voting weighs each member equally).
    X, y = load_breast_cancer(return_X_y=True)
    clf = EnsembleClassifier(models=["logistic", "knn", "random_forest"], n_trials=8, cv=3,
                             random_state=0, fusion=fusion).fit(X[:200], y[:200])
    text = make_report(clf, tmp_path).read_text(encoding="utf-8")
    members = clf.ensemble_.members
    if fusion == "stacking":
        assert "combines the members by its own model" in text
    elif len(members) > 1 and len({round(m.weight, 6) for m in members}) > 1:
        share = 1.0 / len(members)
        assert "Weights as SoftVoting combines the members" in text
        assert f"({share:.2f})" in text


# -- a real browser ----------------------------------------------------------------------------
_needs_chromium = pytest.mark.skipif(
    _CHROMIUM is None, reason="Chromium is not installed (apt-get install chromium)"
)


def _chromium(args: list[str], tmp_path: Path) -> subprocess.CompletedProcess:
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={tmp_path / 'chromium-profile'}"]
    return subprocess.run([_CHROMIUM, *flags, *args], capture_output=True, text=True, timeout=60)


@_needs_chromium
def test_report_renders_in_headless_chromium(cancer_report: Path, tmp_path: Path) -> None:
    shot = tmp_path / "report.png"
    result = _chromium([f"--screenshot={shot}", "--window-size=1200,3000",
                        cancer_report.as_uri()], tmp_path)
    assert shot.is_file(), result.stderr[-2000:]
    pixels = _png_pixels(shot)[..., :3]
    assert pixels.shape[:2] == (3000, 1200)
    assert pixels.std() > 0.05
    # Text and the light page are grey; coloured pixels come from the decoded figures.
    saturation = pixels.max(axis=2) - pixels.min(axis=2)
    assert (saturation > 0.3).mean() > 0.01


@_needs_chromium
def test_chromium_dom_holds_every_figure(cancer_report: Path, tmp_path: Path) -> None:
    result = _chromium(["--dump-dom", cancer_report.as_uri()], tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    images = _IMG_PATTERN.findall(result.stdout)
    assert len(images) == len(FIGURE_KEYS)
    assert "<h2>Learning curves</h2>" in result.stdout


def test_trajectory_of_guarded_selection_marks_the_kept_step(cancer_run) -> None:
    import copy

    from ensemble_hpo.report._html import Section
    from ensemble_hpo.report._report import _Context, _trajectory

    clf, X, y = cancer_run
    guarded = copy.deepcopy(clf).reselect(X, y, selection="greedy_guarded")
    section = Section(key="selection_trajectory", title="t", how_to_read="")
    ctx = _Context(estimator=guarded, score_label="neg_log_loss", colors={}, X=X, y=y,
                   learning_curves=False, max_learning_members=1)
    _trajectory(ctx, section)
    selector = guarded.selector_
    assert section.png is not None
    assert f"In-sample gain over the best single candidate {selector.gain_:.2%}" in section.notes[0]
    assert ("chosen on held-out rows" in section.notes[0]) == selector.checked_


def test_history_scores_are_in_the_estimators_metric_after_a_resume_in_another(tmp_path: Path) -> None:
    from ensemble_hpo.report._data import history_frame, scoring_name

    X, y = load_breast_cancer(return_X_y=True)
    kwargs = dict(models=["logistic", "knn"], search="random", n_trials=3, cv=3, random_state=0,
                  run_dir=str(tmp_path / "run"), warm_start_configs=None)
    EnsembleClassifier(**kwargs).fit(X, y)  # searched by neg_log_loss
    with pytest.warns(UserWarning, match="rescored"):
        resumed = EnsembleClassifier(**kwargs, scoring="roc_auc").fit(X, y)
    history = history_frame(resumed).set_index("number")["score"]
    board = resumed.leaderboard_.set_index("number")["score"]
    assert scoring_name(resumed) == "roc_auc" and (history > 0.9).all()
    pd.testing.assert_series_equal(history.sort_index(), board.sort_index(), check_names=False)
    text = make_report(resumed, tmp_path / "report", learning_curves=False).read_text()
    assert "The search optimised neg_log_loss (the study" in text  # audit



def test_the_report_names_a_scorer_object_and_scores_curves_on_the_users_labels() -> None:
    from sklearn.datasets import make_classification
    from sklearn.metrics import make_scorer, mean_absolute_error

    from ensemble_hpo.report._data import fit_target, learning_curves, scoring_name

    # Labels 1 (90 %) and 2 (10 %): F1 of class 1 is high, F1 of class 2 (the encoded 1) low.
    X, y = make_classification(n_samples=600, weights=[0.9], flip_y=0.1, random_state=0)
    model = EnsembleClassifier(models=["logistic"], n_trials=1, cv=3, random_state=0,
                               warm_start_configs=None, scoring="f1").fit(X, y + 1)
    assert model.best_score_ > 0.9
    curve = learning_curves(model, X, fit_target(model, y + 1), max_members=1)[0]
    assert curve.valid_scores[-1].mean() > 0.85  # class 1, as the leaderboard
    Xr, yr = load_diabetes(return_X_y=True)
    scorer = make_scorer(mean_absolute_error, greater_is_better=False)
    reg = EnsembleRegressor(models=["ridge"], n_trials=1, cv=3, random_state=0,
                            warm_start_configs=None, scoring=scorer).fit(Xr, yr)
    assert scoring_name(reg).startswith("make_scorer(mean_absolute_error")


def test_learning_curves_train_and_score_with_the_fits_weights(tmp_path: Path) -> None:
    """Rows weighted 0 hold a corrupted target: the weighted fit ignores them, so must its curves."""
    from ensemble_hpo.report._data import fit_target, learning_curves

    X, y = load_diabetes(return_X_y=True)
    corrupted = np.random.default_rng(0).random(len(y)) < 0.3
    y_seen, weights = np.where(corrupted, y + 1000.0, y), np.where(corrupted, 0.0, 1.0)
    reg = EnsembleRegressor(models=["ridge"], n_trials=1, cv=3, random_state=0,
                            warm_start_configs=None, scoring="neg_root_mean_squared_error")
    reg.fit(X, y_seen, sample_weight=weights)
    assert reg.best_score_ > -70  # the search scored the clean rows only
    weighted = learning_curves(reg, X, fit_target(reg, y_seen), 1, sample_weight=weights)[0]
    plain = learning_curves(reg, X, fit_target(reg, y_seen), 1)[0]
    assert weighted.valid_scores[-1].mean() > -70
    assert plain.valid_scores[-1].mean() < -200
    make_report(reg, tmp_path, X=X, y=y_seen, sample_weight=weights)  # the plumbing


def test_learning_curves_keep_groups_out_of_their_training_rows() -> None:
    """Ten copies of each row, a random target per group: only a leak makes it predictable."""
    from ensemble_hpo.report._data import fit_target, learning_curves

    rng = np.random.default_rng(0)
    base, target = rng.normal(size=(60, 4)), rng.normal(size=60)
    X, y, groups = np.repeat(base, 10, axis=0), np.repeat(target, 10), np.repeat(np.arange(60), 10)
    reg = EnsembleRegressor(models=["knn"], n_trials=1, cv=3, random_state=0, warm_start_configs=None,
                            scoring="neg_root_mean_squared_error").fit(X, y, groups=groups)
    grouped = learning_curves(reg, X, fit_target(reg, y), 1, groups=groups)[0]
    leaking = learning_curves(reg, X, fit_target(reg, y), 1)[0]
    assert grouped.valid_scores[-1].mean() < -0.8 * target.std()  # no better than chance
    assert leaking.valid_scores[-1].mean() > -0.5 * target.std()  # copies seen in training


def test_too_few_groups_skip_only_the_learning_curves(cancer_run, tmp_path) -> None:
    """Audit: a fit with 2 groups got no report at all ("fewer than cv_n_splits=3"), though
    the README says to pass groups and a figure that cannot be drawn becomes a note."""
    clf, X, y = cancer_run
    two_groups = np.arange(len(y)) % 2
    text = make_report(clf, tmp_path, X=X, y=y, groups=two_groups).read_text(encoding="utf-8")
    assert "Skipped: the learning curves hold whole groups out in 3 folds, and these rows have 2" in text
    assert not (tmp_path / "figures" / "learning_curves.png").exists()
    assert (tmp_path / "figures" / "leaderboard.png").exists()


@pytest.mark.parametrize("grouped", [False, True])
def test_learning_folds_keep_every_class_share(grouped: bool) -> None:
    """A 10 % class in every validation fold at its share, with and without groups."""
    from ensemble_hpo.report._data import _learning_folds

    y = np.r_[np.zeros(270, dtype=int), np.ones(30, dtype=int)]
    # Pairs of rows with the same label, group ids shuffled (GroupKFold deals them in order).
    groups = np.random.default_rng(0).permutation(150)[np.arange(300) // 2] if grouped else None
    folds = _learning_folds(np.zeros((300, 1)), y, groups, 0, stratify=True)
    shares = [y[valid].mean() for _, valid in folds]
    assert np.allclose(shares, 0.1, atol=0.005)
    if grouped:
        assert all(not set(groups[train]) & set(groups[valid]) for train, valid in folds)
    # A class with fewer rows than folds: plain (group) K-fold, no error.
    y_rare = np.r_[np.zeros(298, dtype=int), np.ones(2, dtype=int)]
    assert len(_learning_folds(np.zeros((300, 1)), y_rare, groups, 0, stratify=True)) == 3


def test_importances_explain_the_candidates_scores_not_the_trial_values(cancer_run) -> None:
    # Audit: with objective="ensemble" the trial values are ensemble gains.
    clf, _, _ = cancer_run
    trials = [t for t in clf.trials_ if t.state.name == "COMPLETE"]
    scores = {t.number: float(t.value) for t in trials}
    gains = [copy.copy(t) for t in trials]
    for t, value in zip(gains, np.linspace(0.0, 1.0, len(gains)), strict=True):
        t.values = [float(value)]  # as objective="ensemble" stores them
    assert param_importances(gains, scores) == param_importances(trials)
    assert param_importances(gains) != param_importances(trials)


def _section(text: str, key: str) -> str:
    return text.split(f'<section id="{key}">')[1].split("</section>")[0]


def test_the_held_out_gain_compares_the_ensemble_with_a_nested_best_single(cancer_run,
                                                                           tmp_path) -> None:
    """Audit: the note compared the nested cv_score_ with best_score_, the best of N
    out-of-fold scores chosen on the same rows: on breast_cancer the ensemble 'lost' by
    0.0033 where, chosen inside the folds alike, it won by 0.0008."""
    from ensemble_hpo._nested import nested_scores
    from ensemble_hpo.fusion import WeightedAverage
    from ensemble_hpo.metrics import get_prediction_scorer
    from ensemble_hpo.selection import BestSingleSelector

    clf, _, _ = cancer_run
    done = clf.population_.completed()
    expected = nested_scores(clf.population_.predictions([c.number for c in done]),
                             clf.selection_target_, clf.cv_splits_, selector=BestSingleSelector(),
                             fusers={"best": WeightedAverage()},
                             scorer=get_prediction_scorer("neg_log_loss", "classification"))
    assert clf.best_single_cv_score_ == pytest.approx(expected.scores["best"])
    assert clf.best_single_cv_score_ <= clf.best_score_  # the choice itself is optimistic
    text = make_report(clf, tmp_path, learning_curves=False).read_text(encoding="utf-8")
    gain = clf.cv_score_ - clf.best_single_cv_score_
    assert f"choosing the best single candidate {clf.best_single_cv_score_:.5g} ({gain:+.5g}" in text
    assert f"{clf.best_single_cv_score_:.5g}</td>" in text  # the Summary row


def test_after_a_trim_without_run_dir_the_fusion_scores_are_called_optimistic(cancer_run,
                                                                              tmp_path) -> None:
    """Audit: the library warned that fusion_comparison_ was optimistic after trim, but the
    report called its scores cross-validated."""
    clf, _, _ = cancer_run
    with pytest.warns(UserWarning, match="optimistic"):
        trimmed = copy.deepcopy(clf).trim(max_members=1)
    text = make_report(trimmed, tmp_path, learning_curves=False).read_text(encoding="utf-8")
    fusion = _section(text, "fusion_comparison")
    assert "These scores are optimistic" in fusion
    assert "has no held-out estimate" in _section(text, "selection_trajectory")
    assert "These scores are optimistic" not in make_report(
        clf, tmp_path / "fit", learning_curves=False).read_text(encoding="utf-8")


def test_the_fitted_ensemble_is_marked_in_the_fronts_own_kind_of_score(diabetes_run) -> None:
    """Audit: on an in-sample front (time ran out) the star stood at the held-out cv_score_,
    0.95 RMSE below the ensemble's own front point."""
    from ensemble_hpo.report._report import _fitted_point

    reg, _, _ = diabetes_run
    assert _fitted_point(reg, held_out=True)[1] == reg.cv_score_
    assert _fitted_point(reg, held_out=False)[1] == reg.selection_score_
    unscored = copy.copy(reg)
    unscored.cv_score_ = float("nan")
    assert _fitted_point(unscored, held_out=True) is None


def test_the_correlation_figure_correlates_errors_not_predictions(cancer_run) -> None:
    """Audit: it correlated predicted probabilities, near 1 for any two accurate models,
    under a text about shared mistakes."""
    from ensemble_hpo.report._data import member_correlation

    clf, _, _ = cancer_run
    corr, labels, _ = member_correlation(clf)
    numbers = [int(label.split()[0][1:]) for label in labels]
    positive = clf.population_.predictions(numbers)[:, :, 1]
    errors = positive - (clf.selection_target_ == 1)
    np.testing.assert_allclose(corr, np.corrcoef(errors))


def test_the_summary_counts_candidates_by_status(cancer_run, tmp_path) -> None:
    """Audit: candidates skipped for lack of time were counted as "failed or pruned"."""
    clf, _, _ = cancer_run
    skipped = copy.copy(clf)
    board = clf.leaderboard_
    extra = pd.DataFrame([{**board.iloc[0].to_dict(), "number": 100 + i, "status": "skipped",
                           "score": np.nan, "weight": 0.0} for i in range(3)])
    skipped.leaderboard_ = pd.concat([board, extra], ignore_index=True)
    text = make_report(skipped, tmp_path, learning_curves=False).read_text(encoding="utf-8")
    assert f"{len(board) + 3} ({len(board)} completed, 3 skipped)" in text
