"""LightGBM trains recorded as runs by `mlmd_exercise.integrations.lightgbm.record`.

Real LightGBM on tiny data (a few hundred rows, a few rounds), a real SQLite store in tmp_path.
History steps are the rounds' 0-based indexes (LightGBM's `env.iteration`): 0..n-1.
"""

from __future__ import annotations

import subprocess
import sys
import warnings

import numpy as np
import pytest

lightgbm = pytest.importorskip("lightgbm", reason="LightGBM is not installed (pip install -e '.[test-lightgbm]')")

import mlmd_exercise as mx  # noqa: E402
from mlmd_exercise.integrations import lightgbm as mx_lightgbm  # noqa: E402
from mlmd_exercise.integrations.patching import is_patched  # noqa: E402
from conftest import run_module  # noqa: E402

ROUNDS = 10
PARAMS = {"objective": "binary", "metric": ["binary_logloss", "auc"], "num_leaves": 7, "verbose": -1,
          "min_data_in_leaf": 5, "seed": 1}


@pytest.fixture(scope="module")
def split():
    rng = np.random.RandomState(0)
    X = rng.normal(size=(300, 5))
    y = (X[:, 0] + 0.5 * X[:, 1] + rng.normal(scale=0.7, size=300) > 0).astype(int)
    return X[:200], X[200:], y[:200], y[200:]


@pytest.fixture
def db(tmp_path):
    return str(tmp_path / "metadata.db")


def runs(store):
    return sorted(mx.list_executions(store, type=mx_lightgbm.EXECUTION_TYPE), key=lambda e: e.id)


def inputs(store, run_id):
    return dict(mx.execution_lineage(store, run_id).inputs)


def outputs(store, run_id):
    return dict(mx.execution_lineage(store, run_id).outputs)


def model_path(artifact):
    assert artifact.uri.startswith("file://")
    return artifact.uri[len("file://"):]


def test_a_train_is_a_run_with_params_history_summary_data_and_model(db, tmp_path, split):
    X_train, X_valid, y_train, y_valid = split
    train = lightgbm.Dataset(X_train, label=y_train)
    valid = lightgbm.Dataset(X_valid, label=y_valid, reference=train)
    evals = {}  # LightGBM's own record of the same train, to compare with
    with mx_lightgbm.record(db, experiment="gbm", name="first", tags={"team": "trees"},
                            model_dir=tmp_path / "models") as callback:
        booster = lightgbm.train(PARAMS, train, num_boost_round=ROUNDS, valid_sets=[train, valid],
                                 valid_names=["train", "valid"],
                                 callbacks=[callback, lightgbm.record_evaluation(evals)])
    store = mx.open_store(db)
    [run] = runs(store)
    assert run.state == "COMPLETE"
    assert run.custom["run.name"] == "first" and run.custom["tag.team"] == "trees"
    assert [e.id for e in mx.list_executions(store, experiment="gbm")] == [run.id]
    # params: LightGBM's own for the train, a list as its text
    assert run.custom["objective"] == "binary" and run.custom["num_leaves"] == 7
    assert run.custom["num_iterations"] == ROUNDS and run.custom["metric"] == "['binary_logloss', 'auc']"
    # history: every round of each data set and metric, steps 0..n-1, the values LightGBM computed
    keys = {f"{d}-{m}" for d in ("train", "valid") for m in ("binary_logloss", "auc")}
    assert set(run.custom["metric_names"].split(",")) == keys
    for key in keys:
        dataset, metric = key.split("-")
        points = mx.metric_history(store, run.id, key)
        assert [p.step for p in points] == list(range(ROUNDS))
        assert [p.value for p in points] == pytest.approx(evals[dataset][metric], rel=1e-12)
        # the summary: the last point (ml-metadata writes a double with 6 decimals)
        assert run.custom[key] == pytest.approx(points[-1].value, abs=1e-6)
    # the model: saved, loadable, predicting as the booster trained does; the run's output
    model = outputs(store, run.id)["model"]
    assert model.type == "SavedModel" and model.properties["name"] == mx_lightgbm.MODEL_NAME
    path = model_path(model)
    assert path == str(tmp_path / "models" / f"LightGBM-{run.id}.txt")
    loaded = lightgbm.Booster(model_file=path)
    np.testing.assert_allclose(loaded.predict(X_valid), booster.predict(X_valid), rtol=1e-12)
    assert model.properties["fingerprint"] == mx.fingerprint(path)
    # the data: X and y of the training set and of the validation set, named by their variables
    given = inputs(store, run.id)
    assert set(given) == {"X", "y", "valid.X", "valid.y"}
    assert given["X"].uri.endswith("#X_train") and given["valid.y"].uri.endswith("#y_valid")
    assert given["X"].properties["rows"] == 200 and given["X"].properties["columns"] == 5
    # lineage upstream of the model reaches the training data
    graph = mx.walk(store, artifact_id=model.id, direction="upstream")
    assert given["X"].id in graph.artifacts and run.id in graph.executions


