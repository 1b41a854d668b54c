"""`mx.autolog()`: scikit-learn fits recorded with no tracking code (integrations/sklearn.py).

Real scikit-learn, real stores: each test turns autolog on for its own store and off again.
"""

from __future__ import annotations

import logging
import pickle
import subprocess
import sys
import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.datasets import load_iris
from sklearn.decomposition import PCA
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.metrics import accuracy_score, f1_score, make_scorer, roc_auc_score
from sklearn.model_selection import GridSearchCV, RandomizedSearchCV, train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.tree import DecisionTreeClassifier

import mlmd_exercise as mx
from mlmd_exercise.integrations import patching
from mlmd_exercise.integrations.sklearn import is_on

FIT_FAILURE = RuntimeError("the estimator's own failure")


class Failing(ClassifierMixin, BaseEstimator):
    """An estimator of the script's own whose fit raises (defined before autolog is on)."""

    def fit(self, X, y=None):
        raise FIT_FAILURE


@pytest.fixture
def autologged(store, tmp_path):
    mx.autolog(store, model_dir=tmp_path / "models")
    yield store
    mx.autolog(disable=True)


@pytest.fixture
def iris():
    frame = load_iris(as_frame=True).frame
    return frame.drop(columns="target"), frame["target"]


def runs(store, type=None):
    return sorted(mx.list_executions(store, type=type), key=lambda e: e.id)


def inputs(store, run):
    return dict(mx.execution_lineage(store, run.id).inputs)


def outputs(store, run):
    return dict(mx.execution_lineage(store, run.id).outputs)


# -- the issue's script, through the CLI ----------------------------------------------------

SCRIPT = '''
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score
from sklearn.model_selection import GridSearchCV, train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

import mlmd_exercise as mx

mx.autolog()

frame = pd.read_csv("data/iris.csv")
X_train, X_test, y_train, y_test = train_test_split(
    frame.drop(columns="target"), frame["target"], test_size=0.25, random_state=0)
search = GridSearchCV(Pipeline([("scale", StandardScaler()), ("clf", LogisticRegression(max_iter=500))]),
                      {"clf__C": [0.1, 1.0, 10.0]}, cv=3)
print("fit returns the search:", search.fit(X_train, y_train) is search)
print("test score", round(search.score(X_test, y_test), 6))
print("test accuracy", round(accuracy_score(y_test, search.predict(X_test)), 6))
'''


