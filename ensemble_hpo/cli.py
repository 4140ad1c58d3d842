"""``ensemble-hpo`` command line: run, resume, predict, report, worker.

Exit codes: 0 success, 2 bad usage or configuration, 3 data or run-folder error,
1 anything unexpected.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import random
import shutil
import signal
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from ensemble_hpo._checks import CLASSIFICATION, REGRESSION
from ensemble_hpo._process import is_dead_local_process, process_tag
from ensemble_hpo._run_folder import RunFolder

__all__ = ["main"]

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_DATA = 0, 1, 2, 3
EXIT_INTERRUPTED = 130  # 128 + SIGINT, what a shell reports for Ctrl-C
CONFIG_FILE, SUMMARY_FILE, LEADERBOARD_FILE, MODEL_FILE = (
    RunFolder.CONFIG, RunFolder.SUMMARY, RunFolder.LEADERBOARD, RunFolder.MODEL)


class CLIError(Exception):
    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


def _load_table(path: str, sep: str = ",", na_values: list[str] | None = None) -> pd.DataFrame:
    """A CSV (read with ``sep``, ``na_values`` as extra missing-value markers) or Parquet file."""
    p = Path(path)
    if not p.exists():
        raise CLIError(f"The data file {path!r} does not exist.", EXIT_DATA)
    parquet = p.suffix.lower() in (".parquet", ".pq")
    try:
        return pd.read_parquet(p) if parquet else pd.read_csv(p, sep=sep, na_values=na_values or None)
    except ImportError as exc:  # pandas reads Parquet through an optional engine
        raise CLIError(f"Reading the Parquet file {path!r} needs an engine: pip install pyarrow "
                       f"({exc}).", EXIT_DATA) from None
    except (UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError, ValueError) as exc:
        hint = " Save it as UTF-8." if isinstance(exc, UnicodeDecodeError) else ""
        raise CLIError(f"The data file {path!r} cannot be read as {'Parquet' if parquet else 'CSV'}: "
                       f"{type(exc).__name__}: {exc}.{hint}", EXIT_DATA) from None


def _separator_hint(frame: pd.DataFrame) -> str:
    """Advice when a CSV was read as one column whose name holds another separator (a
    semicolon file showed one column 'id;x1;x2;...' and no word about why; audit)."""
    if frame.shape[1] != 1:
        return ""
    name = str(frame.columns[0])
    for sep in (";", "\t", "|"):
        if sep in name:
            return f" The file looks {sep!r}-separated: set 'data.sep: {sep!r}' in the config."
    return ""


def load_data(config: Any) -> tuple[pd.DataFrame, pd.Series, str]:
    """The configured table as (X, y, task)."""
    from ensemble_hpo.datasets import load_builtin

    if config.data.builtin:
        dataset = load_builtin(config.data.builtin)
        X, y, task = dataset.X, dataset.y, dataset.task
    else:
        frame = _load_table(config.data.path, config.data.sep, config.data.na_values)
        if config.data.target not in frame.columns:
            raise CLIError(f"The target column {config.data.target!r} is not in {config.data.path!r}; "
                           f"columns are {list(frame.columns)}.{_separator_hint(frame)}", EXIT_DATA)
        frame = _rows_with_a_target(frame, config.data.target, config.data.path)
        y = frame[config.data.target]
        X = frame.drop(columns=[config.data.target])
        task = infer_task(y)[0]
    missing = [c for c in config.data.drop if c not in X.columns and c != config.data.target]
    if missing:
        # A misspelt name would silently keep an identifier or a leaking column in training.
        raise CLIError(f"The 'data.drop' column(s) {missing} are not in the table; columns are "
                       f"{list(X.columns)}.", EXIT_DATA)
    X = X.drop(columns=[c for c in config.data.drop if c in X.columns])
    return X, y, task if config.task == "auto" else config.task


def _rows_with_a_target(frame: pd.DataFrame, target: str, path: str) -> pd.DataFrame:
    """The rows whose target is known (a model cannot learn from the others), with a note.

    A missing target reached scikit-learn's split as a bare "Input y contains NaN"
    traceback (audit).
    """
    missing = frame[target].isna()
    if missing.all():
        raise CLIError(f"The target column {target!r} of {path!r} has no values.", EXIT_DATA)
    if missing.any():
        print(f"dropped {int(missing.sum())} of {len(frame)} rows whose target {target!r} is missing")
        frame = frame.loc[~missing].reset_index(drop=True)
    return frame


# An integer target is read as a quantity (regression) when it has more than this many
# distinct values and either more than this share of the rows are distinct or most
# values occur once. Integer class codes rarely exceed 20 classes, and when they do each
# class has many rows; prices, counts and amounts have a value per few rows, and a class
# seen once can neither be stratified nor appear in every cross-validation fold.
MAX_CLASSES, MAX_DISTINCT_SHARE = 20, 0.05


def infer_task(y: pd.Series) -> tuple[str, str]:
    """The task a target column suggests, and the reason (printed with how to override it).

    Strings, booleans and categoricals are classes. Numbers with a fractional part are
    a quantity. Integers (or integer-valued floats) are a quantity when there are more
    than ``MAX_CLASSES`` distinct values and either more than ``MAX_DISTINCT_SHARE`` of
    the rows are distinct or most distinct values occur only once; otherwise classes.
    """
    if (isinstance(y.dtype, pd.CategoricalDtype) or pd.api.types.is_bool_dtype(y)
            or not pd.api.types.is_numeric_dtype(y)):
        return "classification", f"a non-numeric target, dtype {y.dtype}"
    values = y.dropna().to_numpy(dtype=float)
    if not np.array_equal(values, np.round(values)):
        return "regression", "a numeric target with non-integer values"
    distinct, counts = np.unique(values, return_counts=True)
    described = f"{len(distinct)} distinct integer values in {len(values)} rows"
    many = len(distinct) > MAX_CLASSES
    if many and (len(distinct) > MAX_DISTINCT_SHARE * len(values) or np.median(counts) < 2):
        return "regression", described
    return "classification", described


def _task_note(config: Any, y: pd.Series, task: str) -> str:
    other = REGRESSION if task == CLASSIFICATION else CLASSIFICATION
    if config.task != "auto":
        why = "set in the configuration"
    elif config.data.builtin:
        why = f"the built-in data set {config.data.builtin!r}"
    else:
        why = "inferred from " + infer_task(y)[1]
    return (f"task: {task} ({why}); to change it, set 'task: {other}' in the configuration "
            f"or pass --task {other}")


def _split(X: pd.DataFrame, y: pd.Series, task: str, config: Any) -> tuple:
    from sklearn.model_selection import train_test_split

    if config.random_state is None:
        # Each command would draw another split: resume refused as other data, report's
        # learning curves trained on rows the run held out (audit).
        raise CLIError("random_state is null, so the run's train/test split cannot be drawn "
                       "again; set the seed the run used (`ensemble-hpo run` records the one it "
                       f"drew in the run folder's {CONFIG_FILE}).", EXIT_USAGE)
    stratify = y if task == CLASSIFICATION else None
    if stratify is not None:
        _check_stratifiable(y, config)
    return train_test_split(X, y, test_size=config.data.test_size, stratify=stratify,
                            random_state=config.random_state)


def _check_stratifiable(y: pd.Series, config: Any, shown: int = 5) -> None:
    # scikit-learn's own error lists every class, thousands of values for a price column.
    counts = y.value_counts()
    single = counts.index[counts < 2].tolist()
    if not single:
        return
    examples = ", ".join(repr(v) for v in single[:shown]) + (", ..." if len(single) > shown else "")
    hint = ("If the target is a quantity, set 'task: regression' in the configuration or pass "
            "--task regression; otherwise merge or drop the rare classes.")
    raise CLIError(
        f"The target column {config.data.target or 'y'!r} has {len(single)} of {len(counts)} classes "
        f"with a single row ({examples}); a stratified train/test split needs at least 2 rows "
        f"per class. {hint}", EXIT_DATA)


def _holdout_scores(model: Any, X_test: Any, y_test: Any, task: str) -> dict[str, float]:
    from ensemble_hpo.metrics import get_prediction_scorer, stage_scoring

    scorer = get_prediction_scorer(stage_scoring(model.scoring, task, getattr(model, "classes_", None)), task)
    if task == CLASSIFICATION:
        y_enc = np.searchsorted(model.classes_, np.asarray(y_test))
        ens = model.predict_proba(X_test)
    else:
        y_enc = np.asarray(y_test, dtype=float)
        ens = model.predict(X_test)
    single = model.predict_candidate(X_test)
    return {"ensemble": scorer(y_enc, ens), "best_single": scorer(y_enc, single), "metric": scorer.name}


def _print_leaderboard(model: Any, limit: int = 15) -> None:
    board = model.leaderboard_.copy()
    board["score"] = board["score"].map(lambda v: f"{v:.5f}" if pd.notna(v) else "")
    board["fit_time"] = board["fit_time"].map(lambda v: f"{v:.2f}s" if pd.notna(v) else "")
    board["weight"] = board["weight"].map(lambda v: f"{v:.3f}" if v else "")
    cols = ["number", "family", "status", "score", "weight", "fit_time"]
    print(board[cols].head(limit).to_string(index=False))
    if len(board) > limit:
        print(f"... {len(board) - limit} more candidates in {LEADERBOARD_FILE}")


def _save_outputs(run_dir: Path, model: Any, summary: dict[str, Any]) -> None:
    from ensemble_hpo.persistence import save_model

    model.leaderboard_.to_csv(run_dir / LEADERBOARD_FILE, index=False)
    model.fusion_comparison_.to_csv(run_dir / RunFolder.FUSION_COMPARISON, index=False)
    model.prediction_cost_.to_csv(run_dir / RunFolder.PREDICTION_COST, index=False)
    (run_dir / SUMMARY_FILE).write_text(json.dumps(summary, indent=2, default=float))
    save_model(model, run_dir / MODEL_FILE)


def _prepare(config: Any, run_dir: Path, trusted: bool = False) -> tuple[Any, str, tuple]:
    """Read the data, split it and build the estimator: every check that needs no training,
    before anything in the run folder is written or removed."""
    from ensemble_hpo._fit_plan import FitPlan
    from ensemble_hpo.config import build_estimator

    X, y, task = load_data(config)
    print(_task_note(config, y, task))
    split = _split(X, y, task, config)
    model = build_estimator(config, task, str(run_dir), trusted=trusted)
    try:  # every check fit makes before training, on the training rows
        FitPlan.check(model.get_params(), task, split[0], split[2])
    except ValueError as exc:
        raise CLIError(f"The configuration cannot be fitted on this data: {exc}", EXIT_USAGE) from None
    return model, task, split


def _execute(config: Any, run_dir: Path, prepared: tuple[Any, str, tuple]) -> int:
    model, task, (X_train, X_test, y_train, y_test) = prepared
    try:
        model.fit(X_train, y_train)
    except KeyboardInterrupt as exc:
        if RunFolder(run_dir).has_finished_candidate():
            exc.add_note(f"Continue with: ensemble-hpo resume {run_dir}")
        raise
    scores = _holdout_scores(model, X_test, y_test, task)
    summary = {
        "name": config.name, "task": task, "n_train": len(X_train), "n_test": len(X_test),
        "fit_seconds": model.fit_time_, "metric": scores["metric"],
        "cv_score_ensemble": model.cv_score_, "cv_score_best_single": model.best_single_cv_score_,
        "oof_score_best_candidate": model.best_score_,
        "selection_score_in_sample": model.selection_score_,
        "holdout_score_ensemble": scores["ensemble"], "holdout_score_best_single": scores["best_single"],
        "n_candidates": len(model.leaderboard_), "n_members": len(model.ensemble_),
        "fusion": type(model.ensemble_.fuser).__name__,
        "fusion_comparison": model.fusion_comparison_.to_dict(orient="records"),
        "ensemble_seconds_per_row": float(model.prediction_cost_["seconds_per_row"].iloc[-1]),
    }
    _save_outputs(run_dir, model, summary)
    _print_leaderboard(model)
    print(f"\nmetric: {scores['metric']} (greater is better)")
    print(f"cross-validated   ensemble {model.cv_score_:.5f}   best single {model.best_single_cv_score_:.5f}"
          "   (out-of-fold; selection and fusion repeated inside the folds, and so is the"
          " choice of the best single)")
    print(f"best candidate    {model.best_score_:.5f}"
          "   (its out-of-fold score, chosen on those rows: optimistic)")
    print(f"in-sample         ensemble {model.selection_score_:.5f}"
          "   (on the rows it was selected on: optimistic)")
    print(f"held-out test     ensemble {scores['ensemble']:.5f}   best single {scores['best_single']:.5f}")
    print(f"results in {run_dir}")
    return EXIT_OK


def _overrides(args: argparse.Namespace) -> list[str]:
    scheduler = getattr(args, "scheduler", None)
    extra = ["parallel.backend=dask", f"parallel.scheduler={scheduler}"] if scheduler else []
    extra += [f"storage={args.storage}"] if getattr(args, "storage", None) else []
    extra += [f"task={args.task}"] if getattr(args, "task", None) else []
    if getattr(args, "no_train", False):
        # A budget of one trial is always already spent, so nothing new is trained.
        extra += ["search.n_trials=1", "search.time_budget=null"]
    return list(args.set) + extra


def cmd_run(args: argparse.Namespace) -> int:
    from ensemble_hpo.config import load_config

    config = _with_seed(_with_absolute_paths(load_config(args.config, _overrides(args))))
    if args.quiet:
        config = config.model_copy(update={"verbose": 0})
    run_dir = Path(args.output or Path(config.output_dir) / config.name).expanduser()
    _recover_replaced(run_dir)
    holds_run = (run_dir / CONFIG_FILE).exists()
    if holds_run and not args.force:
        raise CLIError(f"The run folder {str(run_dir)!r} already holds a run; use 'ensemble-hpo resume "
                       f"{run_dir}' or pass --force to start over.", EXIT_DATA)
    if not holds_run and run_dir.is_dir() and any(run_dir.iterdir()):
        # A run written beside other files made the folder a "run folder" that a later --force
        # removed whole, with the user's files (audit).
        raise CLIError(f"{str(run_dir)!r} holds files but no {CONFIG_FILE}: it is not a run folder, "
                       "and a run is not written beside other files; nothing was written or "
                       "removed. Choose another --output (or name).", EXIT_DATA)
    if args.force and holds_run and _stored_section(run_dir, "storage") is not None:
        # Removing the folder would keep the study (and its trials' budget) but lose their files.
        raise CLIError(f"--force cannot start over a run whose study is kept in "
                       f"{_stored_section(run_dir, 'storage')!r}: "
                       "the folder's candidates would be lost while the study kept counting them. "
                       "Delete the study first (optuna delete-study --storage <url> --study-name "
                       "ensemble_hpo) or use another storage.", EXIT_DATA)
    prepared = _prepare(config, run_dir, args.trust)
    # Removes what this run wrote when it fails before any candidate finished, so that the
    # corrected command can start again (and puts a run replaced by --force back).
    with _replacing(run_dir, args.force and holds_run), RunFolder(run_dir).discard_if_untrained():
        run_dir.mkdir(parents=True, exist_ok=True)
        _write_config(run_dir, config)
        return _execute(config, run_dir, prepared)


@contextlib.contextmanager
def _replacing(run_dir: Path, replace: bool) -> Iterator[None]:
    """``--force``: move the old run aside, remove it once the new run has a finished candidate.

    The old run was removed before the new one had trained anything, so a run that then
    failed (every candidate failed, Ctrl-C) lost both (audit). Until the new run finishes a
    candidate the old one waits in a hidden sibling folder and is put back on failure.
    """
    if not replace:
        yield
        return
    aside = run_dir.with_name(f".{run_dir.name}{_ASIDE}{process_tag()}")
    run_dir.rename(aside)
    try:
        yield
    except BaseException:
        _settle(run_dir, aside, "The new run finished no candidate")
        raise
    shutil.rmtree(aside)


#: Infix of the hidden sibling folder a ``--force`` run keeps the old run in, before its tag.
_ASIDE = ".replaced-"


def _settle(run_dir: Path, aside: Path, why: str) -> None:
    """Remove the old run set ``aside`` when the new run in ``run_dir`` finished a candidate
    (it can be resumed: it replaces the old one), else put the old run back, saying ``why``."""
    if run_dir.is_dir() and RunFolder(run_dir).has_finished_candidate():
        shutil.rmtree(aside)
        return
    shutil.rmtree(run_dir, ignore_errors=True)
    aside.rename(run_dir)
    print(f"{why}; the previous run in {run_dir} was put back.", file=sys.stderr)


def _recover_replaced(run_dir: Path) -> None:
    """Finish what a ``--force`` run killed by SIGKILL (or a crash) could not: its previous run
    still waits in the hidden folder of :func:`_replacing`, and no command named it (audit)."""
    for aside in sorted(run_dir.parent.glob(f".{run_dir.name}{_ASIDE}*")):
        owner = aside.name.rpartition(_ASIDE)[2]
        if is_dead_local_process(owner):
            _settle(run_dir, aside, f"A 'run --force' ({owner}) was stopped before its new run "
                                    "finished a candidate")


def _with_seed(config: Any) -> Any:
    """``config`` with a drawn ``random_state`` in place of null, so that the run folder records it.

    ``resume``, ``worker`` and ``report`` split the table again with the recorded seed; with
    null each command drew another train/test split, and resume was refused as other data
    (audit).
    """
    if config.random_state is not None:
        return config
    seed = random.SystemRandom().randrange(2**31 - 1)
    print(f"random_state: null in the configuration; drew {seed}, recorded in the run folder's "
          f"{CONFIG_FILE}")
    return config.model_copy(update={"random_state": seed})


def _with_absolute_paths(config: Any) -> Any:
    """``config`` with ``data.path``, a file ``storage`` and ``output_dir`` made absolute (``~``
    expanded, from the directory ``run`` was started in), so that the run folder's own config
    finds the table and the study from anywhere (``resume``, ``report``, ``worker``)."""
    from ensemble_hpo.storage import absolute_storage

    update: dict[str, Any] = {"output_dir": str(Path(config.output_dir).expanduser().resolve())}
    if config.data.path:
        update["data"] = config.data.model_copy(
            update={"path": str(Path(config.data.path).expanduser().resolve())})
    if isinstance(config.storage, str):
        update["storage"] = absolute_storage(config.storage)
    return config.model_copy(update=update)


def cmd_resume(args: argparse.Namespace) -> int:
    from ensemble_hpo.config import load_config

    run_dir = Path(args.run_dir)
    _recover_replaced(run_dir)
    if not (run_dir / CONFIG_FILE).exists():
        raise CLIError(f"{str(run_dir)!r} is not a run folder (no {CONFIG_FILE}).", EXIT_DATA)
    if args.no_train and not RunFolder(run_dir).has_finished_candidate():
        # Its one-trial budget assumes a spent trial: with none finished it trained one (audit).
        raise CLIError(f"{str(run_dir)!r} holds no finished candidate to select from; resume "
                       "it without --no-train to train some.", EXIT_DATA)
    config = _with_absolute_paths(load_config(run_dir / CONFIG_FILE, _overrides(args)))
    if args.quiet:
        config = config.model_copy(update={"verbose": 0})
    recorded = (_with_absolute_paths(load_config(run_dir / CONFIG_FILE, list(args.set)))
                if args.set else None)
    code = _execute(config, run_dir, _prepare(config, run_dir, args.trust))
    if recorded is not None:
        # Once the run accepted them: the folder's config describes the run as it now is (a
        # later resume or report would otherwise go back to the values --set replaced).
        _write_config(run_dir, recorded)
    return code


def _write_config(run_dir: Path, config: Any) -> None:
    text = yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False)
    tmp = run_dir / f".{CONFIG_FILE}.tmp"
    tmp.write_text(text)
    tmp.replace(run_dir / CONFIG_FILE)


def cmd_predict(args: argparse.Namespace) -> int:
    from ensemble_hpo.persistence import load_model

    run_dir = Path(args.run_dir)
    _recover_replaced(run_dir)
    model_file = run_dir / MODEL_FILE
    if not model_file.exists():
        raise CLIError(f"{str(run_dir)!r} holds no fitted model ({MODEL_FILE}); run it first.", EXIT_DATA)
    output = Path(args.output).expanduser()
    if not output.parent.is_dir():
        raise CLIError(f"The folder of the output file {args.output!r} does not exist.", EXIT_DATA)
    model = load_model(model_file, trusted=args.trust)
    data = _stored_section(run_dir, "data") or {}
    table = _load_table(args.data, data.get("sep", ","), data.get("na_values"))
    X = _prediction_features(table, run_dir)
    try:
        out = pd.DataFrame({"prediction": model.predict(X)})
        proba = model.predict_proba(X) if hasattr(model, "predict_proba") else None
    except ValueError as exc:  # columns or values that do not match the fit's
        raise CLIError(f"{args.data!r} cannot be predicted by this run's model: {exc}", EXIT_DATA) from None
    for i, label in enumerate(model.classes_ if proba is not None else []):
        out[f"proba_{label}"] = proba[:, i]
    out.to_csv(output, index=False)
    print(f"wrote {len(out)} predictions to {args.output}")
    return EXIT_OK


def _prediction_features(table: pd.DataFrame, run_dir: Path) -> pd.DataFrame:
    """``table`` without the columns the run did not train on: its target and ``data.drop``
    (a file laid out like the training file predicts as it is)."""
    from ensemble_hpo.datasets import unused_columns

    data = _stored_section(run_dir, "data") or {}
    named = [data.get("target"), *data.get("drop", [])]
    if data.get("builtin"):
        named += unused_columns(data["builtin"])
    return table.drop(columns=[c for c in named if c is not None and c in table.columns])


def _stored_section(run_dir: Path, key: str) -> Any:
    """One top-level entry of a run folder's config.yaml (None without the file or key)."""
    path = run_dir / CONFIG_FILE
    return (yaml.safe_load(path.read_text()) or {}).get(key) if path.exists() else None