def test_the_same_data_is_one_artifact_and_a_second_train_a_second_run(db, tmp_path, split):
    X_train, X_valid, y_train, y_valid = split
    with mx_lightgbm.record(db, model_dir=tmp_path / "models") as callback:
        first = lightgbm.train(PARAMS, lightgbm.Dataset(X_train, label=y_train), num_boost_round=3,
                               callbacks=[callback])
        second = lightgbm.train(dict(PARAMS, num_leaves=3), lightgbm.Dataset(X_train, label=y_train),
                                num_boost_round=3, callbacks=[callback])
    with mx_lightgbm.record(db, model_dir=tmp_path / "models") as callback:
        lightgbm.train(PARAMS, lightgbm.Dataset(X_train.copy(), label=y_train), num_boost_round=3,
                       callbacks=[callback])
    store = mx.open_store(db)
    one, two, three = runs(store)
    assert [r.state for r in (one, two, three)] == ["COMPLETE"] * 3
    assert (one.custom["num_leaves"], two.custom["num_leaves"]) == (7, 3)
    assert inputs(store, one.id)["X"].id == inputs(store, two.id)["X"].id  # the same data, one artifact
    assert inputs(store, one.id)["y"].id == inputs(store, two.id)["y"].id
    # X_train.copy(): no variable holds it, so it is named by its role: another artifact, same content
    copied = inputs(store, three.id)["X"]
    assert copied.uri.endswith("#X")
    assert copied.properties["fingerprint"] == inputs(store, one.id)["X"].properties["fingerprint"]
    assert [model_path(outputs(store, r.id)["model"]) for r in (one, two, three)] == [
        str(tmp_path / "models" / f"LightGBM-{r.id}.txt") for r in (one, two, three)]
    for run, booster in ((one, first), (two, second)):
        loaded = lightgbm.Booster(model_file=model_path(outputs(store, run.id)["model"]))
        np.testing.assert_allclose(loaded.predict(X_valid), booster.predict(X_valid), rtol=1e-12)


def test_a_train_that_goes_on_from_a_model_has_that_model_as_input(db, tmp_path, split):
    X_train, X_valid, y_train, y_valid = split
    with mx_lightgbm.record(db, model_dir=tmp_path / "models") as callback:
        first = lightgbm.train(PARAMS, lightgbm.Dataset(X_train, label=y_train), num_boost_round=2,
                               callbacks=[callback], keep_training_booster=True)
        lightgbm.train(PARAMS, lightgbm.Dataset(X_train, label=y_train), num_boost_round=2,
                       init_model=first, callbacks=[callback])
    store = mx.open_store(db)
    one, two = runs(store)
    model = outputs(store, one.id)["model"]
    with mx_lightgbm.record(db, model_dir=tmp_path / "models") as callback:  # from its file
        lightgbm.train(PARAMS, lightgbm.Dataset(X_train, label=y_train), num_boost_round=2,
                       valid_sets=[lightgbm.Dataset(X_valid, label=y_valid)], init_model=model_path(model),
                       callbacks=[callback])
    three = runs(store)[-1]
    assert inputs(store, two.id)["init_model"].id == inputs(store, three.id)["init_model"].id == model.id
    # its rounds go on from the model's: steps 2 and 3
    assert [p.step for p in mx.metric_history(store, three.id, "valid_0-auc")] == [2, 3]
    upstream = mx.walk(store, artifact_id=outputs(store, three.id)["model"].id, direction="upstream")
    assert one.id in upstream.executions and inputs(store, one.id)["X"].id in upstream.artifacts


