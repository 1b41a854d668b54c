"""Plain SQL over MLMD's tables (schema version 10) for what needs no node loaded.

Counting executions by state, finding interrupted runs and auditing a store read a few
columns over the whole store: MLMD's API would load every node. These queries were
checked against the schema that ml-metadata 1.14 to 1.17 create on SQLite and
PostgreSQL; `known_schema` says whether a store has it.

Each function takes `run(sql, *values)`: it runs one read-only query with `?`
placeholders and returns its rows (see `sqlite_runner` and the server Admins' `query`).
"""

from __future__ import annotations

from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Set, Tuple

from mlmd_exercise import process
from mlmd_exercise.environment import INPUTS
from mlmd_exercise.records import EVENT_TYPES, INPUT_EVENTS, ExecutionState

__all__ = ["SCHEMA_VERSION", "OUTPUT_EVENT_NAMES", "known_schema", "refuse_version", "named", "named_values",
           "count_by_state", "context_sizes", "contexts_named", "ids_named", "artifact_ids_at", "running_processes",
           "artifacts_without_events", "shared_outputs", "types_named_twice", "PROPERTY_TABLES",
           "unreadable_properties", "histories_without_runs", "runs_missing_inputs", "HISTORY_TYPE"]

Run = Callable[..., List[Tuple[Any, ...]]]
SCHEMA_VERSION = 10  # the MLMD schema (ml-metadata 1.14 to 1.17) this SQL was checked against
# Every kind of event that says an execution made an artifact, by name and by MLMD's number.
OUTPUT_EVENT_NAMES = ("DECLARED_OUTPUT", "OUTPUT", "INTERNAL_OUTPUT", "PENDING_OUTPUT")
_OUTPUTS = ", ".join(str(EVENT_TYPES.index(n)) for n in OUTPUT_EVENT_NAMES)
_INPUTS = ", ".join(str(EVENT_TYPES.index(n)) for n in INPUT_EVENTS)
_STATES = list(ExecutionState)  # in the proto's order: index = the number MLMD stores
_RUNNING = _STATES.index(ExecutionState.RUNNING)
_CONTEXT_KIND = 2  # Type.type_kind of context types (0 executions, 1 artifacts)


def known_schema(run: Run) -> bool:
    """Whether the store's schema is the one these queries were checked against."""
    return run("SELECT schema_version FROM MLMDEnv")[0][0] == SCHEMA_VERSION


def refuse_version(version: int, loc: object, upgrade: bool) -> None:
    """Refuses a store whose schema this package does not know, before MLMD opens it: a
    newer one always, an older one unless `upgrade` (MLMD then migrates it).

    Raises:
        StoreError: naming the store and both versions.
    """
    from mlmd_exercise.errors import StoreError

    if version > SCHEMA_VERSION:
        raise StoreError(f"store '{loc}' has MLMD schema version {version}, newer than this package's "
                         f"{SCHEMA_VERSION}: it was not changed; open it with the newer ml-metadata that wrote it")
    if version < SCHEMA_VERSION and not upgrade:
        raise StoreError(
            f"store '{loc}' has MLMD schema version {version}, older than this MLMD's {SCHEMA_VERSION}: "
            f"it was not changed; upgrade it with --upgrade-schema (MLMD's enable_upgrade_migration), "
            f"after a backup")


def holds_mlmd(tables: Iterable[str], loc: object, create: bool, case_sensitive: bool = False) -> bool:
    """Whether a server database's tables are an MLMD store's (False: it is empty, and may be
    made one). MySQL keeps table names' case (`case_sensitive`); PostgreSQL folds it.

    Raises:
        StoreError: the database is another application's, or holds no store when one must
            be there (`create` false).
    """
    from mlmd_exercise.errors import StoreError

    names = sorted(tables)
    if ("MLMDEnv" in names) if case_sensitive else ("mlmdenv" in {t.lower() for t in names}):
        return True
    database = getattr(loc, "dbname", "")
    if names:
        raise StoreError(f"database '{database}' of store '{loc}' belongs to another application "
                         f"(it has table '{names[0]}'): refusing to add MLMD's tables to it")
    if not create:
        raise StoreError(f"database '{database}' of store '{loc}' holds no MLMD store")
    return False


