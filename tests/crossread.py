"""One side of tests/test_native_crossread.py, run by another Python in a subprocess:

    python tests/crossread.py write|read STORE BACKEND

`write` records everything `native_compare.write_everything` writes (with `mlmd`, then also
what only other programs write through raw ml-metadata: a parent type, external ids, a
packed proto) into a new store; `read` reads a store. Both print the whole store
(`native_compare.snapshot`, times included) as one line of JSON, so that two Pythons,
two backends, can be compared value by value.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import mlmd_exercise as mx  # noqa: E402
from native_compare import snapshot, write_everything  # noqa: E402


def _foreign(location: str) -> None:
    """What TFX or another MLMD client writes and this package never does."""
    from raw_mlmd import pb, raw_mlmd

    mlmd = raw_mlmd(location)
    deployer = pb.ExecutionType(name="Deployer", base_type=pb.ExecutionType.DEPLOY, version="v1",
                                description="d")
    deployer.properties["x"] = pb.STRING
    deployer_id = mlmd.put_execution_type(deployer)
    model = pb.Artifact(type_id=mlmd.get_artifact_type("DataSet").id, uri="/p", external_id="ext-1",
                        state=pb.Artifact.PENDING)
    model.custom_properties["pr"].proto_value.Pack(pb.Execution(name="packed"))
    model.custom_properties["st"].struct_value.update({"k": [1, "two"]})
    [model_id] = mlmd.put_artifacts([model])
    event = pb.Event(type=pb.Event.OUTPUT)
    event.path.steps.add().index = 4
    event.path.steps.add().key = "deep"
    run = pb.Execution(type_id=deployer_id, name="by-mlmd", external_id="ext-run")
    run.properties["x"].string_value = "y"
    experiment = mlmd.get_context_type("Experiment").id
    mlmd.put_execution(run, [(mlmd.get_artifacts_by_id([model_id])[0], event)],
                       [pb.Context(type_id=experiment, name="by-mlmd", external_id="ext-ctx")])


def _plain(value):
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, enum.Enum):
        return value.name
    if isinstance(value, dict):
        return {str(_plain(k)): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def main(action: str, location: str, backend: str) -> None:
    store = mx.open_store(location, create=action == "write", backend=backend)
    if action == "write":
        write_everything(store.backend)
        if backend == "mlmd":
            _foreign(location)
    whole = snapshot(store.backend)
    try:
        from importlib.metadata import version

        mlmd: object = version("ml-metadata")
    except Exception:  # not installed
        mlmd = None
    print(json.dumps({"python": sys.version.split()[0], "backend": store.backend.name, "ml_metadata": mlmd,
                      "store": _plain(whole)}, sort_keys=True))


if __name__ == "__main__":
    main(*sys.argv[1:])
