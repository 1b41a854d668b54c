"""MLMD's schema version 10, as ml-metadata 1.14 to 1.17 create it, for the native backend.

The statements are MLMD's own (util/metadata_source_query_config.cc in google/ml-metadata): on
SQLite they are the text ml-metadata 1.17 leaves in `sqlite_master`, so that a store made
here is the same file a store made by ml-metadata is; on PostgreSQL, the
`kPostgreSQLMetadataSourceQueryConfig` tables and secondary indices; on MySQL, the
`kMySQLMetadataSourceQueryConfig` ones (with `kBaseQueryConfig`'s for the tables it does
not restate). A new store also gets
what MLMD writes when it makes one: its schema version in MLMDEnv and the nine system
types (`mlmd.Dataset`, ...) that `base_type` points at through ParentType.
tests/test_native_schema.py compares each with stores ml-metadata makes.
"""

from __future__ import annotations

from typing import Callable, Dict, List, Tuple

from mlmd_exercise.store.tables import SCHEMA_VERSION

__all__ = ["SCHEMA_VERSION", "SQLITE_DDL", "POSTGRES_DDL", "MYSQL_DDL", "SYSTEM_TYPES", "BASE_TYPES",
           "create_schema"]


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

_PG_PROPERTY_TABLE = (
    " CREATE TABLE IF NOT EXISTS {table} ( "
    "   {owner} INT NOT NULL, "
    "   name VARCHAR(255) NOT NULL, "
    "   is_custom_property BOOLEAN NOT NULL, "
    "   int_value INT, "
    "   double_value DOUBLE PRECISION, "
    "   string_value TEXT, "
    "   byte_value BYTEA, "
    "   proto_value BYTEA, "
    "   bool_value BOOLEAN, "
    " PRIMARY KEY ({owner}, name, is_custom_property)); ")
_PG_NODE_TIMES = ("   create_time_since_epoch BIGINT NOT NULL DEFAULT 0, "
                  "   last_update_time_since_epoch BIGINT NOT NULL DEFAULT 0, ")