def test_the_issues_script_gives_lineage_to_the_csv_a_diff_and_stale_models(tmp_path, run_cli):
    (tmp_path / "data").mkdir()
    csv = tmp_path / "data" / "iris.csv"
    load_iris(as_frame=True).frame.to_csv(csv, index=False)
    (tmp_path / "train.py").write_text(SCRIPT)
    proc = subprocess.run([sys.executable, "train.py"], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ["fit returns the search: True", "test score 0.973684",
                                        "test accuracy 0.973684"]
    assert proc.stderr == ""  # no warning: every part was recorded
    db = str(tmp_path / "metadata.db")
    store = mx.open_store(db)

    [search] = runs(store, "GridSearchCV")
    model = outputs(store, search)["model"]
    assert model.uri == (tmp_path / "models" / f"GridSearchCV-{search.id}.joblib").as_uri()
    result = run_cli("lineage", "--artifact", model.id, "--direction", "upstream", "--db", db)
    assert result.code == 0
    assert f"DataSet v1     {csv.as_uri()}" in result.out
    assert ["DataSet", f"#{inputs(store, search)['X.source'].id}", "--X.source-->", "GridSearchCV",
            f"#{search.id}"] in [line.split() for line in result.out.splitlines()]

    pipelines = runs(store, "Pipeline")
    candidates = [r for r in pipelines if "mean_test_score" in r.custom]
    [refit] = [r for r in pipelines if "mean_test_score" not in r.custom]
    assert len(candidates) == 3 and {c.custom["search_run"] for c in candidates} == {search.id}
    assert refit.custom["search_run"] == search.id and "model" in outputs(store, refit)
    low, high = sorted(candidates, key=lambda c: c.custom["clf__C"])[:2]
    result = run_cli("diff", low.id, high.id, "--db", db)
    assert result.code == 0
    assert [line.split() for line in result.out.splitlines() if line.strip().startswith("clf__C")] == [
        ["clf__C", "0.1", "1.0"]]

    [evaluator] = runs(store, "Evaluator")
    assert evaluator.custom["model_run"] == search.id
    assert evaluator.custom["score"] == pytest.approx(0.973684, abs=1e-6)
    assert evaluator.custom["accuracy_score"] == pytest.approx(0.973684, abs=1e-6)
    assert {role: a.uri.rsplit("#", 1)[-1] for role, a in inputs(store, evaluator).items()} == {
        "model": model.uri, "X": "X_test", "y": "y_test", "X.source": csv.as_uri()}
    assert search.custom["accuracy_score_X_test"] == evaluator.custom["accuracy_score"]

    assert run_cli("stale", "--db", db).code == 0
    with csv.open("a") as f:
        f.write("5.0,3.0,1.0,0.2,0\n")
    result = run_cli("stale", "--db", db)
    assert result.code == 1
    lines = result.out.splitlines()
    assert lines[0] == f"modified  artifact {inputs(store, search)['X.source'].id} (DataSet v1)  {csv.as_uri()}"
    assert f"artifact {model.id}  SavedModel v1  {model.uri}" in result.out
    assert lines[-1] == "2 stale artifacts made from 1 changed or missing file: make them again"  # and the refit's


# -- data ---------------------------------------------------------------------------------

def test_the_same_data_twice_is_one_artifact(autologged, iris):
    X, y = iris
    LogisticRegression(max_iter=500).fit(X, y)
    DecisionTreeClassifier(random_state=0).fit(X, y)
    first, second = runs(autologged)
    assert (first.type, second.type) == ("LogisticRegression", "DecisionTreeClassifier")
    assert {r: a.id for r, a in inputs(autologged, first).items()} == {r: a.id for r, a in inputs(autologged, second).items()}
    data = inputs(autologged, first)["X"]
    assert data.uri == f"python:{__file__}#X" and data.type == "DataSet"
    assert (data.custom["rows"], data.custom["columns"], data.custom["python_type"]) == (150, 4, "pandas.DataFrame")
    assert data.custom["fingerprint"].startswith("sha256:")


def test_changed_data_is_a_new_version_and_the_same_content_elsewhere_the_same_fingerprint(autologged, iris):
    X, y = iris
    LogisticRegression(max_iter=500).fit(X, y)
    X = X.copy()
    X.iloc[0, 0] += 1.0
    LogisticRegression(max_iter=500).fit(X, y)
    as_array = X.to_numpy()
    LogisticRegression(max_iter=500).fit(as_array, y.to_numpy())
    first, second, third = (inputs(autologged, r) for r in runs(autologged))
    assert first["X"].uri == second["X"].uri and first["X"].id != second["X"].id
    assert (first["X"].properties["version"], second["X"].properties["version"]) == (1, 2)
    assert first["y"].id == second["y"].id
    assert third["X"].uri.endswith("#as_array") and third["X"].custom["python_type"] == "numpy.ndarray"


def test_data_read_with_pandas_is_recorded_with_its_file_and_its_fingerprint(autologged, iris, tmp_path):
    frame = pd.concat(iris, axis=1)
    csv, json = tmp_path / "iris.csv", tmp_path / "iris.json"
    frame.to_csv(csv, index=False)
    frame.to_json(json)
    from_csv = pd.read_csv(csv)
    X_train, _, y_train, _ = train_test_split(from_csv.drop(columns="target"), from_csv["target"], random_state=0)
    LogisticRegression(max_iter=500).fit(X_train, y_train)
    from_json = pd.read_json(json)
    LogisticRegression(max_iter=500).fit(from_json[["sepal length (cm)", "petal width (cm)"]] * 2, from_json["target"])
    csv_run, json_run = runs(autologged)
    read = inputs(autologged, csv_run)
    assert sorted(read) == ["X", "X.source", "y"]  # the file once: X and y were both read from it
    source = read["X.source"]
    assert (source.uri, source.custom["fingerprint"], source.custom["reader"]) == (
        csv.as_uri(), mx.fingerprint(csv), "pandas.read_csv")
    assert inputs(autologged, json_run)["X.source"].uri == json.as_uri()
    assert mx.verify(autologged).ok
    with csv.open("a") as f:
        f.write("1,1,1,1,0\n")
    [changed] = mx.find_stale(autologged).changed
    assert changed.problem.artifact.uri == csv.as_uri()
    assert [a.uri for a in changed.downstream] == [outputs(autologged, csv_run)["model"].uri]


# -- runs: failures, what a call returns, turning it off -------------------------------------

def test_a_failing_fit_is_a_failed_run_and_its_exception_goes_on_unchanged(autologged, iris):
    X, y = iris
    with pytest.raises(RuntimeError) as raised:
        Failing().fit(X, y)
    assert raised.value is FIT_FAILURE
    bad = X.copy()
    bad.iloc[0, 0] = np.nan
    with pytest.raises(ValueError) as logged:
        LogisticRegression().fit(bad, y)
    mx.autolog(disable=True)
    with pytest.raises(ValueError) as plain:
        LogisticRegression().fit(bad, y)
    assert str(logged.value) == str(plain.value)
    failing, logistic = runs(autologged)
    assert (failing.type, failing.state, failing.custom["error_type"]) == ("Failing", "FAILED", "RuntimeError")
    assert (logistic.state, logistic.custom["error_message"]) == ("FAILED", str(plain.value))
    assert outputs(autologged, logistic) == {} and "X" in inputs(autologged, logistic)


def test_what_every_call_returns_is_what_it_returns_without_autolog(autologged, iris):
    X, y = iris
    X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)

    def work():
        model = LogisticRegression(max_iter=500)
        pipe = Pipeline([("scale", StandardScaler()), ("reg", LinearRegression())])
        scorer = make_scorer(accuracy_score)
        return {"fit returns self": model.fit(X_train, y_train) is model,
                "predict": model.predict(X_test), "proba": model.predict_proba(X_test),
                "score": model.score(X_test, y_test), "metric": accuracy_score(y_test, model.predict(X_test)),
                "fit_transform": StandardScaler().fit_transform(X_train), "pipe": pipe.fit(X_train, y_train).predict(X_test),
                "no predict_proba on a regression pipeline": hasattr(pipe, "predict_proba"),
                "scorer pickles": pickle.loads(pickle.dumps(scorer))(model, X_test, y_test),
                "model pickles": pickle.loads(pickle.dumps(model)).predict(X_test),
                "a bound method pickles": pickle.loads(pickle.dumps(model.predict))(X_test),
                "signature": str(__import__("inspect").signature(LogisticRegression.fit))}

    logged = work()
    assert [r.type for r in runs(autologged)] == ["LogisticRegression", "Evaluator", "StandardScaler", "Pipeline"]
    assert patching.is_patched(LogisticRegression.__dict__["fit"])
    mx.autolog(disable=True)
    plain = work()
    assert not patching.is_patched(LogisticRegression.__dict__["fit"])
    assert logged.keys() == plain.keys()
    for key in logged:
        assert np.array_equal(logged[key], plain[key]), key
    assert logged["fit returns self"] is True and logged["no predict_proba on a regression pipeline"] is False


