"""A small store with old and new runs, and ways to compare stores node by node, ids aside:
what tests/test_bundle.py and tests/test_prune.py share."""

from __future__ import annotations

import time
from typing import Dict, FrozenSet, Tuple

import mlmd_exercise as mx
from mlmd_exercise.read.lineage import walk
from mlmd_exercise.records import CREATED_MS, STARTED_MS, Kind
from mlmd_exercise.store.backend import Query
from mlmd_exercise.write.bulk import ArtifactSpec, RunSpec, record_runs
from mlmd_exercise.records import ORIGIN

DAY = 86400 * 1000
OLD = int(time.time() * 1000) - 200 * DAY  # older than any cut-off the tests use (90d)


def sample(store: mx.Store, files=None) -> None:
    """Old and new runs in two experiments: a dataset, old Trainers (some FAILED) each
    making a model, a new Evaluator reading old model 2 (so its Trainer must stay), an old
    chain (model 5 -> Trainer -> model 6) below a new model, and an old failed run alone."""
    def uri(name: str) -> str:
        if files is None:
            return f"file:///nowhere/{name}"
        path = files / name
        path.write_text(name)
        return path.as_uri()

    data = ArtifactSpec(uri("data.csv"), properties={"split": "train"}, created_ms=OLD)
    models = [ArtifactSpec(uri(f"m{i}.joblib"), type="SavedModel", created_ms=OLD + i) for i in range(7)]
    runs = [RunSpec(inputs={"examples": data}, outputs={"model": models[i]}, params={"i": i, "lr": 0.5},
                    state="FAILED" if i in (1, 3) else "COMPLETE", started_ms=OLD + i, ended_ms=OLD + i + 5,
                    experiment="e1" if i < 4 else "e2")
            for i in range(6)]
    runs.append(RunSpec(inputs={"model": models[5]}, outputs={"model": models[6]}, started_ms=OLD + 6,
                        experiment="e2"))
    runs.append(RunSpec(type="Evaluator", inputs={"model": models[2]},
                        outputs={"metrics": ArtifactSpec(uri("metrics.json"), type="Metrics",
                                                         properties={"accuracy": 0.9})}, experiment="e1"))
    runs.append(RunSpec(inputs={"model": models[6]}, outputs={"model": ArtifactSpec(uri("new.joblib"),
                                                                                    type="SavedModel")},
                        experiment="e2"))
    runs.append(RunSpec(inputs={"examples": data}, outputs={}, state="CANCELED", started_ms=OLD + 9,
                        experiment="e1"))
    record_runs(mx.Tracker(store, experiment="e1"), runs)


_ADDED = {ORIGIN, CREATED_MS, STARTED_MS}


def _node(kind: str, n, origin_of) -> tuple:
    custom = {k: v for k, v in n.custom.items() if k not in _ADDED}
    declared = {k: v for k, v in n.properties.items() if k not in n.custom}
    return (kind, n.type, getattr(n, "uri", ""), n.state, n.name, tuple(sorted(declared.items())),
            tuple(sorted(custom.items(), key=str)), n.when_ms)


def snapshot(store: mx.Store, key=None) -> Dict[str, object]:
    """Everything a store holds, by content (ids replaced by `key(kind, node)`, default a
    node's origin where it has one, else its id): nodes, events, memberships, and every
    artifact's upstream walk."""
    b = store.backend
    arts = {a.id: a for a in b.artifacts(Query(order="id", ascending=True))}
    runs = {e.id: e for e in b.executions(Query(order="id", ascending=True))}

    def ident(kind: str, n) -> object:
        if key is not None:
            return key(kind, n)
        return n.custom.get(ORIGIN, f"{kind}/{n.id}")

    a_key = {i: ident("artifact", a) for i, a in arts.items()}
    x_key = {i: ident("execution", e) for i, e in runs.items()}
    events = {(a_key[e.artifact_id], x_key[e.execution_id], e.type, e.path)
              for e in b.events_by_executions(list(runs))}
    members = set()
    for i in runs:
        members |= {(x_key[i], c.type, c.name) for c in b.contexts_of(Kind.EXECUTION, i)}
    for i in arts:
        members |= {(a_key[i], c.type, c.name) for c in b.contexts_of(Kind.ARTIFACT, i)}
    walks: Dict[object, Tuple[FrozenSet, FrozenSet]] = {}
    for i in arts:
        g = walk(store, artifact_id=i, direction="upstream")
        walks[a_key[i]] = (frozenset(a_key[j] for j in g.artifacts), frozenset(x_key[j] for j in g.executions))
    return {"artifacts": {a_key[i]: _node("artifact", a, a_key) for i, a in arts.items()},
            "executions": {x_key[i]: _node("execution", e, x_key) for i, e in runs.items()},
            "events": events, "members": members, "walks": walks}