# MLMD's PostgreSQL statements, in the order it runs them.
POSTGRES_DDL: Tuple[str, ...] = (
    " CREATE TABLE IF NOT EXISTS Type( "
    "   id SERIAL PRIMARY KEY, "
    "   name VARCHAR(255) NOT NULL, "
    "   version VARCHAR(255), "
    "   type_kind SMALLINT NOT NULL, "
    "   description TEXT, "
    "   input_type TEXT, "
    "   output_type TEXT, "
    "   external_id VARCHAR(255) UNIQUE"
    " ); ",
    " CREATE TABLE IF NOT EXISTS ParentType ( "
    "   type_id INT NOT NULL, "
    "   parent_type_id INT NOT NULL, "
    " PRIMARY KEY (type_id, parent_type_id)); ",
    " CREATE TABLE IF NOT EXISTS TypeProperty ( "
    "   type_id INT NOT NULL, "
    "   name VARCHAR(255) NOT NULL, "
    "   data_type INT NULL, "
    " PRIMARY KEY (type_id, name)); ",
    " CREATE TABLE IF NOT EXISTS Artifact ( "
    "   id SERIAL PRIMARY KEY, "
    "   type_id INT NOT NULL, "
    "   uri TEXT, "
    "   state INT, "
    "   name VARCHAR(255), "
    "   external_id VARCHAR(255) UNIQUE, "
    + _PG_NODE_TIMES +
    "   CONSTRAINT UniqueArtifactTypeName UNIQUE(type_id, name) "
    " ); ",
    _PG_PROPERTY_TABLE.format(table="ArtifactProperty", owner="artifact_id"),
    " CREATE TABLE IF NOT EXISTS Execution ( "
    "   id SERIAL PRIMARY KEY, "
    "   type_id INT NOT NULL, "
    "   last_known_state INT, "
    "   name VARCHAR(255), "
    "   external_id VARCHAR(255) UNIQUE, "
    + _PG_NODE_TIMES +
    "   CONSTRAINT UniqueExecutionTypeName UNIQUE(type_id, name) "
    " ); ",
    _PG_PROPERTY_TABLE.format(table="ExecutionProperty", owner="execution_id"),
    " CREATE TABLE IF NOT EXISTS Context ( "
    "   id SERIAL PRIMARY KEY, "
    "   type_id INT NOT NULL, "
    "   name VARCHAR(255) NOT NULL, "
    "   external_id VARCHAR(255) UNIQUE, "
    + _PG_NODE_TIMES +
    "   UNIQUE(type_id, name) "
    " ); ",
    _PG_PROPERTY_TABLE.format(table="ContextProperty", owner="context_id"),
    " CREATE TABLE IF NOT EXISTS ParentContext ( "
    "   context_id INT NOT NULL, "
    "   parent_context_id INT NOT NULL, "
    " PRIMARY KEY (context_id, parent_context_id)); ",
    " CREATE TABLE IF NOT EXISTS Event ( "
    "   id SERIAL PRIMARY KEY, "
    "   artifact_id INT NOT NULL, "
    "   execution_id INT NOT NULL, "
    "   type INT NOT NULL, "
    "   milliseconds_since_epoch BIGINT, "
    "   CONSTRAINT UniqueEvent UNIQUE( "
    "     artifact_id, execution_id, type) "
    " ); ",
    " CREATE TABLE IF NOT EXISTS EventPath ( "
    "   event_id INT NOT NULL, "
    "   is_index_step BOOLEAN NOT NULL, "
    "   step_index INT, "
    "   step_key TEXT "
    " ); ",
    " CREATE TABLE IF NOT EXISTS Association ( "
    "   id SERIAL PRIMARY KEY, "
    "   context_id INT NOT NULL, "
    "   execution_id INT NOT NULL, "
    "   UNIQUE(context_id, execution_id) "
    " ); ",
    " CREATE TABLE IF NOT EXISTS Attribution ( "
    "   id SERIAL PRIMARY KEY, "
    "   context_id INT NOT NULL, "
    "   artifact_id INT NOT NULL, "
    "   UNIQUE(context_id, artifact_id) "
    " ); ",
    " CREATE TABLE IF NOT EXISTS MLMDEnv ( "
    "   schema_version INT PRIMARY KEY "
    " ); ",
    # MLMD's secondary indices.
    " CREATE INDEX IF NOT EXISTS idx_artifact_uri ON Artifact (uri); ",
    " CREATE INDEX IF NOT EXISTS idx_artifact_create_time_since_epoch ON Artifact (create_time_since_epoch); ",
    " CREATE INDEX IF NOT EXISTS idx_artifact_last_update_time_since_epoch "
    " ON Artifact (last_update_time_since_epoch); ",
    " CREATE INDEX IF NOT EXISTS idx_event_execution_id ON Event (execution_id); ",
    " CREATE INDEX IF NOT EXISTS idx_parentcontext_parent_context_id ON ParentContext (parent_context_id); ",
    " CREATE INDEX IF NOT EXISTS idx_type_name ON Type (name); ",
    " CREATE INDEX IF NOT EXISTS idx_execution_create_time_since_epoch ON Execution (create_time_since_epoch); ",
    " CREATE INDEX IF NOT EXISTS idx_execution_last_update_time_since_epoch "
    " ON Execution (last_update_time_since_epoch); ",
    " CREATE INDEX IF NOT EXISTS idx_context_create_time_since_epoch ON Context (create_time_since_epoch); ",
    " CREATE INDEX IF NOT EXISTS idx_context_last_update_time_since_epoch "
    " ON Context (last_update_time_since_epoch); ",
    " CREATE INDEX IF NOT EXISTS idx_eventpath_event_id ON EventPath (event_id); ",
) + tuple(
    f" CREATE INDEX IF NOT EXISTS idx_{node}_property_{kind} ON {table} (name, is_custom_property, {kind}_value); "
    for node, table in (("artifact", "ArtifactProperty"), ("execution", "ExecutionProperty"),
                        ("context", "ContextProperty"))
    for kind in ("int", "double", "string")
) + tuple(
    f" CREATE INDEX IF NOT EXISTS idx_{table.lower()}_external_id ON {table}(external_id); "
    for table in ("Type", "Artifact", "Execution", "Context")
)

_MY_PROPERTY_TABLE = (
    " CREATE TABLE IF NOT EXISTS `{table}` ( "
    "   `{owner}` INT NOT NULL, "
    "   `name` VARCHAR(255) NOT NULL, "
    "   `is_custom_property` TINYINT(1) NOT NULL, "
    "   `int_value` INT, "
    "   `double_value` DOUBLE, "
    "   `string_value` MEDIUMTEXT, "
    "   `byte_value` MEDIUMBLOB, "
    "   `proto_value` MEDIUMBLOB, "
    "   `bool_value` BOOLEAN, "
    " PRIMARY KEY (`{owner}`, `name`, `is_custom_property`)); ")