def _open_shared_storage(url: str) -> Any:
    """The worker's study storage, opened before any data is read (a typo fails at once)."""
    from ensemble_hpo.storage import make_storage, storage_kind

    if storage_kind(url) is None:
        raise CLIError("The '--storage' option must be a storage other processes can open "
                       "('postgresql://user@host/db', 'sqlite:///path', 'journal:///path'). "
                       f"Got {url!r} instead.", EXIT_USAGE)
    try:
        return make_storage(url)
    except Exception as exc:  # noqa: BLE001 - any driver error means the same to the user
        raise CLIError(f"The study storage {url!r} cannot be opened: {type(exc).__name__}: {exc}",
                       EXIT_USAGE) from exc


def _check_run_folder_shared(storage: Any, run_dir: Path) -> None:
    """Refuse a run folder that misses the artifacts of the study's finished trials.

    Every worker must write into the run's own folder (one NFS mount on every machine); a
    private folder would leave the candidates it trains without artifacts for selection.
    A study without finished trials cannot tell, and passes.
    """
    import optuna

    from ensemble_hpo.population import FileArtifactStore
    from ensemble_hpo.search._run import DEFAULT_STUDY_NAME

    try:
        summaries = storage.get_all_studies()
    except Exception:  # noqa: BLE001 - an unreadable storage is reported when the search opens it
        return
    if DEFAULT_STUDY_NAME not in {s.study_name for s in summaries}:
        return
    study_id = storage.get_study_id_from_name(DEFAULT_STUDY_NAME)
    done = [t.number for t in storage.get_all_trials(study_id, deepcopy=False,
                                                     states=(optuna.trial.TrialState.COMPLETE,))]
    folder = run_dir / RunFolder.ARTIFACTS
    # Looked at only when it exists: the store would create the folder it is given.
    shared = folder.is_dir() and any(n in FileArtifactStore(folder) for n in done)
    if done and not shared:
        raise CLIError(
            f"The run folder {str(run_dir)!r} holds none of the artifacts of the study's "
            f"{len(done)} finished trials, so it is not the folder the run writes to. Pass "
            "--run-dir with the run's folder, on a file system every machine mounts at the "
            "same path (NFS).", EXIT_DATA)