def test_a_model_file_is_never_overwritten(db, tmp_path, split):
    X_train, _, y_train, _ = split
    for other in ("other1.db", "other2.db"):  # two stores, their runs both number 1, one folder
        with mx_lightgbm.record(tmp_path / other, model_dir=tmp_path / "models") as callback:
            lightgbm.train(PARAMS, lightgbm.Dataset(X_train, label=y_train), num_boost_round=2, callbacks=[callback])
    first, second = (outputs(mx.open_store(tmp_path / o), 1)["model"] for o in ("other1.db", "other2.db"))
    assert (model_path(first), model_path(second)) == (str(tmp_path / "models" / "LightGBM-1.txt"),
                                                        str(tmp_path / "models" / "LightGBM-1-2.txt"))
    assert first.properties["fingerprint"] == mx.fingerprint(model_path(first))  # still the file it was


def test_data_autolog_recorded_is_the_same_artifact(db, tmp_path, split):
    from sklearn.linear_model import LogisticRegression

    X_train, _, y_train, _ = split
    mx.autolog(db, model_dir=tmp_path / "models")
    try:
        LogisticRegression().fit(X_train, y_train)
    finally:
        mx.autolog(disable=True)
    with mx_lightgbm.record(db, model_dir=tmp_path / "models") as callback:
        lightgbm.train(PARAMS, lightgbm.Dataset(X_train, label=y_train), num_boost_round=2, callbacks=[callback])
    store = mx.open_store(db)
    [fit] = mx.list_executions(store, type="LogisticRegression")
    [boosted] = runs(store)
    assert inputs(store, fit.id)["X"].id == inputs(store, boosted.id)["X"].id
    assert inputs(store, fit.id)["y"].id == inputs(store, boosted.id)["y"].id


def test_early_stopping_is_complete_with_its_best_iteration_and_best_model(db, tmp_path, split):
    X_train, X_valid, y_train, y_valid = split
    noise = np.random.RandomState(3).normal(size=X_valid.shape)  # no signal: it stops early
    with mx_lightgbm.record(db, model_dir=tmp_path / "models") as callback:
        booster = lightgbm.train(dict(PARAMS, metric="binary_logloss"), lightgbm.Dataset(X_train, label=y_train),
                                 num_boost_round=100, valid_sets=[lightgbm.Dataset(noise, label=y_valid)],
                                 callbacks=[callback, lightgbm.early_stopping(3, verbose=False)])
    assert 0 < booster.best_iteration < 50  # (the data is made so)
    store = mx.open_store(db)
    [run] = runs(store)
    assert run.state == "COMPLETE"
    assert run.custom["best_iteration"] == booster.best_iteration
    points = mx.metric_history(store, run.id, "valid_0-binary_logloss")
    assert [p.step for p in points] == list(range(booster.best_iteration + 3))  # up to the round it stopped at
    assert run.custom["best-valid_0-binary_logloss"] == pytest.approx(
        booster.best_score["valid_0"]["binary_logloss"], abs=1e-6)
    assert points[booster.best_iteration - 1].value == pytest.approx(booster.best_score["valid_0"]["binary_logloss"])
    loaded = lightgbm.Booster(model_file=model_path(outputs(store, run.id)["model"]))
    assert loaded.num_trees() == booster.best_iteration  # the best iteration is what was saved
    np.testing.assert_allclose(loaded.predict(X_valid), booster.predict(X_valid), rtol=1e-12)