def named(sql: str) -> str:
    """`sql` with its `?` parameters named in turn `:v0`, `:v1`, ... (see `named_values`)."""
    first, *rest = sql.split("?")
    return first + "".join(f":v{i}{part}" for i, part in enumerate(rest))


def named_values(values: Sequence[Any]) -> Dict[str, Any]:
    """The parameters of a statement `named` made, by name."""
    return {f"v{i}": v for i, v in enumerate(values)}


def count_by_state(run: Run, context_id: Optional[int] = None) -> Dict[ExecutionState, int]:
    """Executions by state, of the store or of one context; no state reads as UNKNOWN."""
    if context_id is None:
        rows = run("SELECT last_known_state, COUNT(*) FROM Execution GROUP BY last_known_state")
    else:
        rows = run("SELECT e.last_known_state, COUNT(*) FROM Execution e JOIN Association a "
                   "ON a.execution_id = e.id WHERE a.context_id = ? GROUP BY e.last_known_state",
                   int(context_id))
    counts: Dict[ExecutionState, int] = {}
    for state, n in rows:  # NULL (the guide's code sets no state) reads as UNKNOWN
        counts[_STATES[state or 0]] = counts.get(_STATES[state or 0], 0) + n
    return {s: counts[s] for s in ExecutionState if counts.get(s)}


def context_sizes(run: Run, ids: Iterable[int], chunk: int = 500) -> Dict[int, Tuple[int, int]]:
    """For each context, how many executions (associations) and artifacts (attributions) it
    holds: counted in SQL, where MLMD's API would load every node of a context (200,000 runs of
    one experiment took 922 MB and 7 minutes)."""
    found = {int(i): (0, 0) for i in ids}
    every = list(found)
    for first in range(0, len(every), chunk):
        part = every[first:first + chunk]
        marks = ", ".join("?" * len(part))
        for table, at in (("Association", 0), ("Attribution", 1)):
            for context_id, n in run(f"SELECT context_id, COUNT(*) FROM {table} WHERE context_id IN ({marks}) "
                                     "GROUP BY context_id", *part):
                pair = found[int(context_id)]
                found[int(context_id)] = (int(n), pair[1]) if at == 0 else (pair[0], int(n))
    return found


def contexts_named(run: Run, name: str) -> List[Tuple[int, str]]:
    """(id, type name) of every context called `name` (a parameter: the name is data)."""
    return [(i, t) for i, t in run("SELECT c.id, t.name FROM Context c JOIN Type t ON t.id = c.type_id "
                                   f"WHERE t.type_kind = {_CONTEXT_KIND} AND c.name = ?", name)]


_KINDS = {"execution": (0, "Execution"), "artifact": (1, "Artifact"), "context": (2, "Context")}


def ids_named(run: Run, kind: str, type_name: str, name: str) -> List[int]:
    """Ids of the nodes of `kind` ("artifact", "execution", "context") whose type and name are
    these (parameters: the names are data, whatever they hold)."""
    number, table = _KINDS[kind]
    return [int(i) for i, in run(f"SELECT n.id FROM {table} n JOIN Type t ON t.id = n.type_id "
                                 f"WHERE t.type_kind = {number} AND t.name = ? AND n.name = ? ORDER BY n.id",
                                 type_name, name)]


def artifact_ids_at(run: Run, uri: str) -> List[int]:
    """Ids of the artifacts at this URI (a parameter), in id order."""
    return [int(i) for i, in run("SELECT id FROM Artifact WHERE uri = ? ORDER BY id", uri)]


# Only the identity properties of RUNNING executions that name the host; a declared property
# wins over a custom one of the same name, as MLMD's records read them.
_IDENTITIES = (
    "SELECT p.execution_id, p.name, p.is_custom_property, p.int_value, p.double_value, "
    "p.string_value, p.bool_value FROM Execution e JOIN ExecutionProperty p ON p.execution_id = e.id "
    f"WHERE e.last_known_state = {_RUNNING} AND p.name IN ('{process.HOST}', '{process.PID}', "
    f"'{process.PID_START}') AND e.id IN (SELECT execution_id FROM ExecutionProperty "
    f"WHERE name = '{process.HOST}' AND string_value = ?)")


