"""Stores as other programs write them, built with the raw ml-metadata API, and what raw
ml-metadata reads back from them.

Run as a script (`python foreign_stores.py KIND PATH`) it builds one store (PATH: a file, or
a mysql:// address for a database on a MySQL server) and prints,
as JSON, the facts the tests compare the CLI's answers with; tests run it in a
subprocess so that no MLMD store is open in the test process while the package reads
the file (two SQLite copies in one process break each other's locks).

Kinds: guide (MLMD's getting-started guide, as published), tfx, kubeflow, fanout, odd.
"""

from __future__ import annotations

import json
import sys
from typing import Dict, List

from google.protobuf import any_pb2, duration_pb2, json_format
from raw_mlmd import pb, metadata_store

KINDS = ("guide", "tfx", "kubeflow", "fanout", "odd")
LONG = "a-very-long-step-name-" * 9 + "end"  # 200 characters
ODD_STRINGS = [
    "<class 'pandas.DataFrame'>", "<stdin>", "line one\nline two", 'say "hi"', "back\\slash\\N\\l",
    "<b>bold</b> & <i>html</i>", '"; } digraph x { a -> b; /*', "tab\there", "{braces} [brackets] |pipe|",
    "\\", "<>",
]


def open_raw(path: str) -> metadata_store.MetadataStore:
    """An SQLite file, or a mysql://user:password@host:port/database address: there MLMD
    creates the database itself, as Kubeflow Pipelines' metadata server has it do."""
    config = pb.ConnectionConfig()
    if path.startswith("mysql://"):
        from urllib.parse import unquote, urlsplit

        parts = urlsplit(path)
        mysql = config.mysql
        mysql.host, mysql.port, mysql.database = parts.hostname, parts.port or 3306, parts.path[1:]
        mysql.user, mysql.password = unquote(parts.username or ""), unquote(parts.password or "")
        return metadata_store.MetadataStore(config)
    config.sqlite.filename_uri = path
    config.sqlite.connection_mode = pb.SqliteMetadataSourceConfig.READWRITE_OPENCREATE
    return metadata_store.MetadataStore(config)


def _type(store, cls, name: str, **props) -> int:
    t = cls(name=name)
    for key, ptype in props.items():
        t.properties[key] = ptype
    put = {pb.ArtifactType: store.put_artifact_type, pb.ExecutionType: store.put_execution_type,
           pb.ContextType: store.put_context_type}[cls]
    return put(t)


def _event(kind, role: str = "", index=None, artifact_id=0, execution_id=0) -> pb.Event:
    event = pb.Event(type=kind)
    if artifact_id:
        event.artifact_id = artifact_id
    if execution_id:
        event.execution_id = execution_id
    if role:
        event.path.steps.add().key = role
    if index is not None:
        event.path.steps.add().index = index
    return event


# -- the getting-started guide, as published ------------------------------------------


def build_guide(store) -> None:
    """https://github.com/google/ml-metadata/blob/master/g3doc/get_started.md, step by step."""
    data_type = pb.ArtifactType(name="DataSet")
    data_type.properties["day"] = pb.INT
    data_type.properties["split"] = pb.STRING
    data_type_id = store.put_artifact_type(data_type)

    model_type = pb.ArtifactType(name="SavedModel")
    model_type.properties["version"] = pb.INT
    model_type.properties["name"] = pb.STRING
    model_type_id = store.put_artifact_type(model_type)

    trainer_type = pb.ExecutionType(name="Trainer")
    trainer_type.properties["state"] = pb.STRING
    trainer_type_id = store.put_execution_type(trainer_type)

    data_artifact = pb.Artifact(uri="path/to/data", type_id=data_type_id)
    data_artifact.properties["day"].int_value = 1
    data_artifact.properties["split"].string_value = "train"
    [data_artifact_id] = store.put_artifacts([data_artifact])

    trainer_run = pb.Execution(type_id=trainer_type_id)
    trainer_run.properties["state"].string_value = "RUNNING"
    [run_id] = store.put_executions([trainer_run])

    input_event = pb.Event(artifact_id=data_artifact_id, execution_id=run_id, type=pb.Event.DECLARED_INPUT)
    store.put_events([input_event])

    model_artifact = pb.Artifact(uri="path/to/model/file", type_id=model_type_id)
    model_artifact.properties["version"].int_value = 1
    model_artifact.properties["name"].string_value = "MNIST-v1"
    [model_artifact_id] = store.put_artifacts([model_artifact])

    output_event = pb.Event(artifact_id=model_artifact_id, execution_id=run_id, type=pb.Event.DECLARED_OUTPUT)
    store.put_events([output_event])

    experiment_type = pb.ContextType(name="Experiment")
    experiment_type.properties["note"] = pb.STRING
    experiment_type_id = store.put_context_type(experiment_type)
    my_experiment = pb.Context(type_id=experiment_type_id, name="exp1")
    my_experiment.properties["note"].string_value = "My first experiment."
    [experiment_id] = store.put_contexts([my_experiment])
    attribution = pb.Attribution(artifact_id=model_artifact_id, context_id=experiment_id)
    association = pb.Association(execution_id=run_id, context_id=experiment_id)
    store.put_attributions_and_associations([attribution], [association])