def cmd_worker(args: argparse.Namespace) -> int:
    from ensemble_hpo.config import build_estimator, load_config
    from ensemble_hpo.storage import absolute_storage

    config = load_config(args.config, _overrides(args))
    run_dir = Path(args.run_dir or Path(config.output_dir) / config.name).expanduser()
    _recover_replaced(run_dir)
    _check_run_folder_shared(_open_shared_storage(args.storage), run_dir)
    X, y, task = load_data(config)
    X_train, _, y_train, _ = _split(X, y, task, config)
    model = build_estimator(config.model_copy(update={"storage": absolute_storage(args.storage),
                                                      "verbose": 0}),
                            task, str(run_dir), trusted=args.trust)
    model.set_params(n_jobs=1, backend=None)
    if args.n_trials is not None:
        model.set_params(n_trials=args.n_trials)
    finished = model.join_search(X_train, y_train)
    print(f"worker done: the study now has {finished} finished trials")
    return EXIT_OK


def cmd_report(args: argparse.Namespace) -> int:
    from ensemble_hpo.config import load_config
    from ensemble_hpo.persistence import load_model
    from ensemble_hpo.report import make_report

    run_dir = Path(args.run_dir)
    _recover_replaced(run_dir)
    if not (run_dir / MODEL_FILE).exists() or not (run_dir / CONFIG_FILE).exists():
        raise CLIError(f"{str(run_dir)!r} holds no finished run ({MODEL_FILE}, {CONFIG_FILE}).", EXIT_DATA)
    config = load_config(run_dir / CONFIG_FILE)
    model = load_model(run_dir / MODEL_FILE, trusted=args.trust)
    curves = not args.no_learning_curves
    X_train = y_train = None
    if curves:  # only the learning curves retrain, on the run's training rows
        X, y, task = load_data(config)
        X_train, _, y_train, _ = _split(X, y, task, config)
    path = make_report(model, run_dir / "report", X=X_train, y=y_train,
                       title=f"ensemble_hpo report: {config.name}", learning_curves=curves)
    print(f"report written to {path}")
    return EXIT_OK