class Stop:
    """A callback of the script's own that raises at a round."""

    def __init__(self, error, at):
        self.error, self.at = error, at

    def __call__(self, env):
        if env.iteration == self.at:
            raise self.error


@pytest.mark.parametrize("error, state", [(RuntimeError("the script's own failure"), "FAILED"),
                                          (KeyboardInterrupt(), "CANCELED")])
def test_a_train_that_raises_ends_its_run_failed_and_the_exception_goes_on(db, tmp_path, split, error, state):
    X_train, X_valid, y_train, y_valid = split
    with pytest.raises(type(error)) as raised:
        with mx_lightgbm.record(db, model_dir=tmp_path / "models") as callback:
            lightgbm.train(PARAMS, lightgbm.Dataset(X_train, label=y_train), num_boost_round=ROUNDS,
                           valid_sets=[lightgbm.Dataset(X_valid, label=y_valid)], callbacks=[callback, Stop(error, 4)])
    assert raised.value is error  # unchanged
    store = mx.open_store(db)
    [run] = runs(store)
    assert run.state == state and run.custom["error_type"] == type(error).__name__
    # the rounds before the one it raised at (LightGBM calls the script's callback, which has no
    # `order`, before the recording's)
    assert [p.step for p in mx.metric_history(store, run.id, "valid_0-auc")] == list(range(4))
    assert outputs(store, run.id) == {}  # a failed run records no model
    assert not (tmp_path / "models").exists()


def test_a_failure_the_script_caught_is_failed_and_the_next_train_a_run_of_its_own(db, tmp_path, split):
    X_train, _, y_train, _ = split
    with mx_lightgbm.record(db, model_dir=tmp_path / "models") as callback:
        try:
            lightgbm.train(PARAMS, lightgbm.Dataset(X_train, label=y_train), num_boost_round=ROUNDS,
                           callbacks=[callback, Stop(RuntimeError("caught"), 3)])
        except RuntimeError:
            pass
        lightgbm.train(PARAMS, lightgbm.Dataset(X_train, label=y_train), num_boost_round=2, callbacks=[callback])
    store = mx.open_store(db)
    failed, done = runs(store)
    assert failed.state == "FAILED" and "stopped after 3 rounds" in failed.custom["error_message"]
    assert outputs(store, failed.id) == {}
    assert done.state == "COMPLETE" and "model" in outputs(store, done.id)


def test_a_failure_of_the_recording_is_a_warning_not_the_scripts(db, tmp_path, split, caplog):
    X_train, _, y_train, _ = split
    (tmp_path / "file").write_text("")
    with mx_lightgbm.record(db, model_dir=tmp_path / "file" / "models") as callback:  # no folder can be made there
        booster = lightgbm.train(PARAMS, lightgbm.Dataset(X_train, label=y_train), num_boost_round=2,
                                 callbacks=[callback])
    assert booster.num_trees() == 2
    [run] = runs(mx.open_store(db))
    assert run.state == "COMPLETE" and outputs(mx.open_store(db), run.id) == {}
    [warning] = [r for r in caplog.records if r.name == "mlmd_exercise.integrations.lightgbm"]
    assert warning.levelname == "WARNING" and f"could not record the model of run {run.id}" in warning.getMessage()


def test_a_train_refused_before_its_first_round_is_a_failed_run_with_its_params(db, tmp_path, split):
    X_train, _, y_train, _ = split
    with pytest.raises(lightgbm.basic.LightGBMError, match="no_such_objective"):
        with mx_lightgbm.record(db, model_dir=tmp_path / "models") as callback:
            lightgbm.train(dict(PARAMS, objective="no_such_objective"), lightgbm.Dataset(X_train, label=y_train),
                           num_boost_round=ROUNDS, callbacks=[callback])
    [run] = runs(mx.open_store(db))
    assert run.state == "FAILED" and run.custom["error_type"] == "LightGBMError"
    assert run.custom["objective"] == "no_such_objective" and "no_such_objective" in run.custom["error_message"]