_MY_NODE_TIMES = ("   `create_time_since_epoch` BIGINT NOT NULL DEFAULT 0, "
                  "   `last_update_time_since_epoch` BIGINT NOT NULL DEFAULT 0, ")
_MY_TIME_INDICES = ("  ADD INDEX `idx_{node}_create_time_since_epoch` "
                    "             (`create_time_since_epoch`), "
                    "  ADD INDEX `idx_{node}_last_update_time_since_epoch` "
                    "             (`last_update_time_since_epoch`); ")

# MLMD's MySQL statements, in the order it runs them, but for MLMDEnv: MySQL commits each
# CREATE at once, so the table that marks a database as an MLMD store is made last
# (`MYSQL_ENV`), and a creator killed half-way leaves no store that claims to be whole.
MYSQL_DDL: Tuple[str, ...] = (
    " CREATE TABLE IF NOT EXISTS `Type` ( "
    "   `id` INT PRIMARY KEY AUTO_INCREMENT, "
    "   `name` VARCHAR(255) NOT NULL, "
    "   `version` VARCHAR(255), "
    "   `type_kind` TINYINT(1) NOT NULL, "
    "   `description` TEXT, "
    "   `input_type` TEXT, "
    "   `output_type` TEXT, "
    "   `external_id` VARCHAR(255) UNIQUE "
    " ); ",
    " CREATE TABLE IF NOT EXISTS `ParentType` ( "
    "   `type_id` INT NOT NULL, "
    "   `parent_type_id` INT NOT NULL, "
    " PRIMARY KEY (`type_id`, `parent_type_id`)); ",
    " CREATE TABLE IF NOT EXISTS `TypeProperty` ( "
    "   `type_id` INT NOT NULL, "
    "   `name` VARCHAR(255) NOT NULL, "
    "   `data_type` INT NULL, "
    " PRIMARY KEY (`type_id`, `name`)); ",
    " CREATE TABLE IF NOT EXISTS `Artifact` ( "
    "   `id` INTEGER PRIMARY KEY AUTO_INCREMENT, "
    "   `type_id` INT NOT NULL, "
    "   `uri` TEXT, "
    "   `state` INT, "
    "   `name` VARCHAR(255), "
    "   `external_id` VARCHAR(255) UNIQUE, "
    + _MY_NODE_TIMES +
    "   CONSTRAINT UniqueArtifactTypeName UNIQUE(`type_id`, `name`) "
    " ); ",
    _MY_PROPERTY_TABLE.format(table="ArtifactProperty", owner="artifact_id"),
    " CREATE TABLE IF NOT EXISTS `Execution` ( "
    "   `id` INTEGER PRIMARY KEY AUTO_INCREMENT, "
    "   `type_id` INT NOT NULL, "
    "   `last_known_state` INT, "
    "   `name` VARCHAR(255), "
    "   `external_id` VARCHAR(255) UNIQUE, "
    + _MY_NODE_TIMES +
    "   CONSTRAINT UniqueExecutionTypeName UNIQUE(`type_id`, `name`) "
    " ); ",
    _MY_PROPERTY_TABLE.format(table="ExecutionProperty", owner="execution_id"),
    " CREATE TABLE IF NOT EXISTS `Context` ( "
    "   `id` INTEGER PRIMARY KEY AUTO_INCREMENT, "
    "   `type_id` INT NOT NULL, "
    "   `name` VARCHAR(255) NOT NULL, "
    "   `external_id` VARCHAR(255) UNIQUE, "
    + _MY_NODE_TIMES +
    "   UNIQUE(`type_id`, `name`) "
    " ); ",
    _MY_PROPERTY_TABLE.format(table="ContextProperty", owner="context_id"),
    " CREATE TABLE IF NOT EXISTS `ParentContext` ( "
    "   `context_id` INT NOT NULL, "
    "   `parent_context_id` INT NOT NULL, "
    " PRIMARY KEY (`context_id`, `parent_context_id`)); ",
    " CREATE TABLE IF NOT EXISTS `Event` ( "
    "   `id` INTEGER PRIMARY KEY AUTO_INCREMENT, "
    "   `artifact_id` INT NOT NULL, "
    "   `execution_id` INT NOT NULL, "
    "   `type` INT NOT NULL, "
    "   `milliseconds_since_epoch` BIGINT, "
    "   CONSTRAINT UniqueEvent UNIQUE( "
    "     `artifact_id`, `execution_id`, `type`) "
    " ); ",
    " CREATE TABLE IF NOT EXISTS `EventPath` ( "
    "   `event_id` INT NOT NULL, "
    "   `is_index_step` TINYINT(1) NOT NULL, "
    "   `step_index` INT, "
    "   `step_key` TEXT "
    " ); ",
    " CREATE TABLE IF NOT EXISTS `Association` ( "
    "   `id` INTEGER PRIMARY KEY AUTO_INCREMENT, "
    "   `context_id` INT NOT NULL, "
    "   `execution_id` INT NOT NULL, "
    "   UNIQUE(`context_id`, `execution_id`) "
    " ); ",
    " CREATE TABLE IF NOT EXISTS `Attribution` ( "
    "   `id` INTEGER PRIMARY KEY AUTO_INCREMENT, "
    "   `context_id` INT NOT NULL, "
    "   `artifact_id` INT NOT NULL, "
    "   UNIQUE(`context_id`, `artifact_id`) "
    " ); ",
    # MLMD's secondary indices (MySQL indexes a prefix of a TEXT column only).
    " ALTER TABLE `Artifact` "
    "  ADD INDEX `idx_artifact_uri`(`uri`(255)), " + _MY_TIME_INDICES.format(node="artifact"),
    " ALTER TABLE `Event` "
    " ADD INDEX `idx_event_execution_id` (`execution_id`); ",
    " ALTER TABLE `ParentContext` "
    " ADD INDEX "
    "   `idx_parentcontext_parent_context_id` (`parent_context_id`); ",
    " ALTER TABLE `Type` "
    " ADD INDEX `idx_type_name` (`name`); ",
    " ALTER TABLE `Execution` " + _MY_TIME_INDICES.format(node="execution"),
    " ALTER TABLE `Context` " + _MY_TIME_INDICES.format(node="context"),
    " ALTER TABLE `EventPath` "
    "  ADD INDEX `idx_eventpath_event_id`(`event_id`); ",
) + tuple(
    f" ALTER TABLE `{table}` "
    f"  ADD INDEX `idx_{node}_property_{kind}`( "
    f"    `name`, `is_custom_property`, `{kind}_value`{'(255)' if kind == 'string' else ''}); "
    for node, table in (("artifact", "ArtifactProperty"), ("execution", "ExecutionProperty"),
                        ("context", "ContextProperty"))
    for kind in ("int", "double", "string")
) + tuple(
    f" ALTER TABLE `{table}` "
    f" ADD INDEX `idx_{table.lower()}_external_id` (`external_id`);"
    for table in ("Type", "Artifact", "Execution", "Context")
)
MYSQL_ENV = (" CREATE TABLE IF NOT EXISTS `MLMDEnv` ( "
             "   `schema_version` INTEGER PRIMARY KEY "
             " ); ")