def _value(int_value, double_value, string_value, bool_value) -> object:
    """A property row's value as a record holds it (bool: SQLite says 0 or 1)."""
    for value in (int_value, double_value, string_value):
        if value is not None:
            return value
    return None if bool_value is None else bool(bool_value)


def _pick(name: str) -> str:
    # SQLite's COALESCE keeps each value's own type (int, float, text): one row per execution.
    return (f"(SELECT COALESCE(int_value, double_value, string_value, bool_value) FROM executionproperty "
            f"WHERE execution_id = e.id AND name = '{name}' ORDER BY is_custom_property LIMIT 1)")


# The same where COALESCE keeps each value's type (SQLite), one row per execution: (id, host, pid, pid_start).
_IDENTITIES_SQLITE = (
    f"SELECT id, host, pid, start FROM (SELECT e.id, {_pick(process.HOST)} AS host, {_pick(process.PID)} AS pid, "
    f"{_pick(process.PID_START)} AS start FROM execution e WHERE e.last_known_state = {_RUNNING}) "
    "WHERE host = ?")


def running_processes(run: Run, host: str, typed_coalesce: bool = False) -> List[Tuple[int, object, object, object]]:
    """(execution id, host, pid, pid start) of the RUNNING executions recorded on `host`.
    `typed_coalesce`: the database's COALESCE keeps each value's type (SQLite, `Db.typed_coalesce`),
    where one row per execution is several times faster."""
    if typed_coalesce:
        return sorted((int(i), h, pid, start) for i, h, pid, start in run(_IDENTITIES_SQLITE, host))
    found: Dict[int, Dict[str, Tuple[bool, object]]] = {}
    for execution_id, name, custom, *value in run(_IDENTITIES, host):
        props = found.setdefault(execution_id, {})
        if name not in props or props[name][0]:  # declared wins over custom
            props[name] = (bool(custom), _value(*value))
    def held(props: Dict[str, Tuple[bool, object]], key: str) -> object:
        return props.get(key, (False, None))[1]

    return [(i, held(props, process.HOST), held(props, process.PID), held(props, process.PID_START))
            for i, props in sorted(found.items())]


def artifacts_without_events(run: Run) -> List[Tuple[int, str, str]]:
    """(id, type name, uri) of every artifact no event joins to an execution, by id."""
    rows = run("SELECT a.id, t.name, a.uri FROM Artifact a LEFT JOIN Type t ON t.id = a.type_id "
               "WHERE NOT EXISTS (SELECT 1 FROM Event e WHERE e.artifact_id = a.id) ORDER BY a.id")
    return [(i, t or "", u or "") for i, t, u in rows]  # MLMD gives a missing name or URI as ""


# MLMD's Execution.State CACHED: a step TFX or Kubeflow did not run again, whose OUTPUT events
# re-publish the artifacts an earlier execution made. It is no second maker.
CACHED_STATE = 5


def shared_outputs(run: Run) -> List[Tuple[int, str, str, Tuple[int, ...]]]:
    """(id, type name, uri, producers) of every artifact more than one execution output, a
    CACHED execution's re-published outputs not counted."""
    made = (f"SELECT ev.artifact_id, ev.execution_id FROM Event ev JOIN Execution x ON x.id = ev.execution_id "
            f"WHERE ev.type IN ({_OUTPUTS}) AND COALESCE(x.last_known_state, 0) <> {CACHED_STATE}")
    rows = run("SELECT a.id, t.name, a.uri, m.execution_id FROM Artifact a LEFT JOIN Type t "
               f"ON t.id = a.type_id JOIN ({made}) m ON m.artifact_id = a.id "
               f"WHERE a.id IN (SELECT artifact_id FROM ({made}) made "
               "GROUP BY artifact_id HAVING COUNT(DISTINCT execution_id) > 1)")
    found: Dict[int, Tuple[str, str, Set[int]]] = {}
    for i, t, u, execution_id in rows:
        found.setdefault(i, (t or "", u or "", set()))[2].add(execution_id)
    return [(i, t, u, tuple(sorted(ids))) for i, (t, u, ids) in sorted(found.items())]