def test_a_train_not_given_the_callback_is_not_recorded_even_failing(db, tmp_path, split):
    X_train, _, y_train, _ = split
    with pytest.raises(lightgbm.basic.LightGBMError):
        with mx_lightgbm.record(db, model_dir=tmp_path / "models"):
            lightgbm.train(dict(PARAMS, objective="no_such_objective"), lightgbm.Dataset(X_train, label=y_train))
    assert mx.list_executions(mx.open_store(db)) == []


def test_a_failure_after_a_train_returned_leaves_that_train_complete(db, tmp_path, split):
    X_train, _, y_train, _ = split
    with pytest.raises(ValueError, match="after the train"):
        with mx_lightgbm.record(db, model_dir=tmp_path / "models") as callback:
            lightgbm.train(PARAMS, lightgbm.Dataset(X_train, label=y_train), num_boost_round=3, callbacks=[callback])
            raise ValueError("the script's own failure, after the train")
    [run] = runs(mx.open_store(db))
    assert run.state == "COMPLETE"


def test_the_scikit_learn_api_and_a_csv_file(db, tmp_path, split):
    import pandas as pd

    X_train, X_valid, y_train, y_valid = split
    csv = tmp_path / "train.csv"
    pd.DataFrame(np.column_stack([y_train, X_train])).to_csv(csv, header=False, index=False)
    with mx_lightgbm.record(db, model_dir=tmp_path / "models") as callback:
        with warnings.catch_warnings():  # (eval_set is deprecated in LightGBM 4.7 for eval_X, eval_y)
            warnings.simplefilter("ignore")
            clf = lightgbm.LGBMClassifier(n_estimators=4, num_leaves=7, verbose=-1).fit(
                X_train, y_train, eval_set=[(X_valid, y_valid)], callbacks=[callback])
        booster = lightgbm.train(PARAMS, lightgbm.Dataset(str(csv)), num_boost_round=3, callbacks=[callback])
    store = mx.open_store(db)
    fitted, from_file = runs(store)
    assert fitted.state == from_file.state == "COMPLETE"
    assert fitted.custom["num_iterations"] == 4 and fitted.custom["num_leaves"] == 7
    assert [p.step for p in mx.metric_history(store, fitted.id, "valid_0-binary_logloss")] == [0, 1, 2, 3]
    assert inputs(store, fitted.id)["X"].uri.endswith("#X_train")
    assert inputs(store, fitted.id)["valid_0.X"].uri.endswith("#X_valid")
    loaded = lightgbm.Booster(model_file=model_path(outputs(store, fitted.id)["model"]))
    np.testing.assert_allclose(loaded.predict(X_valid), clf.predict_proba(X_valid)[:, 1], rtol=1e-12)
    # a Dataset read from a file: that file, a DataSet input verify can check
    [(role, dataset)] = inputs(store, from_file.id).items()
    assert role == "X" and dataset.type == "DataSet" and dataset.uri == csv.as_uri()
    assert dataset.properties["fingerprint"] == mx.fingerprint(csv)
    assert booster.num_trees() == 3


def test_cv_records_the_mean_and_the_deviation_over_the_folds(db, tmp_path, split):
    X_train, _, y_train, _ = split
    with mx_lightgbm.record(db, model_dir=tmp_path / "models") as callback:
        result = lightgbm.cv(dict(PARAMS, metric="auc"), lightgbm.Dataset(X_train, label=y_train),
                             num_boost_round=3, nfold=3, callbacks=[callback])
    store = mx.open_store(db)
    [run] = runs(store)
    assert run.state == "COMPLETE"
    means = [p.value for p in mx.metric_history(store, run.id, "valid-auc")]
    deviations = [p.value for p in mx.metric_history(store, run.id, "valid-auc-stdv")]
    assert means == pytest.approx(result["valid auc-mean"]) and deviations == pytest.approx(result["valid auc-stdv"])
    assert inputs(store, run.id)["X"].uri.endswith("#X_train")