def test_disabled_it_records_nothing(autologged, iris, tmp_path):
    mx.autolog(disable=True)
    assert not is_on()
    X, y = iris
    pd.concat(iris, axis=1).to_csv(tmp_path / "d.csv", index=False)
    frame = pd.read_csv(tmp_path / "d.csv")
    model = LogisticRegression(max_iter=500).fit(frame.drop(columns="target"), frame["target"])
    accuracy_score(y, model.predict(X))
    GridSearchCV(DecisionTreeClassifier(), {"max_depth": [1, 2]}, cv=2).fit(X, y).score(X, y)
    assert runs(autologged) == [] and mx.list_artifacts(autologged) == []
    assert not (tmp_path / "models").exists()
    assert not any(patching.is_patched(c.cell_contents) for c in accuracy_score.__closure__)


def test_a_failure_of_the_recording_is_a_warning_and_never_the_scripts(autologged, iris, caplog):
    X, y = iris
    autologged.close()  # the store is gone from under it
    model = LogisticRegression(max_iter=500)
    with caplog.at_level(logging.WARNING, logger="mlmd_exercise.integrations.sklearn"):
        assert model.fit(X, y) is model
        assert accuracy_score(y, model.predict(X)) > 0.9
    assert "autolog could not record the start of LogisticRegression.fit" in caplog.text