def types_named_twice(run: Run) -> List[Tuple[str, str, int]]:
    """(kind, name, how many) of each type name registered more than once; kind is
    "artifact", "execution" or "context"."""
    kinds = {1: "artifact", 0: "execution", 2: "context"}  # Type.type_kind
    rows = run("SELECT type_kind, name, COUNT(*) FROM Type GROUP BY type_kind, name HAVING COUNT(*) > 1")
    return [(kinds.get(k, str(k)), n, c) for k, n, c in rows]


# Each kind of node's property table and its owner column.
PROPERTY_TABLES = (("artifact", "Artifact", "ArtifactProperty", "artifact_id"),
                   ("execution", "Execution", "ExecutionProperty", "execution_id"),
                   ("context", "Context", "ContextProperty", "context_id"))
_VALUE_COLUMNS = ("int_value", "double_value", "string_value", "proto_value", "bool_value")
# The value column of each declared property type (TypeProperty.data_type): a struct is text.
_COLUMN_OF = {1: "int_value", 2: "double_value", 3: "string_value", 4: "string_value", 5: "proto_value",
              6: "bool_value"}
_TYPE_NAMES = {1: "INT", 2: "DOUBLE", 3: "STRING", 4: "STRUCT", 5: "PROTO", 6: "BOOLEAN"}
HISTORY_TYPE = "MetricHistory"  # schema.METRIC_HISTORY's name: its contexts hold metric histories


def unreadable_properties(run: Run) -> List[Tuple[str, int, str, bool, str]]:
    """(kind, node id, property name, is custom, what is wrong) of every property row that
    ml-metadata refuses to read, so that it refuses the whole store: a row with no value in
    any column, and a declared property whose value is not in its declared type's column."""
    found: List[Tuple[str, int, str, bool, str]] = []
    empty = " AND ".join(f"p.{c} IS NULL" for c in _VALUE_COLUMNS)
    for kind, table, properties, owner in PROPERTY_TABLES:
        for i, name, custom in run(f"SELECT p.{owner}, p.name, p.is_custom_property FROM {properties} p "
                                   f"WHERE {empty} ORDER BY p.{owner}, p.name"):
            found.append((kind, int(i), name, bool(custom), "has no value in any column"))
        for data_type, column in _COLUMN_OF.items():
            for i, name in run(f"SELECT p.{owner}, p.name FROM {properties} p JOIN {table} n ON n.id = p.{owner} "
                               "JOIN TypeProperty tp ON tp.type_id = n.type_id AND tp.name = p.name "
                               f"WHERE p.is_custom_property = ? AND tp.data_type = ? AND p.{column} IS NULL "
                               f"AND NOT ({empty}) ORDER BY p.{owner}, p.name", False, data_type):
                found.append((kind, int(i), name, False,
                              f"is declared {_TYPE_NAMES[data_type]} but holds its value in another column"))
    return sorted(found)


def runs_missing_inputs(run: Run) -> List[Tuple[int, str, int, int]]:
    """(id, type name, inputs its start recorded, input events it has) of every execution
    with fewer input events (any input kind) than its `environment.INPUTS` says, by id."""
    events = f"(SELECT COUNT(*) FROM Event ev WHERE ev.execution_id = e.id AND ev.type IN ({_INPUTS}))"
    rows = run(f"SELECT e.id, t.name, p.int_value, {events} FROM Execution e JOIN Type t ON t.id = e.type_id "
               "JOIN ExecutionProperty p ON p.execution_id = e.id AND p.name = ? AND p.is_custom_property = ? "
               f"WHERE p.int_value > {events} ORDER BY e.id", INPUTS, True)
    return [(int(i), t or "", int(n), int(k)) for i, t, n, k in rows]


def histories_without_runs(run: Run) -> List[Tuple[int, int]]:
    """(context id, execution id) of each metric-history context whose run is not in the store."""
    rows = run("SELECT c.id, p.int_value FROM Context c JOIN Type t ON t.id = c.type_id "
               "JOIN ContextProperty p ON p.context_id = c.id AND p.name = 'execution_id' "
               "WHERE t.name = ? AND p.int_value IS NOT NULL "
               "AND NOT EXISTS (SELECT 1 FROM Execution e WHERE e.id = p.int_value) ORDER BY c.id", HISTORY_TYPE)
    return [(int(c), int(e)) for c, e in rows]
