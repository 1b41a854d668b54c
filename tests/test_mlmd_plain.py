"""The ml-metadata backend without MLMD's filter language (ml-metadata 1.21 dropped it): the
plain calls and the package's own tests answer every query as the filter queries did.

On ml-metadata 1.17 both ways run on the same store, so each query is asked twice and the
answers compared; scripts/mlmd121-root runs the package's commands on 1.21 itself."""

from __future__ import annotations

import pytest

import mlmd_exercise as mx
from conftest import write
from mlmd_exercise.records import Kind
from mlmd_exercise.store.backend import PropertyTest, Query, TextSearch
from mlmd_exercise.write.bulk import ArtifactSpec, RunSpec, record_runs

pytest.importorskip("ml_metadata", reason="ml-metadata is not installed: there is no ml-metadata backend")


@pytest.fixture
def store(tmp_path):
    store = mx.open_store(tmp_path / "m.db", create=True, backend="mlmd")
    tracker = mx.Tracker(store, experiment="sweep")
    data = tracker.dataset(write(tmp_path / "d.csv", "a\n1\n"))
    for i, c in enumerate((0.1, 1.0, 10.0)):
        with tracker.execution("Trainer", inputs={"examples": data}, params={"C": c, "solver": f"s_{i}"},
                               name=f"run-{i}") as run:
            run.log_metrics({"accuracy": 0.7 + i / 10})
            run.log_model(write(tmp_path / f"m{i}.bin", str(i)), name="LR")
    with pytest.raises(RuntimeError):
        with mx.Tracker(store, experiment="other").execution("Evaluator", name="broken"):
            raise RuntimeError("no")
    record_runs(tracker, [RunSpec(name="old", started_ms=1614592800000, state="CACHED",
                                  inputs={"x": ArtifactSpec("s3://b/it's.csv")})])
    return store


def _queries(store):
    trainer = store.catalog.type_id(Kind.EXECUTION, "Trainer")
    model = store.catalog.type_id(Kind.ARTIFACT, "SavedModel")
    sweep = store.catalog.context_id("sweep")
    yield Kind.EXECUTION, Query()
    yield Kind.EXECUTION, Query(limit=2, order="id", ascending=True)
    yield Kind.EXECUTION, Query(ids=[1, 3, 99], limit=5)
    yield Kind.EXECUTION, Query(id_above=2)
    yield Kind.EXECUTION, Query(type_id=trainer, states=["COMPLETE"])
    yield Kind.EXECUTION, Query(not_type_id=trainer)
    yield Kind.EXECUTION, Query(context_id=sweep, limit=2)
    yield Kind.EXECUTION, Query(states=["FAILED", "CACHED"])
    yield Kind.EXECUTION, Query(states=["UNKNOWN"])
    # Not `C >= 1.0`: ml-metadata 1.17's filter finds no run by a double param compared so (the
    # native backend and the plain path find runs 2 and 3); the package asks `>=` of times only.
    yield Kind.EXECUTION, Query(custom=(PropertyTest("solver", "in", ("s_0", "s_2")),))
    yield Kind.EXECUTION, Query(custom=(PropertyTest("started_ms", ">=", (0.0,)),))
    yield Kind.EXECUTION, Query(text=TextSearch("Eval"))
    yield Kind.EXECUTION, Query(text=TextSearch("s_1", ("solver",)))
    yield Kind.EXECUTION, Query(text=TextSearch("run-_"))
    yield Kind.EXECUTION, Query(text=TextSearch("2"))
    yield Kind.EXECUTION, Query(names=["run-1", "old", "nope"], type_id=trainer)
    yield Kind.EXECUTION, Query(created_from=0, created_before=2**62)
    yield Kind.ARTIFACT, Query()
    yield Kind.ARTIFACT, Query(type_id=model, order="id", ascending=True, limit=2)
    yield Kind.ARTIFACT, Query(uris=["s3://b/it's.csv"])
    yield Kind.ARTIFACT, Query(context_id=sweep)
    yield Kind.CONTEXT, Query()
    yield Kind.CONTEXT, Query(names=["sweep"])


def test_every_query_is_answered_the_same_without_filter_queries(store):
    backend = store.backend
    if not backend.filters:
        pytest.skip("this ml-metadata has no filter language to compare with (1.21)")
    listing = {Kind.EXECUTION: backend.executions, Kind.ARTIFACT: backend.artifacts, Kind.CONTEXT: backend.contexts}
    asked = 0
    for kind, query in _queries(store):
        backend.filters = True
        with_filters = [r.id for r in listing[kind](query)]
        backend.filters = False
        plain = [r.id for r in listing[kind](query)]
        assert plain == with_filters, (kind, query)
        asked += bool(with_filters)
    assert asked >= 20  # the queries find something: the comparison is not of empty lists
    backend.filters = False
    ids = [e.id for e in mx.list_executions(store)]
    assert backend.contexts_of_executions(ids) == _with_filters(backend).contexts_of_executions(ids)


def test_the_filter_language_is_used_where_ml_metadata_has_it(store):
    import ml_metadata

    from mlmd_exercise.version import major_minor

    assert store.backend.filters == (major_minor(ml_metadata.__version__) < (1, 21))


def _with_filters(backend):
    backend.filters = True
    return backend


def test_the_commands_read_the_store_without_filter_queries(store, run_cli, monkeypatch):
    """Every reading command, with the backend told it has no filter language: what 1.21 does."""
    from mlmd_exercise.store.mlmd import backend as mlmd_backend

    monkeypatch.setattr(mlmd_backend, "MLMD_WITHOUT_FILTERS", (1, 0))  # every version "dropped" them
    db = str(store)
    del store
    for args in (["ls", "executions"], ["ls", "artifacts", "--type", "SavedModel"], ["show", "artifact", "2"],
                 ["lineage", "--artifact", "2"], ["verify"], ["check"], ["states"], ["diff", "1", "2"],
                 ["ls", "executions", "--experiment", "sweep", "--sort", "-accuracy"]):
        result = run_cli(*args, "--db", db, "--backend", "mlmd")
        assert result.code in (0, 1) and "filter" not in result.err, (args, result.err)
        assert result.out, args