# -- a TFX-like pipeline --------------------------------------------------------------

TFX = "tfx.components."
TFX_STEPS = {
    "CsvExampleGen": TFX + "example_gen.csv_example_gen.component.CsvExampleGen",
    "StatisticsGen": TFX + "statistics_gen.component.StatisticsGen",
    "SchemaGen": TFX + "schema_gen.component.SchemaGen",
    "Trainer": TFX + "trainer.component.Trainer",
    "Evaluator": TFX + "evaluator.component.Evaluator",
    "Pusher": TFX + "pusher.component.Pusher",
}


def build_tfx(store) -> None:
    """Two runs of a six-component pipeline, as TFX records them: class-path types, contexts
    pipeline / pipeline_run / node, event paths with key and index, a CACHED and a FAILED
    run, artifacts in every state, non-local URIs, struct and proto custom properties."""
    ctx = {name: _type(store, pb.ContextType, name) for name in ("pipeline", "pipeline_run", "node")}
    examples = _type(store, pb.ArtifactType, "Examples", span=pb.INT, split_names=pb.STRING, version=pb.INT)
    types = {name: _type(store, pb.ArtifactType, name) for name in
             ("ExampleStatistics", "Schema", "Model", "ModelEvaluation", "ModelBlessing", "PushedModel")}
    types["Examples"] = examples
    steps = {short: _type(store, pb.ExecutionType, full) for short, full in TFX_STEPS.items()}
    [pipeline] = store.put_contexts([pb.Context(type_id=ctx["pipeline"], name="my_pipeline")])
    nodes = dict(zip(TFX_STEPS, store.put_contexts(
        [pb.Context(type_id=ctx["node"], name=f"my_pipeline.{s}") for s in TFX_STEPS])))
    root = "gs://bucket/tfx/my_pipeline"
    states = iter([pb.Artifact.LIVE, pb.Artifact.PENDING, pb.Artifact.MARKED_FOR_DELETION,
                   pb.Artifact.DELETED, pb.Artifact.ABANDONED, pb.Artifact.REFERENCE, pb.Artifact.UNKNOWN])

    def artifact(kind: str, uri: str, **extra) -> pb.Artifact:
        a = pb.Artifact(type_id=types[kind], uri=uri, state=next(states, pb.Artifact.LIVE))
        if kind == "Examples":
            a.properties["span"].int_value = 0
            a.properties["version"].int_value = 7  # TFX's data version: not ours
            a.properties["split_names"].string_value = '["train", "eval"]'
        for key, value in extra.items():
            a.custom_properties[key].CopyFrom(value)
        return a

    def run(number: int, step: str, state, inputs, outputs, run_ctx) -> Dict[str, int]:
        execution = pb.Execution(type_id=steps[step], last_known_state=state)
        execution.custom_properties["component_id"].string_value = step
        pairs = [(a, _event(pb.Event.INPUT, role, 0)) for role, a in inputs] + \
                [(a, _event(pb.Event.OUTPUT, role, 0)) for role, a in outputs]
        contexts = [pb.Context(id=pipeline), pb.Context(id=run_ctx), pb.Context(id=nodes[step])]
        for c in contexts:
            c.CopyFrom(store.get_contexts_by_id([c.id])[0])
        _, ids, _ = store.put_execution(execution, pairs, contexts, reuse_context_if_already_exist=True)
        return {role: i for (role, _), i in zip(inputs + outputs, ids)}

    metrics = pb.Value()
    metrics.struct_value.update({"accuracy": 0.93, "auc": 0.97, "slices": ["all", "age<30"]})
    known = pb.Value()
    packed = any_pb2.Any()
    packed.Pack(duration_pb2.Duration(seconds=90))
    known.proto_value.CopyFrom(packed)
    unknown = pb.Value()
    unknown.proto_value.CopyFrom(any_pb2.Any(type_url="type.googleapis.com/tfx.Unknown", value=b"\x08\x01"))
    md5 = pb.Value()
    md5.string_value = "md5:9e107d9d372bb6826bd81d3542a419d6"

    for number in (1, 2):
        [run_ctx] = store.put_contexts([pb.Context(type_id=ctx["pipeline_run"], name=f"2026-11-2{number}T10:00:00")])
        base = f"{root}/run{number}"
        if number == 1:
            ex = run(number, "CsvExampleGen", pb.Execution.COMPLETE, [],
                     [("examples", artifact("Examples", f"{base}/CsvExampleGen/examples/1"))], run_ctx)
            stats = run(number, "StatisticsGen", pb.Execution.COMPLETE,
                        [("examples", store.get_artifacts_by_id([ex["examples"]])[0])],
                        [("statistics", artifact("ExampleStatistics", f"{base}/StatisticsGen/statistics/2"))], run_ctx)
            schema = run(number, "SchemaGen", pb.Execution.COMPLETE,
                         [("statistics", store.get_artifacts_by_id([stats["statistics"]])[0])],
                         [("schema", artifact("Schema", "file:///tmp/tfx-nowhere/SchemaGen/schema/3",
                                              fingerprint=md5))], run_ctx)
            first_examples = store.get_artifacts_by_id([ex["examples"]])[0]
            first_schema = store.get_artifacts_by_id([schema["schema"]])[0]
            model = run(number, "Trainer", pb.Execution.COMPLETE,
                        [("examples", first_examples), ("schema", first_schema)],
                        [("model", artifact("Model", "s3://models/Trainer/model/4", hyperparameters=metrics))],
                        run_ctx)
            evaluation = run(number, "Evaluator", pb.Execution.COMPLETE,
                             [("examples", first_examples), ("model", store.get_artifacts_by_id([model["model"]])[0])],
                             [("evaluation", artifact("ModelEvaluation", f"{base}/Evaluator/evaluation/5",
                                                      metrics=metrics, duration=known, blob=unknown)),
                              ("blessing", artifact("ModelBlessing", f"{base}/Evaluator/blessing/5"))], run_ctx)
            run(number, "Pusher", pb.Execution.COMPLETE,
                [("model", store.get_artifacts_by_id([model["model"]])[0]),
                 ("model_blessing", store.get_artifacts_by_id([evaluation["blessing"]])[0])],
                [("pushed_model", artifact("PushedModel", "/serving/my_model/1"))], run_ctx)
        else:
            # The second run reuses the first run's examples (CACHED) and its Trainer fails.
            run(number, "CsvExampleGen", pb.Execution.CACHED, [], [("examples", first_examples)], run_ctx)
            run(number, "Trainer", pb.Execution.FAILED, [("examples", first_examples), ("schema", first_schema)],
                [], run_ctx)