def test_the_callback_outside_its_block_refuses_and_the_wrapper_is_undone(db, tmp_path, split):
    X_train, _, y_train, _ = split
    recording = mx_lightgbm.record(db, model_dir=tmp_path / "models")
    with pytest.raises(mx.MlmdExerciseError, match="is a `with` block"):
        lightgbm.train(PARAMS, lightgbm.Dataset(X_train, label=y_train), num_boost_round=2, callbacks=[recording])
    with recording:
        assert is_patched(lightgbm.Dataset.__dict__["construct"])
    assert not is_patched(lightgbm.Dataset.__dict__["construct"])
    with pytest.raises(mx.MlmdExerciseError, match="already used"):
        with recording:
            pass
    assert mx.list_executions(mx.open_store(db)) == []


@pytest.mark.parametrize("kwargs, named", [
    ({"store": 3}, "store"), ({"experiment": ""}, "experiment"), ({"name": 5}, "name"),
    ({"tags": ["a"]}, "tags"), ({"tags": {"team": 1}}, "tag 'team'"), ({"model_dir": None}, "model_dir"),
])
def test_bad_arguments_are_refused_naming_them(db, kwargs, named):
    with pytest.raises(mx.MlmdExerciseError) as refused:
        mx_lightgbm.record(**{"store": db, **kwargs})
    assert named in str(refused.value) and len(str(refused.value).splitlines()) == 1


def test_a_model_dir_that_is_a_file_is_refused(db, tmp_path):
    (tmp_path / "models").write_text("")
    with pytest.raises(mx.MlmdExerciseError, match="model_dir .* is a file"):
        mx_lightgbm.record(db, model_dir=tmp_path / "models")


def test_the_cli_shows_the_run(tmp_path):
    script = tmp_path / "train.py"
    script.write_text(
        "import numpy as np, lightgbm\n"
        "from mlmd_exercise.integrations import lightgbm as mx_lightgbm\n"
        "rng = np.random.RandomState(0)\n"
        "X = rng.normal(size=(200, 4)); y = (X[:, 0] > 0).astype(int)\n"
        "with mx_lightgbm.record() as callback:\n"
        "    lightgbm.train({'objective': 'binary', 'verbose': -1}, lightgbm.Dataset(X, label=y),\n"
        "                   num_boost_round=5, valid_sets=[lightgbm.Dataset(X, label=y)], callbacks=[callback])\n")
    done = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    listed = run_module(["ls", "executions", "--columns", "objective,valid_0-binary_logloss"], tmp_path)
    assert listed.returncode == 0, listed.stderr
    [row] = [line.split() for line in listed.stdout.splitlines()[1:]]
    assert row[:3] == ["1", "LightGBM", "COMPLETE"] and row[-2] == "binary" and float(row[-1]) < 0.7
    shown = run_module(["show", "execution", "1"], tmp_path)
    assert shown.returncode == 0, shown.stderr
    assert "LightGBM" in shown.stdout and "valid_0-binary_logloss" in shown.stdout
    assert ["OUTPUT", "model", "artifact", "3"] in [line.split() for line in shown.stdout.splitlines()]
    model = run_module(["show", "artifact", "3"], tmp_path)
    assert "SavedModel" in model.stdout and "models/LightGBM-1.txt" in model.stdout


def test_importing_the_package_imports_no_lightgbm():
    code = ("import sys, mlmd_exercise, mlmd_exercise.integrations, mlmd_exercise.integrations.lightgbm; "
            "print('lightgbm' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "False", done.stderr