def test_a_model_joblib_cannot_pickle_is_a_complete_run_without_a_model_and_a_warning(autologged, iris, caplog):
    from sklearn.preprocessing import FunctionTransformer

    X, y = iris
    pipe = Pipeline([("double", FunctionTransformer(lambda v: v * 2)), ("clf", LogisticRegression(max_iter=500))])
    with caplog.at_level(logging.WARNING, logger="mlmd_exercise.integrations.sklearn"):
        assert pipe.fit(X, y) is pipe
    [run] = runs(autologged)
    assert run.state == "COMPLETE" and outputs(autologged, run) == {} and "training_score" in run.custom
    assert f"autolog could not record the model of run {run.id}" in caplog.text


# -- what a fit is made of -------------------------------------------------------------------

@pytest.mark.parametrize("kind", [GridSearchCV, RandomizedSearchCV])
def test_a_search_records_its_candidates_and_its_refit_and_no_inner_fit(autologged, iris, kind):
    X, y = iris
    pipe = Pipeline([("scale", StandardScaler()), ("clf", LogisticRegression(max_iter=500))])
    grid = {"clf__C": [0.1, 1.0, 10.0]}
    search = (kind(pipe, grid, cv=3) if kind is GridSearchCV else kind(pipe, grid, n_iter=3, cv=3, random_state=0))
    search.fit(X, y)
    recorded = runs(autologged)
    assert {r.type for r in recorded} == {kind.__name__, "Pipeline"}  # no StandardScaler, no LogisticRegression
    [parent] = runs(autologged, kind.__name__)
    children = runs(autologged, "Pipeline")
    candidates = [c for c in children if "mean_test_score" in c.custom]
    [refit] = [c for c in children if c not in candidates]
    assert sorted(c.custom["clf__C"] for c in candidates) == [0.1, 1.0, 10.0]
    assert all(c.custom["search_run"] == parent.id for c in children)
    assert refit.custom["clf__C"] == search.best_params_["clf__C"] and "model" in outputs(autologged, refit)
    assert parent.custom["best_cv_score"] == pytest.approx(search.best_score_)
    assert "clf__C" not in parent.custom  # a search's own params alone
    assert {"param_grid", "param_distributions"} & set(parent.custom)
    assert inputs(autologged, parent)["X"].id == inputs(autologged, refit)["X"].id == \
        inputs(autologged, candidates[0])["X"].id


def test_a_candidate_whose_every_fit_failed_is_a_failed_run(autologged, iris):
    from sklearn.exceptions import FitFailedWarning

    X, y = iris
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FitFailedWarning)
        warnings.simplefilter("ignore", UserWarning)
        GridSearchCV(LogisticRegression(max_iter=500), {"C": [-1.0, 1.0]}, cv=2, error_score=np.nan).fit(X, y)
    states = {r.custom["C"]: r.state for r in runs(autologged, "LogisticRegression") if "mean_test_score" in r.custom}
    assert states == {-1.0: "FAILED", 1.0: "COMPLETE"}


def test_a_search_in_worker_processes_records_the_same_and_the_workers_nothing(autologged, iris):
    X, y = iris
    GridSearchCV(DecisionTreeClassifier(random_state=0), {"max_depth": [1, 2, 3]}, cv=2, n_jobs=2).fit(X, y)
    assert [r.type for r in runs(autologged)] == ["GridSearchCV"] + ["DecisionTreeClassifier"] * 4  # refit, 3 candidates


