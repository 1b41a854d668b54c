"""MLMD's schema version 10, as ml-metadata 1.14 to 1.17 create it, for the native backend.

Each dialect holds MLMD's own statements for its engine (`Db.ddl`, from
util/metadata_source_query_config.cc in google/ml-metadata: on SQLite the text ml-metadata
1.17 leaves in `sqlite_master`, so that a store made here is the same file a store made by
ml-metadata is). A new store also gets what MLMD writes when it makes one: its schema version
in MLMDEnv and the nine system types (`mlmd.Dataset`, ...) that `base_type` points at through
ParentType. tests/test_native_schema.py compares each with stores ml-metadata makes.
"""

from __future__ import annotations

from typing import Dict, Tuple

from mlmd_exercise.store.native.sql import Db
from mlmd_exercise.store.tables import SCHEMA_VERSION

__all__ = ["SYSTEM_TYPES", "BASE_TYPES", "create_schema"]

# The system types MLMD stores in every new store, in its order (type_kind: 1 artifact,
# 0 execution), and the base_type each stands for (ArtifactType/ExecutionType's
# SystemDefinedBaseType names).
SYSTEM_TYPES: Tuple[Tuple[str, int], ...] = (
    ("mlmd.Dataset", 1), ("mlmd.Model", 1), ("mlmd.Metrics", 1), ("mlmd.Statistics", 1),
    ("mlmd.Train", 0), ("mlmd.Transform", 0), ("mlmd.Process", 0), ("mlmd.Evaluate", 0), ("mlmd.Deploy", 0),
)
BASE_TYPES: Dict[str, str] = {name: name[len("mlmd."):].upper() for name, _ in SYSTEM_TYPES}


def create_schema(db: Db) -> None:
    """Creates MLMD's tables, its system types and its schema version row, inside the
    caller's transaction: the dialect's DDL, the types, what the dialect makes after them (on
    MySQL, whose CREATEs commit at once, MLMDEnv: a creator killed half-way leaves no store
    that claims to be whole), then the version."""
    for statement in db.ddl:
        db.run(statement)
    for name, kind in SYSTEM_TYPES:
        db.run("INSERT INTO Type(name, type_kind, version, description, external_id) VALUES(?, ?, NULL, NULL, NULL)",
               name, kind)
    for statement in db.ddl_after_types:
        db.run(statement)
    db.run("INSERT INTO MLMDEnv(schema_version) VALUES(?)", SCHEMA_VERSION)
