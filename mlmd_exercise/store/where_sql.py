"""A filter query (`where.parse`'s tree) as SQL over MLMD's tables, its values bound parameters.

The meaning is ml-metadata 1.17's: the node's table joined to one row for each alias and each
property the expression names (an inner join: a node without one matches nothing), the node
kept where some joined row makes the condition true (`where.py` says it in words). Statements
use `?` placeholders in the SQL all three databases speak: the native backend runs them on its
dialect's connection, ml-metadata's backend through its plain-SQL runner (`tables`). Each
database's LIKE is its own, as under 1.17 (case-insensitive for ASCII on SQLite, as stored on
PostgreSQL, by the column's collation on MySQL).
"""

from __future__ import annotations

from typing import Any, Dict, List, Tuple

from mlmd_exercise.records import Kind
from mlmd_exercise.where import (ENUMS, Among, And, Compare, Expr, Field, IsNull, Like, Not, Or, Truth, fields)

__all__ = ["node_ids", "matching_ids"]

# kind -> (node table, property table, owner column, Type.type_kind, membership table)
_TABLES = {
    Kind.ARTIFACT: ("Artifact", "ArtifactProperty", "artifact_id", 1, "Attribution"),
    Kind.EXECUTION: ("Execution", "ExecutionProperty", "execution_id", 0, "Association"),
    Kind.CONTEXT: ("Context", "ContextProperty", "context_id", 2, ""),
}
_CONTEXT = "c.id, c.name, t.name AS tname, c.create_time_since_epoch, c.last_update_time_since_epoch"
_PARENTS = ("SELECT c.id, c.name, t.name AS tname, pc.{owner} AS owner FROM Context c JOIN Type t ON t.id = c.type_id "
            "JOIN ParentContext pc ON pc.{other} = c.id")
_EVENTS = {Kind.ARTIFACT: "artifact_id", Kind.EXECUTION: "execution_id"}


def _neighbours(kind: Kind, scope: str) -> str:
    """The rows an alias of `scope` joins, each with its node's id as `owner`."""
    if scope == "contexts":
        member, owner = _TABLES[kind][4], _TABLES[kind][2]
        return (f"SELECT {_CONTEXT}, m.{owner} AS owner FROM Context c JOIN Type t ON t.id = c.type_id "
                f"JOIN {member} m ON m.context_id = c.id")
    if scope == "parent_contexts":
        return _PARENTS.format(owner="context_id", other="parent_context_id")
    if scope == "child_contexts":
        return _PARENTS.format(owner="parent_context_id", other="context_id")
    if scope == "artifacts":
        return ("SELECT a.id, a.name, t.name AS tname, a.create_time_since_epoch, a.last_update_time_since_epoch, "
                "a.uri, a.state, m.context_id AS owner FROM Artifact a JOIN Type t ON t.id = a.type_id "
                "JOIN Attribution m ON m.artifact_id = a.id")
    assert scope == "executions"
    return ("SELECT x.id, x.name, t.name AS tname, x.create_time_since_epoch, x.last_update_time_since_epoch, "
            "x.last_known_state, m.context_id AS owner FROM Execution x JOIN Type t ON t.id = x.type_id "
            "JOIN Association m ON m.execution_id = x.id")