def _add_task_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--task", choices=["auto", "classification", "regression"],
                        help="the learning task (default: the config's 'task', inferred with 'auto')")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ensemble-hpo",
                                     description="Turn a hyperparameter search into an ensemble.")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run a configuration into a run folder")
    run.add_argument("config", help="YAML configuration file")
    run.add_argument("--output", "-o", help="run folder (default: output_dir/name from the config)")
    run.add_argument("--force", action="store_true", help="overwrite an existing run folder")
    resume = sub.add_parser("resume", help="continue an interrupted run; finished candidates are reused")
    resume.add_argument("run_dir")
    for p in (run, resume):
        p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                       help="override a config value, e.g. --set search.n_trials=50")
        p.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
        p.add_argument("--scheduler", metavar="ADDRESS",
                       help="run the workers on this Dask scheduler (tcp://host:8786)")
        p.add_argument("--storage", metavar="URL",
                       help="the Optuna study storage (postgresql://user@host/db); default: "
                            "the config's 'storage', else a journal file in the run folder")
        _add_task_argument(p)
    resume.add_argument("--no-train", action="store_true",
                        help="only re-run selection and fusion on the finished candidates")
    run.set_defaults(func=cmd_run)
    resume.set_defaults(func=cmd_resume)
    predict = sub.add_parser("predict", help="predict a CSV/Parquet file with a run's model")
    predict.add_argument("run_dir")
    predict.add_argument("data")
    predict.add_argument("--output", "-o", default="predictions.csv")
    predict.set_defaults(func=cmd_predict)
    report = sub.add_parser("report", help="write report.html and figures for a finished run")
    report.add_argument("run_dir")
    report.add_argument("--no-learning-curves", action="store_true", help="skip the slowest figure")
    report.set_defaults(func=cmd_report)
    worker = sub.add_parser("worker", help="join a running search as an extra worker process")
    worker.add_argument("config", help="the same YAML configuration the run uses")
    worker.add_argument("--storage", required=True,
                        help="the shared Optuna storage (postgresql://..., sqlite:///..., journal:///...)")
    worker.add_argument("--run-dir", help="the shared run folder (default: output_dir/name)")
    worker.add_argument("--n-trials", type=int, help="stop when the study has this many trials")
    worker.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    _add_task_argument(worker)
    worker.set_defaults(func=cmd_worker)
    for p in (run, resume, predict, report, worker):
        p.add_argument("--trust", action="store_true",
                       help="load model files of the run folder that were not signed with your key "
                            "(a teammate's folder); unpickling them can run code, so only for a "
                            "source you trust")
    return parser