def test_turned_on_twice_it_wraps_once_and_records_into_the_second_store(autologged, iris, tmp_path):
    X, y = iris
    second = mx.open_store(tmp_path / "second.db", create=True)
    mx.autolog(second, experiment="again", model_dir=tmp_path / "models")
    LogisticRegression(max_iter=500).fit(X, y)
    assert runs(autologged) == [] and [r.type for r in mx.list_executions(second, experiment="again")] == [
        "LogisticRegression"]
    assert not patching.is_patched(LogisticRegression.__dict__["fit"].__mlmd_exercise_original__)


def test_params_are_get_params_flattened(autologged, iris):
    X, y = iris
    Pipeline([("scale", StandardScaler(with_mean=False)), ("clf", LogisticRegression(C=0.5, max_iter=300))]).fit(X, y)
    [run] = runs(autologged)
    assert (run.custom["clf__C"], run.custom["scale__with_mean"], run.custom["clf__max_iter"]) == (0.5, False, 300)
    assert run.custom["clf"] == "LogisticRegression(C=0.5, max_iter=300)"
    assert run.custom["memory"] == "None"  # as MLflow writes what is no number or string
    assert run.custom["training_score"] == pytest.approx(0.96, abs=0.02)


def test_a_metric_on_predictions_is_the_predicting_models_and_an_evaluators(autologged, iris):
    X, y = iris
    X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)
    a = LogisticRegression(C=0.01, max_iter=500).fit(X_train, y_train)
    b = DecisionTreeClassifier(random_state=0).fit(X_train, y_train)
    b_says, a_says = b.predict(X_test), a.predict(X_test)
    b_accuracy = accuracy_score(y_test, b_says)
    a_f1 = f1_score(y_test, a_says, average="macro")
    a_train = accuracy_score(y_train, a.predict(X_train))  # on its training data: no Evaluator
    binary = y_test == 1
    proba = b.predict_proba(X_test)
    b_auc = roc_auc_score(binary, proba[:, 1])  # a column of its predictions is still its own
    [a_run], [b_run] = runs(autologged, "LogisticRegression"), runs(autologged, "DecisionTreeClassifier")
    close = lambda value: pytest.approx(value, abs=1e-6)  # noqa: E731 (ml-metadata writes 6 decimals)
    assert (a_run.custom["f1_score_X_test"], a_run.custom["accuracy_score_X_train"]) == (close(a_f1), close(a_train))
    assert "accuracy_score_X_test" not in a_run.custom
    assert (b_run.custom["accuracy_score_X_test"], b_run.custom["roc_auc_score_X_test"]) == (close(b_accuracy),
                                                                                             close(b_auc))
    evaluators = {(e.custom["model_run"], inputs(autologged, e)["y"].uri.rsplit("#", 1)[1]): e
                  for e in runs(autologged, "Evaluator")}
    assert sorted(evaluators) == [(a_run.id, "y_test"), (b_run.id, "binary"), (b_run.id, "y_test")]
    assert evaluators[(a_run.id, "y_test")].custom["f1_score"] == close(a_f1)
    assert evaluators[(b_run.id, "y_test")].custom["accuracy_score"] == close(b_accuracy)
    assert evaluators[(b_run.id, "binary")].custom["roc_auc_score"] == close(b_auc)
    b_evaluated = inputs(autologged, evaluators[(b_run.id, "y_test")])
    assert b_evaluated["model"].id == outputs(autologged, b_run)["model"].id
    assert b_evaluated["X"].uri.endswith("#X_test")


def test_a_metric_of_predictions_whose_input_is_gone_is_the_models_alone(autologged, iris):
    X, y = iris
    model = LogisticRegression(max_iter=500).fit(X, y)
    said = model.predict(X.iloc[::2].copy())  # a frame that is gone once predict returns
    accuracy = accuracy_score(y.iloc[::2], said)
    [run] = runs(autologged)
    assert run.custom["accuracy_score_X"] == pytest.approx(accuracy, abs=1e-6)
    assert runs(autologged, "Evaluator") == []  # no data to give it


