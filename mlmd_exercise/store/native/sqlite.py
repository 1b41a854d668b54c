"""The native backend's SQLite dialect: Python's sqlite3, and what SQLite does its own way.

Ids from AUTOINCREMENT and last_insert_rowid (one writer holds BEGIN IMMEDIATE), an id list as
one JSON parameter, rows in the order they were stored by rowid, case-insensitive LIKE for
ASCII, proto values as base64 text, MLMD's DDL verbatim, and sqlite3's errors by their result
codes.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any, Callable, List, Optional, Sequence, Tuple

from mlmd_exercise.store.native.errors import damaged, disk_full, refused, taken, unclear
from mlmd_exercise.store.native.sql import Db, Row, insert_sql

__all__ = ["SqliteDb", "SQLITE_DDL"]

# SQLite's extended result codes for a broken UNIQUE or PRIMARY KEY constraint; its primary
# code after which a write's outcome is unknown (an I/O error); and those after which the
# write surely was not recorded: the disk was full, or the file is damaged (SQLite stops the
# transaction before its commit record; ours then rolls it back).
_TAKEN = (2067, 1555)
_UNCLEAR = (10,)
_FULL, _CORRUPT = 13, 11

# Verbatim from a store ml-metadata 1.17.1 made (sqlite_master.sql, in its order).
SQLITE_DDL: Tuple[str, ...] = (
    ('CREATE TABLE `Type` (    `id` INTEGER PRIMARY KEY AUTOINCREMENT,'
     '    `name` VARCHAR(255) NOT NULL,    `version` VARCHAR(255),'
     '    `type_kind` TINYINT(1) NOT NULL,    `description` TEXT,'
     '    `input_type` TEXT,    `output_type` TEXT,'
     '    `external_id` VARCHAR(255) UNIQUE )'),
    ('CREATE TABLE `TypeProperty` (    `type_id` INT NOT NULL,'
     '    `name` VARCHAR(255) NOT NULL,'
     '    `data_type` INT NULL,  PRIMARY KEY (`type_id`, `name`))'),
    ('CREATE TABLE `ParentType` (    `type_id` INT NOT NULL,'
     '    `parent_type_id` INT NOT NULL,  PRIMARY KEY (`type_id`, `parent_type_id`))'),
    ('CREATE TABLE `Artifact` (    `id` INTEGER PRIMARY KEY AUTOINCREMENT,'
     '    `type_id` INT NOT NULL,    `uri` TEXT,    `state` INT,'
     '    `name` VARCHAR(255),    `external_id` VARCHAR(255) UNIQUE,'
     '    `create_time_since_epoch` INT NOT NULL DEFAULT 0,'
     '    `last_update_time_since_epoch` INT NOT NULL DEFAULT 0,'
     '    UNIQUE(`type_id`, `name`)  )'),
    ('CREATE TABLE `ArtifactProperty` (    `artifact_id` INT NOT NULL,'
     '    `name` VARCHAR(255) NOT NULL,    `is_custom_property` TINYINT(1) NOT NULL,'
     '    `int_value` INT,    `double_value` DOUBLE,    `string_value` TEXT,'
     '    `byte_value` BLOB,    `proto_value` BLOB,'
     '    `bool_value` BOOLEAN,  PRIMARY KEY (`artifact_id`, `name`, `is_custom_property`))'),
    ('CREATE TABLE `Execution` (    `id` INTEGER PRIMARY KEY AUTOINCREMENT,'
     '    `type_id` INT NOT NULL,    `last_known_state` INT,    `name` VARCHAR(255),'
     '    `external_id` VARCHAR(255) UNIQUE,'
     '    `create_time_since_epoch` INT NOT NULL DEFAULT 0,'
     '    `last_update_time_since_epoch` INT NOT NULL DEFAULT 0,'
     '    UNIQUE(`type_id`, `name`)  )'),
    ('CREATE TABLE `ExecutionProperty` (    `execution_id` INT NOT NULL,'
     '    `name` VARCHAR(255) NOT NULL,    `is_custom_property` TINYINT(1) NOT NULL,'
     '    `int_value` INT,    `double_value` DOUBLE,    `string_value` TEXT,'
     '    `byte_value` BLOB,    `proto_value` BLOB,'
     '    `bool_value` BOOLEAN,  PRIMARY KEY (`execution_id`, `name`, `is_custom_property`))'),
    ('CREATE TABLE `Event` (    `id` INTEGER PRIMARY KEY AUTOINCREMENT,'
     '    `artifact_id` INT NOT NULL,    `execution_id` INT NOT NULL,'
     '    `type` INT NOT NULL,    `milliseconds_since_epoch` INT,'
     '    UNIQUE(`artifact_id`, `execution_id`, `type`)  )'),
    ('CREATE TABLE `EventPath` (    `event_id` INT NOT NULL,'
     '    `is_index_step` TINYINT(1) NOT NULL,    `step_index` INT,'
     '    `step_key` TEXT  )'),
    ('CREATE TABLE `MLMDEnv` (    `schema_version` INTEGER PRIMARY KEY  )'),
    ('CREATE TABLE `Context` (    `id` INTEGER PRIMARY KEY AUTOINCREMENT,'
     '    `type_id` INT NOT NULL,    `name` VARCHAR(255) NOT NULL,'
     '    `external_id` VARCHAR(255) UNIQUE,'
     '    `create_time_since_epoch` INT NOT NULL DEFAULT 0,'
     '    `last_update_time_since_epoch` INT NOT NULL DEFAULT 0,'
     '    UNIQUE(`type_id`, `name`)  )'),
    ('CREATE TABLE `ContextProperty` (    `context_id` INT NOT NULL,'
     '    `name` VARCHAR(255) NOT NULL,    `is_custom_property` TINYINT(1) NOT NULL,'
     '    `int_value` INT,    `double_value` DOUBLE,    `string_value` TEXT,'
     '    `byte_value` BLOB,    `proto_value` BLOB,'
     '    `bool_value` BOOLEAN,  PRIMARY KEY (`context_id`, `name`, `is_custom_property`))'),
    ('CREATE TABLE `ParentContext` (    `context_id` INT NOT NULL,'
     '    `parent_context_id` INT NOT NULL,  PRIMARY KEY (`context_id`, `parent_context_id`))'),
    ('CREATE TABLE `Association` (    `id` INTEGER PRIMARY KEY AUTOINCREMENT,'
     '    `context_id` INT NOT NULL,    `execution_id` INT NOT NULL,'
     '    UNIQUE(`context_id`, `execution_id`)  )'),
    ('CREATE TABLE `Attribution` (    `id` INTEGER PRIMARY KEY AUTOINCREMENT,'
     '    `context_id` INT NOT NULL,    `artifact_id` INT NOT NULL,'
     '    UNIQUE(`context_id`, `artifact_id`)  )'),
    ('CREATE INDEX `idx_artifact_uri`  ON `Artifact`(`uri`)'),
    ('CREATE INDEX `idx_artifact_create_time_since_epoch`  ON `Artifact`(`create_time_since_epoch`)'),
    ('CREATE INDEX `idx_artifact_last_update_time_since_epoch`  ON `Artifact`(`last_update_time_since_epoch`)'),
    ('CREATE INDEX `idx_event_execution_id`  ON `Event`(`execution_id`)'),
    ('CREATE INDEX `idx_parentcontext_parent_context_id`  ON `ParentContext`(`parent_context_id`)'),
    ('CREATE INDEX `idx_type_name`  ON `Type`(`name`)'),
    ('CREATE INDEX `idx_execution_create_time_since_epoch`  ON `Execution`(`create_time_since_epoch`)'),
    ('CREATE INDEX `idx_execution_last_update_time_since_epoch`  ON `Execution`(`last_update_time_since_epoch`)'),
    ('CREATE INDEX `idx_context_create_time_since_epoch`  ON `Context`(`create_time_since_epoch`)'),
    ('CREATE INDEX `idx_context_last_update_time_since_epoch`  ON `Context`(`last_update_time_since_epoch`)'),
    ('CREATE INDEX `idx_eventpath_event_id`  ON `EventPath`(`event_id`)'),
    ('CREATE INDEX `idx_artifact_property_int`  ON `ArtifactProperty`(`name`, `is_custom_property`, `int_value`)  WHERE `int_value` IS NOT NULL'),
    ('CREATE INDEX `idx_artifact_property_double`  ON `ArtifactProperty`(`name`, `is_custom_property`, `double_value`)  WHERE `double_value` IS NOT NULL'),
    ('CREATE INDEX `idx_artifact_property_string`  ON `ArtifactProperty`(`name`, `is_custom_property`, `string_value`)  WHERE `string_value` IS NOT NULL'),
    ('CREATE INDEX `idx_execution_property_int`  ON `ExecutionProperty`(`name`, `is_custom_property`, `int_value`)  WHERE `int_value` IS NOT NULL'),
    ('CREATE INDEX `idx_execution_property_double`  ON `ExecutionProperty`(`name`, `is_custom_property`, `double_value`)  WHERE `double_value` IS NOT NULL'),
    ('CREATE INDEX `idx_execution_property_string`  ON `ExecutionProperty`(`name`, `is_custom_property`, `string_value`)  WHERE `string_value` IS NOT NULL'),
    ('CREATE INDEX `idx_context_property_int`  ON `ContextProperty`(`name`, `is_custom_property`, `int_value`)  WHERE `int_value` IS NOT NULL'),
    ('CREATE INDEX `idx_context_property_double`  ON `ContextProperty`(`name`, `is_custom_property`, `double_value`)  WHERE `double_value` IS NOT NULL'),
    ('CREATE INDEX `idx_context_property_string`  ON `ContextProperty`(`name`, `is_custom_property`, `string_value`)  WHERE `string_value` IS NOT NULL'),
    ('CREATE INDEX `idx_type_external_id`  ON `Type`(`external_id`)'),
    ('CREATE INDEX `idx_artifact_external_id`  ON `Artifact`(`external_id`)'),
    ('CREATE INDEX `idx_execution_external_id`  ON `Execution`(`external_id`)'),
    ('CREATE INDEX `idx_context_external_id`  ON `Context`(`external_id`)'),
)



class SqliteDb(Db):
    """Python's sqlite3, in autocommit mode: transactions are ours (BEGIN IMMEDIATE)."""

    name = "sqlite"
    title = "SQLite"
    row_order = "rowid"
    protos_in_base64 = True  # text in a BLOB column, as ml-metadata writes them
    typed_coalesce = True
    ddl = SQLITE_DDL

    def __init__(self, con: sqlite3.Connection, before_commit: Optional[Callable[[], None]] = None) -> None:
        """`before_commit` raises where a transaction must not be committed (it is rolled
        back then): the store's file deleted or replaced (store/sqlite.py's `FileWatch`)."""
        self.con = con
        self.before_commit = before_commit

    def run(self, sql: str, *values: Any) -> List[Row]:
        return self.con.execute(sql, values).fetchall()

    def insert(self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]],
               ids: bool = False, ignore: bool = False) -> List[int]:
        if not rows:
            return []
        self.con.executemany(insert_sql(table, columns, ignore), rows)
        if not ids:
            return []
        # AUTOINCREMENT ids of one writer's rows (BEGIN IMMEDIATE holds the write lock) follow
        # each other: the last one and the count give them all.
        last = self.con.execute("SELECT last_insert_rowid()").fetchone()[0]
        return list(range(last - len(rows) + 1, last + 1))

    def among(self, column: str, values: Sequence[Any]) -> Tuple[str, List[Any]]:
        return f"{column} IN (SELECT value FROM json_each(?))", [json.dumps(list(values))]

    def by_type(self, narrower: bool) -> str:
        # With a context too, SQLite (no statistics in an MLMD file) would pick the type's
        # index and sort every node of the type (0.35 s for the explorer's filtered page at
        # 200k runs); `+` keeps the type as a row test, so the context's members (or the
        # URIs, or the property index's nodes) lead (0.04 s).
        return "+n.type_id = ?" if narrower else "n.type_id = ?"

    def like(self, text: str) -> str:
        return f"%{text}%"  # SQLite's LIKE has no escape character unless asked

    def tables(self) -> List[str]:
        return [r[0] for r in self.run("SELECT name FROM sqlite_master WHERE type = 'table'")]

    def begin(self) -> None:
        self.run("BEGIN IMMEDIATE")

    def commit(self) -> None:
        if self.before_commit is not None:
            self.before_commit()
        self.run("COMMIT")

    def close(self) -> None:
        self.con.close()

    @classmethod
    def translated(cls, error: Exception, label: str, writing: bool, opening: bool) -> Optional[Exception]:
        if isinstance(error, sqlite3.IntegrityError):
            code = getattr(error, "sqlite_errorcode", None)  # Python 3.11 and later
            if code is None or code in _TAKEN:
                return taken(label)
            return refused(label, error, opening)
        if isinstance(error, sqlite3.Error):
            code = getattr(error, "sqlite_errorcode", None)
            primary = None if code is None else code & 0xFF
            if writing and (primary == _FULL or code is None and "disk is full" in str(error)):
                return disk_full(label)
            if primary == _CORRUPT or code is None and "malformed" in str(error):
                return damaged(label, writing)
            if writing and primary in _UNCLEAR:
                return unclear(label)
            return refused(label, error, opening)
        return None