# -- a Kubeflow-like pipeline ---------------------------------------------------------


def build_kubeflow(store) -> None:
    """Kubeflow Pipelines v2 as it records runs: system.* types, every step a
    system.ContainerExecution named by display_name / task_name, contexts
    system.Pipeline and system.PipelineRun, struct metrics, unicode and 200-character names,
    and a second run with a cached step and a canceled one."""
    ctx_pipeline = _type(store, pb.ContextType, "system.Pipeline")
    ctx_run = _type(store, pb.ContextType, "system.PipelineRun")
    kinds = {k: _type(store, pb.ArtifactType, f"system.{k}") for k in ("Dataset", "Model", "Metrics", "Artifact")}
    step = _type(store, pb.ExecutionType, "system.ContainerExecution")
    [pipeline] = store.put_contexts([pb.Context(type_id=ctx_pipeline, name="données-pipeline 🚀")])
    [run_ctx] = store.put_contexts([pb.Context(type_id=ctx_run, name="run-8f3a2c")])
    contexts = store.get_contexts_by_id([pipeline, run_ctx])

    def artifact(kind: str, name: str, uri: str, **struct) -> pb.Artifact:
        a = pb.Artifact(type_id=kinds[kind], uri=uri, state=pb.Artifact.LIVE)
        a.custom_properties["display_name"].string_value = name
        if struct:
            a.custom_properties["metrics"].struct_value.update(struct)
        return a

    def execution(name: str, task: bool = False, state=pb.Execution.COMPLETE) -> pb.Execution:
        e = pb.Execution(type_id=step, last_known_state=state)
        e.custom_properties["task_name" if task else "display_name"].string_value = name
        e.custom_properties["inputs"].struct_value.update({"learning_rate": 0.01, "epochs": 3})
        return e

    def put(e, inputs, outputs, within=contexts) -> List[int]:
        pairs = [(a, _event(pb.Event.INPUT, role)) for role, a in inputs] + \
                [(a, _event(pb.Event.OUTPUT, role)) for role, a in outputs]
        _, ids, _ = store.put_execution(e, pairs, within, reuse_context_if_already_exist=True)
        return ids

    base = "minio://mlpipeline/v2/artifacts/run-8f3a2c"
    raw = put(execution("ingest-données 📥"), [], [("dataset", artifact("Dataset", "données brutes", f"{base}/ingest/dataset"))])[-1]
    raw_a = store.get_artifacts_by_id([raw])[0]
    clean = put(execution("preprocess", task=True), [("dataset", raw_a)],
                  [("clean", artifact("Dataset", "clean 🧹", f"{base}/preprocess/clean"))])[-1]
    clean_a = store.get_artifacts_by_id([clean])[0]
    models = []
    for name in ("train-small", LONG):
        _, model = put(execution(name), [("dataset", clean_a)],
                       [("model", artifact("Model", f"model of {name}", f"{base}/{name}/model"))])
        models.append(store.get_artifacts_by_id([model])[0])
    for model in models:
        put(execution("evaluate ✅"), [("model", model), ("dataset", clean_a)],
            [("metrics", artifact("Metrics", "metrics", f"{base}/evaluate/{model.id}/metrics",
                                  accuracy=0.9, f1=0.88))])
    put(execution("deploy", state=pb.Execution.RUNNING), [("model", models[0])], [])
    # A second run of the pipeline, as Kubeflow v2's driver records a cache hit: the preprocess
    # task CACHED, with the cached execution's id, re-publishing the first run's artifact by an
    # OUTPUT event; the training after it canceled.
    [again] = store.put_contexts([pb.Context(type_id=ctx_run, name="run-9b1d07")])
    second = store.get_contexts_by_id([pipeline, again])
    [first_preprocess] = [e for e in store.get_executions()
                          if e.custom_properties["task_name"].string_value == "preprocess"]
    cached = execution("preprocess", task=True, state=pb.Execution.CACHED)
    cached.custom_properties["cached_execution_id"].string_value = str(first_preprocess.id)
    put(cached, [("dataset", raw_a)], [("clean", clean_a)], second)
    put(execution("train-small", state=pb.Execution.CANCELED), [("dataset", clean_a)], [], second)