_DDL = {"sqlite": SQLITE_DDL, "postgresql": POSTGRES_DDL, "mysql": MYSQL_DDL}

# The system types MLMD stores in every new store, in its order (type_kind: 1 artifact,
# 0 execution), and the base_type each stands for (ArtifactType/ExecutionType's
# SystemDefinedBaseType names).
SYSTEM_TYPES: Tuple[Tuple[str, int], ...] = (
    ("mlmd.Dataset", 1), ("mlmd.Model", 1), ("mlmd.Metrics", 1), ("mlmd.Statistics", 1),
    ("mlmd.Train", 0), ("mlmd.Transform", 0), ("mlmd.Process", 0), ("mlmd.Evaluate", 0), ("mlmd.Deploy", 0),
)
BASE_TYPES: Dict[str, str] = {name: name[len("mlmd."):].upper() for name, _ in SYSTEM_TYPES}


def create_schema(run: Callable[..., List[tuple]], dialect: str) -> None:
    """Creates MLMD's tables, its system types and its schema version row, inside the
    caller's transaction (on MySQL, whose CREATEs commit at once, MLMDEnv last).
    `run(sql, *values)` runs one statement with `?` placeholders; `dialect` is `Db.name`."""
    for statement in _DDL[dialect]:
        run(statement)
    for name, kind in SYSTEM_TYPES:
        run("INSERT INTO Type(name, type_kind, version, description, external_id) VALUES(?, ?, NULL, NULL, NULL)",
            name, kind)
    if dialect == "mysql":
        run(MYSQL_ENV)
    run("INSERT INTO MLMDEnv(schema_version) VALUES(?)", SCHEMA_VERSION)