class _Sql:
    def __init__(self, kind: Kind, marks: Tuple[str, str]) -> None:
        self.kind = kind
        self.marks = marks
        self.joins: List[str] = []
        self.join_params: List[Any] = []
        self.aliases: Dict[Tuple[str, str], str] = {}

    def alias(self, field: Field) -> str:
        """The table alias a field is read from, its join added the first time."""
        table, properties, owner, type_kind, _ = _TABLES[self.kind]
        if field.scope == "node":
            if field.name != "type":
                return "w0"
            key = ("type", "")
        else:
            key = (field.scope, field.key) if field.scope in ("properties", "custom_properties") \
                else (field.scope, field.key.lower())
        if key in self.aliases:
            return self.aliases[key]
        name = f"w{len(self.aliases) + 1}"
        self.aliases[key] = name
        if key[0] == "type":
            self.joins.append(f"JOIN Type {name} ON {name}.id = w0.type_id AND {name}.type_kind = {type_kind}")
        elif field.scope in ("properties", "custom_properties"):
            self.joins.append(f"JOIN (SELECT {owner} AS owner, int_value, double_value, string_value, bool_value "
                              f"FROM {properties} WHERE name = ? AND is_custom_property = ?) {name} "
                              f"ON {name}.owner = w0.id")
            self.join_params += [field.key, field.scope == "custom_properties"]
        elif field.scope == "events":
            self.joins.append(f"JOIN Event {name} ON {name}.{_EVENTS[self.kind]} = w0.id")
        else:
            self.joins.append(f"JOIN ({_neighbours(self.kind, field.scope)}) {name} ON {name}.owner = w0.id")
        return name

    def column(self, field: Field) -> str:
        alias = self.alias(field)
        if field.scope == "node":
            return f"{alias}.name" if field.name == "type" else f"w0.{field.name}"
        if field.scope not in ("properties", "custom_properties", "events") and field.name == "type":
            return f"{alias}.tname"
        return f"{alias}.{field.name}"

    def condition(self, expr: Expr, params: List[Any]) -> str:
        if isinstance(expr, Not):
            return f"NOT ({self.condition(expr.part, params)})"
        if isinstance(expr, (And, Or)):
            joiner = " AND " if isinstance(expr, And) else " OR "
            return "(" + joiner.join(f"({self.condition(p, params)})" for p in expr.parts) + ")"
        column = self.column(expr.field)
        enum = ENUMS.get(expr.field.type)

        def bound(value: Any) -> str:
            number = enum.index(value) if enum is not None else value
            params.append(number)
            if isinstance(number, bool) or not isinstance(number, (int, float)):
                return "?"
            return self.marks[isinstance(number, float)]

        if isinstance(expr, Compare):
            mark = bound(expr.value)
            op = "<>" if expr.op == "!=" else expr.op
            # 1.17 rewrites an enum's != to hold where there is no value too.
            return (f"({column} <> {mark} OR {column} IS NULL)" if enum is not None and op == "<>"
                    else f"{column} {op} {mark}")
        if isinstance(expr, Among):
            marks = ", ".join(bound(v) for v in expr.values)
            if not expr.negated:
                return f"{column} IN ({marks})"
            return f"({column} NOT IN ({marks}) OR {column} IS NULL)" if enum is not None else f"{column} NOT IN ({marks})"
        if isinstance(expr, Like):
            params.append(expr.pattern)
            return f"{column} {'NOT LIKE' if expr.negated else 'LIKE'} ?"
        if isinstance(expr, IsNull):
            return f"{column} IS {'NOT NULL' if expr.negated else 'NULL'}"
        assert isinstance(expr, Truth)
        params.append(True)
        return f"{column} = ?"


def node_ids(expr: Expr, kind: Kind, marks: Tuple[str, str] = ("?", "?")) -> Tuple[str, List[Any]]:
    """A SELECT of the ids (column `id`, possibly repeated) of the nodes of `kind` that `expr`
    matches, with its parameters: for `n.id IN (...)`. `marks`: how the database binds a
    whole number and a double there (its dialect's `number_marks`)."""
    sql = _Sql(kind, marks)
    for field in fields(expr):  # every join first: their parameters come before the condition's
        sql.alias(field)
    params: List[Any] = []
    condition = sql.condition(expr, params)
    table = _TABLES[kind][0]
    return (f"SELECT w0.id FROM {table} w0 " + " ".join(sql.joins) + f" WHERE {condition}",
            sql.join_params + params)


def matching_ids(run: Any, expr: Expr, kind: Kind, marks: Tuple[str, str] = ("?", "?")) -> List[int]:
    """The ids, in order, of the nodes of `kind` that `expr` matches, by `run(sql, *values)`."""
    select, params = node_ids(expr, kind, marks)
    return sorted({int(i) for i, in run(select, *params)})