# -- a big fan-out ----------------------------------------------------------------------


def build_fanout(store, n: int = 2000) -> None:
    """One dataset read by `n` trainer runs, each writing a model no one reads; 10 failed."""
    data = _type(store, pb.ArtifactType, "DataSet")
    model = _type(store, pb.ArtifactType, "SavedModel")
    trainer = _type(store, pb.ExecutionType, "Trainer")
    [dataset] = store.put_artifacts([pb.Artifact(type_id=data, uri="s3://data/big.csv")])
    executions, artifacts, edges = [], [], []
    for i in range(n):
        failed = i % 200 == 199
        executions.append(pb.Execution(type_id=trainer, name=f"t{i}",
                                       last_known_state=pb.Execution.FAILED if failed else pb.Execution.COMPLETE))
        edges.append((i, None, _event(pb.Event.INPUT, "examples", artifact_id=dataset)))
        if not failed:
            artifacts.append(pb.Artifact(type_id=model, uri=f"s3://models/m{i}"))
            edges.append((i, len(artifacts) - 1, _event(pb.Event.OUTPUT, "model")))
    store.put_lineage_subgraph(executions, artifacts, [], edges)


# -- odd values -------------------------------------------------------------------------


def build_odd(store) -> None:
    """What other programs store that a renderer or a table may choke on."""
    frame = _type(store, pb.ArtifactType, "<class 'pandas.DataFrame'>")
    bare = _type(store, pb.ArtifactType, "Bare")
    stdin = _type(store, pb.ExecutionType, "<stdin>")
    html = _type(store, pb.ExecutionType, "<b>Step</b>")
    ctx = _type(store, pb.ContextType, "<group>")
    # An artifact with no properties, no events and no context; one with 50 custom properties.
    store.put_artifacts([pb.Artifact(type_id=bare)])
    many = pb.Artifact(type_id=bare, uri="file:///nowhere/many")
    for i in range(50):
        many.custom_properties[f"p{i:02d}"].string_value = ODD_STRINGS[i % len(ODD_STRINGS)]
    store.put_artifacts([many])
    # An execution with no events, no state, no context.
    store.put_executions([pb.Execution(type_id=html)])
    # Named nodes whose names and roles are odd, joined by events, in an odd context.
    [group] = store.put_contexts([pb.Context(type_id=ctx, name='"quoted" <group>\nwith newline')])
    group_ctx = store.get_contexts_by_id([group])
    previous = None
    for i, text in enumerate(ODD_STRINGS):
        a = pb.Artifact(type_id=frame, uri=f"file:///odd/{i}", name=text)
        a.custom_properties["name"].string_value = text
        e = pb.Execution(type_id=stdin, name=text, last_known_state=pb.Execution.COMPLETE)
        e.custom_properties["display_name"].string_value = text
        inputs = [(previous, _event(pb.Event.INPUT, text))] if previous is not None else []
        _, ids, _ = store.put_execution(e, inputs + [(a, _event(pb.Event.OUTPUT, text))],
                                        group_ctx if i % 2 else [], reuse_context_if_already_exist=True)
        previous = store.get_artifacts_by_id([ids[-1]])[0]