def test_a_warm_started_fit_has_the_model_it_started_from_as_input(autologged, iris):
    X, y = iris
    model = LogisticRegression(warm_start=True, max_iter=5)
    cold = LogisticRegression(max_iter=500)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(X, y)
        model.fit(X, y)
        cold.fit(X, y)
        cold.fit(X, y)
    first, second, cold_first, cold_second = runs(autologged)
    assert "warm_start" not in inputs(autologged, first)
    assert inputs(autologged, second)["warm_start"].id == outputs(autologged, first)["model"].id
    assert "warm_start" not in inputs(autologged, cold_second)


def test_a_model_fitted_on_a_transformers_output_has_the_transformer_as_input(autologged, iris):
    X, y = iris
    scaler = StandardScaler().fit(X)
    X_scaled = scaler.transform(X)
    X_reduced = PCA(n_components=2).fit_transform(X_scaled)
    LogisticRegression(max_iter=500).fit(X_reduced, y)
    scaling, pca, logistic = runs(autologged)
    assert inputs(autologged, pca)["X.made_by"].id == outputs(autologged, scaling)["model"].id
    assert inputs(autologged, logistic)["X.made_by"].id == outputs(autologged, pca)["model"].id
    upstream = mx.walk(autologged, artifact_id=outputs(autologged, logistic)["model"].id, direction="upstream")
    assert inputs(autologged, scaling)["X"].id in upstream.artifacts


# -- the call itself -------------------------------------------------------------------------

@pytest.mark.parametrize("given, named", [
    ({"disable": "yes"}, "disable"), ({"log_models": 1}, "log_models"), ({"store": 3}, "store"),
    ({"experiment": ""}, "experiment"), ({"experiment": 7}, "experiment"), ({"model_dir": 5}, "model_dir"),
    ({"model_dir": "a-file"}, "model_dir"),
])
def test_a_bad_argument_is_one_error_naming_it(given, named, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a-file").write_text("")
    with pytest.raises(mx.MlmdExerciseError, match=rf"^autolog: {named}\b"):
        mx.autolog(**given)
    assert not is_on() and not (tmp_path / "metadata.db").exists()


def test_a_store_it_cannot_open_is_refused_at_the_call(tmp_path):
    (tmp_path / "folder.db").mkdir()
    with pytest.raises(mx.StoreError):
        mx.autolog(tmp_path / "folder.db")
    assert not is_on()


def test_mx_autolog_is_a_lazy_name_that_imports_no_scikit_learn():
    code = ("import sys, mlmd_exercise as mx; mx.autolog; "
            "print([m for m in ('sklearn', 'pandas', 'numpy') if m in sys.modules])")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert proc.stdout == "[]\n"



def test_a_fingerprint_is_of_the_content_whatever_holds_it(iris):
    from mlmd_exercise.integrations.data import describe

    X, _ = iris
    same = describe(X.copy())[0]
    assert describe(X)[0] == same == describe(X.reset_index(drop=True).set_axis(range(1, 151)))[0]  # not the index
    changed = X.copy()
    changed.iloc[3, 2] += 1e-9
    renamed = X.rename(columns={"sepal length (cm)": "sl"})
    fingerprints = {same, describe(changed)[0], describe(renamed)[0], describe(X.astype("float32"))[0],
                    describe(X.to_numpy())[0], describe(X.to_numpy().tolist())[0], describe(X.iloc[::-1])[0]}
    assert len(fingerprints) == 7 and all(f.startswith("sha256:") and len(f) == 71 for f in fingerprints)
    assert describe(X.to_numpy())[0] == describe(X.to_numpy().copy(order="F"))[0]
    assert describe(None) is None and describe(len) is None
    assert describe(pd.Series(["a", "b", None]))[1] == {"rows": 3, "columns": 1, "python_type": "pandas.Series"}
