"""The exercise's own database, read as runs to import into an MLMD store.

The exercise this project comes from keeps its metadata in three SQLAlchemy
tables of its own:

    artifacts(id, type, uri, version, name, split)
    executions(id, type, state)          state: 'RUNNING', 'COMPLETED', ...
    events(id, artifact_id, execution_id, type)   type: 'INPUT' or 'OUTPUT'

`read_exercise` turns them into `bulk.RunSpec`s: one run per execution, its
artifacts by the exercise's ids (an artifact one run wrote and the next read is
one artifact). Each run is named after the database file and its id, so that
importing the same file again records nothing twice. The file is only read.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Tuple

from mlmd_exercise.write.bulk import ArtifactSpec, RunSpec
from mlmd_exercise.errors import MlmdExerciseError
from mlmd_exercise.records import ExecutionState, PropertyValue

__all__ = ["ExerciseRuns", "read_exercise", "state_of"]

_COLUMNS = {
    "artifacts": {"id", "type", "uri"},
    "executions": {"id", "type", "state"},
    "events": {"artifact_id", "execution_id", "type"},
}
# The exercise writes 'COMPLETED'; MLMD calls it COMPLETE.
_STATES = {"COMPLETED": "COMPLETE", "CANCELLED": "CANCELED", "SUCCEEDED": "COMPLETE"}
_ROLES = {"DataSet": "examples", "SavedModel": "model"}  # the roles our own runs use


@dataclass(frozen=True)
class ExerciseRuns:
    runs: Tuple[RunSpec, ...]
    unused_artifacts: int  # artifacts no event joins to a run: not imported
    bad_events: int  # events of another type than INPUT/OUTPUT, or naming a missing row


def state_of(text) -> str:
    """The MLMD state of an exercise state: COMPLETED -> COMPLETE; unknown -> UNKNOWN."""
    name = str(text or "").strip().upper()
    name = _STATES.get(name, name)
    return name if name in {s.value for s in ExecutionState} else ExecutionState.UNKNOWN.value


def _rows(con: sqlite3.Connection, table: str, path: str) -> List[sqlite3.Row]:
    columns = {r[1] for r in con.execute(f"PRAGMA table_info({table})")}
    if not columns:
        raise MlmdExerciseError(f"'{path}' is not the exercise's database: it has no table '{table}'")
    missing = sorted(_COLUMNS[table] - columns)
    if missing:
        raise MlmdExerciseError(f"'{path}' is not the exercise's database: table '{table}' "
                                f"has no column '{missing[0]}'")
    return con.execute(f"SELECT * FROM {table} ORDER BY id").fetchall()


def read_exercise(path) -> ExerciseRuns:
    """The runs recorded in the exercise's SQLite database at `path`, read-only.

    Raises:
        MlmdExerciseError: the file is missing, not SQLite, or not in the exercise's shape.
    """
    shown = str(path)
    file = Path(path)
    if not file.is_file():
        raise MlmdExerciseError(f"'{shown}' does not exist" if not file.exists() else f"'{shown}' is not a file")
    with file.open("rb") as f:
        if f.read(16) != b"SQLite format 3\x00":
            raise MlmdExerciseError(f"'{shown}' is not an SQLite database")
    try:
        con = sqlite3.connect(f"{file.resolve().as_uri()}?mode=ro", uri=True)
        try:
            con.row_factory = sqlite3.Row
            artifacts, executions, events = (_rows(con, t, shown) for t in ("artifacts", "executions", "events"))
        finally:
            con.close()
    except sqlite3.DatabaseError as e:
        raise MlmdExerciseError(f"cannot read '{shown}': {e}") from None

    source = file.resolve()
    specs: Dict[int, ArtifactSpec] = {}
    for row in artifacts:
        keys = row.keys()
        properties: Dict[str, PropertyValue] = {
            k: row[k] for k in ("name", "split") if k in keys and isinstance(row[k], str)}
        if "version" in keys and isinstance(row["version"], int):
            properties["exercise_version"] = row["version"]
        properties["exercise_id"] = row["id"]
        specs[row["id"]] = ArtifactSpec(str(row["uri"] or ""), type=str(row["type"] or "DataSet"),
                                        properties=properties)
    sides: Dict[int, Tuple[dict, dict]] = {row["id"]: ({}, {}) for row in executions}
    used = set()
    bad = 0
    for event in events:
        kind = str(event["type"] or "").upper()
        if kind not in ("INPUT", "OUTPUT") or event["artifact_id"] not in specs \
                or event["execution_id"] not in sides:
            bad += 1
            continue
        spec = specs[event["artifact_id"]]
        side = sides[event["execution_id"]][0 if kind == "INPUT" else 1]
        role = base = _ROLES.get(spec.type, spec.type.lower() or "artifact")
        n = 1
        while role in side and side[role] is not spec:
            n += 1
            role = f"{base}-{n}"
        side[role] = spec
        used.add(event["artifact_id"])
    runs = []
    for row in executions:
        inputs, outputs = sides[row["id"]]
        original = str(row["state"] or "")
        runs.append(RunSpec(type=str(row["type"] or "Trainer"), inputs=inputs, outputs=outputs,
                            state=state_of(original),
                            params={"exercise_id": row["id"], "exercise_state": original,
                                    "exercise_db": str(source)},
                            name=f"exercise:{source}#{row['id']}"))
    return ExerciseRuns(tuple(runs), len(set(specs) - used), bad)