BUILDERS = {"guide": build_guide, "tfx": build_tfx, "kubeflow": build_kubeflow,
            "fanout": build_fanout, "odd": build_odd}


# -- what raw ml-metadata reads -------------------------------------------------------


def _props(node) -> dict:
    out = {k: _value(v) for k, v in node.custom_properties.items()}
    out.update((k, _value(v)) for k, v in node.properties.items())
    return out


def _value(value: pb.Value):
    which = value.WhichOneof("value")
    if which == "struct_value":
        return json_format.MessageToDict(value.struct_value)
    if which == "proto_value":  # JSON for protobuf's own types, else the type and the bytes
        if value.proto_value.type_url.startswith("type.googleapis.com/google.protobuf."):
            return json_format.MessageToDict(value.proto_value)
        import base64

        return {"type_url": value.proto_value.type_url,
                "value": base64.b64encode(value.proto_value.value).decode()}
    return getattr(value, which) if which else None


def _subgraph(store, kind: str, node_id: int, direction) -> dict:
    options = pb.LineageSubgraphQueryOptions(max_num_hops=100, direction=direction)
    start = options.starting_artifacts if kind == "artifact" else options.starting_executions
    start.filter_query = f"id = {node_id}"
    graph = store.get_lineage_subgraph(options, ["artifacts", "executions"])
    return {"artifacts": sorted(a.id for a in graph.artifacts),
            "executions": sorted(e.id for e in graph.executions)}


def facts(store, walks: int = 1000) -> dict:
    artifacts = sorted(store.get_artifacts(), key=lambda a: a.id)
    executions = sorted(store.get_executions(), key=lambda e: e.id)
    events = store.get_events_by_execution_ids([e.id for e in executions]) if executions else []
    states: Dict[str, int] = {}
    for e in executions:
        name = pb.Execution.State.Name(e.last_known_state)
        states[name] = states.get(name, 0) + 1
    contexts = []
    for c in sorted(store.get_contexts(), key=lambda c: c.id):
        contexts.append({"id": c.id, "name": c.name, "type": c.type,
                         "executions": sorted(e.id for e in store.get_executions_by_context(c.id)),
                         "artifacts": sorted(a.id for a in store.get_artifacts_by_context(c.id))})
    up, down = pb.LineageSubgraphQueryOptions.UPSTREAM, pb.LineageSubgraphQueryOptions.DOWNSTREAM
    return {
        "states": states,
        "artifacts": {a.id: {"type": a.type, "uri": a.uri, "state": pb.Artifact.State.Name(a.state),
                             "properties": _props(a)} for a in artifacts},
        "executions": {e.id: {"type": e.type, "state": pb.Execution.State.Name(e.last_known_state),
                              "properties": _props(e)} for e in executions},
        "events": sorted([e.artifact_id, e.execution_id, pb.Event.Type.Name(e.type),
                          e.path.steps[0].key if e.path.steps else ""] for e in events),
        "contexts": contexts,
        "artifact_types": {t.name: {k: pb.PropertyType.Name(v) for k, v in t.properties.items()}
                           for t in store.get_artifact_types()},
        "walks": {f"{kind} {node.id} {name}": _subgraph(store, kind, node.id, way)
                  for kind, nodes in (("artifact", artifacts[:walks]), ("execution", executions[:walks]))
                  for node in nodes for name, way in (("upstream", up), ("downstream", down))},
    }


def main(kind: str, path: str) -> None:
    store = open_raw(path)
    BUILDERS[kind](store)
    json.dump(facts(store, walks=3 if kind == "fanout" else 1000), sys.stdout)


if __name__ == "__main__":
    main(*sys.argv[1:])