@contextlib.contextmanager
def _exit_on_sigterm() -> Iterator[None]:
    """SIGTERM (``kill``, a scheduler's time limit) ends the command as Ctrl-C would: through
    its cleanups, e.g. ``--force`` putting the previous run back (it stayed hidden; audit)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum: int, frame: Any) -> None:
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def main(argv: list[str] | None = None) -> int:
    from ensemble_hpo.persistence import UntrustedModelError

    args = build_parser().parse_args(argv)
    try:
        with _exit_on_sigterm():
            return args.func(args)
    except KeyboardInterrupt as exc:
        # What the fit keeps and how to go on, without a traceback (exit 130 as a shell does).
        print("\n".join(["interrupted", *getattr(exc, "__notes__", [])]), file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as exc:
        code = _exit_code(exc)
        if code is None:
            raise
        hint = (isinstance(exc, UntrustedModelError) and exc.trust_helps
                and not getattr(args, "trust", False))
        print(f"error: {exc}" + ("\nOn the command line, pass --trust to load it." if hint else ""),
              file=sys.stderr)
        return code


def _exit_code(exc: BaseException) -> int | None:
    """The exit code of an error the command line reports in one line; None for anything else
    (a bug: its traceback is shown)."""
    from ensemble_hpo._checks import ParameterConflict
    from ensemble_hpo._run_identity import RunFolderMismatch
    from ensemble_hpo.config import ConfigError
    from ensemble_hpo.persistence import ModelFileError, UntrustedModelError

    if isinstance(exc, CLIError):
        return exc.code
    if isinstance(exc, (ConfigError, ParameterConflict)) or _raised_as(
            exc, "ensemble_hpo.search._runner", "ClusterError"):
        return EXIT_USAGE
    if isinstance(exc, (UntrustedModelError, ModelFileError, RunFolderMismatch)):
        return EXIT_DATA
    # "Nothing finished" is an outcome of the run, not a bug.
    if _raised_as(exc, "ensemble_hpo._select_fuse", "NothingToEnsembleError"):
        return EXIT_ERROR
    return None


def _raised_as(exc: BaseException, module: str, name: str) -> bool:
    """Whether ``exc`` is ``module.name``, looked up rather than imported: importing the search
    loads Optuna, which commands that never search should not pay for. The module is loaded
    whenever it raised."""
    loaded = sys.modules.get(module)
    return loaded is not None and isinstance(exc, getattr(loaded, name))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
