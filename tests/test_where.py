"""MLMD's filter query read by the package (where.py) and evaluated over MLMD's tables
(store/where_sql.py): the parser construct by construct and refusal by refusal; then the same
ids as ml-metadata 1.17's own filter_query, for random expressions on one store, on both
backends; the same ids on PostgreSQL and MySQL; and `ls --where` as a user runs it."""

from __future__ import annotations

import gc
import os
import re
import shutil
from pathlib import Path
from typing import Any, Dict, List, Tuple

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import mlmd_exercise as mx
from mlmd_exercise.errors import UsageError
from mlmd_exercise.records import Kind
from mlmd_exercise.store.backend import Query
from mlmd_exercise.where import (Among, And, Compare, Field, IsNull, Like, Not, Or, Truth, WhereError, parse, text)

from conftest import check, store_matrix
from raw_mlmd import metadata_store, pb, raw_mlmd

A, E, C = Kind.ARTIFACT, Kind.EXECUTION, Kind.CONTEXT
ID = Field("node", "id", "", "int")
NAME = Field("node", "name", "", "string")


# -- the language --------------------------------------------------------------------------


@pytest.mark.parametrize("expr, kind, tree", [
    ("id = 1", A, Compare(ID, "=", 1)),
    ("ID <> 2", A, Compare(ID, "!=", 2)),
    ("id >= -3", E, Compare(ID, ">=", -3)),
    ("id < 2.5e0", C, Compare(ID, "<", 2.5)),
    ("id = 0x10", A, Compare(ID, "=", 16)),
    ("name = 'a\\'b'", A, Compare(NAME, "=", "a'b")),
    ('name = "x y"', A, Compare(NAME, "=", "x y")),
    ("type = 'DS'", A, Compare(Field("node", "type", "", "string"), "=", "DS")),
    ("uri LIKE 'file:%'", A, Like(Field("node", "uri", "", "string"), "file:%")),
    ("name NOT LIKE 'a_'", E, Like(NAME, "a_", True)),
    ("external_id IS NULL", C, IsNull(Field("node", "external_id", "", "string"))),
    ("name IS NOT NULL", C, IsNull(NAME, True)),
    ("id IN (1, 2.0)", A, Among(ID, (1, 2.0))),
    ("id NOT IN (3)", A, Among(ID, (3,), True)),
    ("id BETWEEN 1 AND 3", A, And((Compare(ID, ">=", 1), Compare(ID, "<=", 3)))),
    ("id NOT BETWEEN 1 AND 3", A, Not(And((Compare(ID, ">=", 1), Compare(ID, "<=", 3))))),
    ("state = LIVE", A, Compare(Field("node", "state", "", "state"), "=", "LIVE")),
    ("state IN (PENDING, LIVE)", A, Among(Field("node", "state", "", "state"), ("PENDING", "LIVE"))),
    ("last_known_state NOT IN (FAILED, CANCELED)", E,
     Among(Field("node", "last_known_state", "", "last_known_state"), ("FAILED", "CANCELED"), True)),
    ("properties.n.int_value > 4", A, Compare(Field("properties", "int_value", "n", "int"), ">", 4)),
    ("custom_properties.`run.name`.string_value = 'x'", E,
     Compare(Field("custom_properties", "string_value", "run.name", "string"), "=", "x")),
    ("custom_properties.b.bool_value = TRUE", C, Compare(Field("custom_properties", "bool_value", "b", "bool"), "=", True)),
    ("custom_properties.b.bool_value", C, Truth(Field("custom_properties", "bool_value", "b", "bool"))),
    ("contexts_a.name = 'c1'", A, Compare(Field("contexts", "name", "a", "string"), "=", "c1")),
    ("events_0.type = INPUT", E, Compare(Field("events", "type", "0", "event"), "=", "INPUT")),
    ("events_0.artifact_id = 2", E, Compare(Field("events", "artifact_id", "0", "int"), "=", 2)),
    ("parent_contexts_p.name = 'c1'", C, Compare(Field("parent_contexts", "name", "p", "string"), "=", "c1")),
    ("child_contexts_k.type = 'Exp'", C, Compare(Field("child_contexts", "type", "k", "string"), "=", "Exp")),
    ("artifacts_a.state = LIVE", C, Compare(Field("artifacts", "state", "a", "state"), "=", "LIVE")),
    ("executions_x.last_known_state != COMPLETE", C,
     Compare(Field("executions", "last_known_state", "x", "last_known_state"), "!=", "COMPLETE")),
    ("id = 1 OR id = 2 AND NOT id = 3", A,
     Or((Compare(ID, "=", 1), And((Compare(ID, "=", 2), Not(Compare(ID, "=", 3))))))),
    ("(id = 1 or id = 2) and not not id = 3", A,
     And((Or((Compare(ID, "=", 1), Compare(ID, "=", 2))), Not(Not(Compare(ID, "=", 3)))))),
])
def test_parse(expr, kind, tree):
    assert parse(expr, kind) == tree
    assert parse(text(tree), kind) == tree  # written out again, it reads the same


@pytest.mark.parametrize("expr, kind, message", [
    ("id = ", A, "--where: expected a value after '=' at column 6: \"id = \""),
    ("", A, "--where: expected an expression at column 1"),
    ("id", A, "expected a comparison after id at column 3"),
    ("id = 1 AND", A, "expected an attribute, a property or a '(', not the end at column 11"),
    ("id = 1 AND AND id = 2", A, "not 'AND' at column 12"),
    ("(id = 1", A, "expected ')' to close the '(' at column 1, not the end at column 8"),
    ("id = 1)", A, "expected AND, OR or the end, not ')' at column 7"),
    ("id == 1", A, "expected a number after '=' (for id), not '=' at column 5"),
    ("id = 'a", A, "a string that is never closed at column 6"),
    ("id = 1 + 1", A, "unexpected character '+' at column 8"),
    ("name = 'it''s'", A, "expected AND, OR or the end, not ''s'' at column 12"),
    ("name = 'a\\qb'", A, "an escape ZetaSQL does not know: '\\q'"),
    ("id = '5'", A, "expected a number after '=' (for id), not ''5''"),
    ("name = 5", A, "expected a string after '=' (for name), not '5'"),
    ("id = TRUE", A, "expected a number after '=' (for id), not 'TRUE'"),
    ("id = NULL", A, "not NULL (test for no value with IS NULL)"),
    ("id IN ()", A, "expected a number in the list (for id), not ')' at column 8"),
    ("id IN (1, 'a')", A, "expected a number after ',' (for id), not ''a'' at column 11"),
    ("id LIKE '1'", A, "LIKE takes a string, and id is not one at column 4"),
    ("name LIKE 5", A, "expected a string after LIKE (for name), not '5'"),
    ("id IS TRUE", A, "expected NULL after IS, not 'TRUE'"),
    ("id NOT = 1", A, "expected IN, LIKE or BETWEEN after NOT, not '='"),
    ("state = 2", A, "expected one of UNKNOWN, PENDING, LIVE, MARKED_FOR_DELETION, DELETED after '=' (for state)"),
    ("state = live", A, "not 'live'"),
    ("state = 'LIVE'", A, "not ''LIVE''"),
    ("state > PENDING", A, "state takes =, !=, IN or NOT IN, not '>' at column 7"),
    ("events_0.type = 1", A, "expected one of UNKNOWN, DECLARED_OUTPUT"),
    ("properties.b.bool_value < true", A, "properties.b.bool_value is a bool: it takes = or !=, not '<'"),
    ("properties.n.bool_value = 1", A, "expected true or false after '='"),
    ("uri = 'x'", E, "an execution has no 'uri' (it has id, type_id, type, name, external_id"),
    ("state = LIVE", C, "a context has no 'state'"),
    ("foo = 1", A, "an artifact has no 'foo' at column 1"[:25]),
    ("contexts_a.name = 'c'", C, "a context has no 'contexts_a'"),
    ("parent_contexts_a.name = 'c'", A, "an artifact has no 'parent_contexts_a'"),
    ("events_0.type = INPUT", C, "a context has no 'events_0'"),
    ("contexts_a.external_id = 'x'", A, "contexts_a has no field 'external_id' (it has id, name, type, "
                                        "create_time_since_epoch, last_update_time_since_epoch) at column 12"),
    ("contexts_a.type_id = 1", E, "contexts_a has no field 'type_id'"),
    ("parent_contexts_a.create_time_since_epoch > 0", C, "parent_contexts_a has no field 'create_time_since_epoch'"),
    ("artifacts_a.external_id IS NULL", C, "artifacts_a has no field 'external_id'"),
    ("events_0.artifact_id = 1", A, "events_0 has no field 'artifact_id' (it has type, milliseconds_since_epoch, "
                                    "execution_id)"),
    ("contexts.name = 'c'", A, "an artifact has no 'contexts'"),
    ("properties.n = 1", A, "expected '.' after the property's name, not '=' at column 14"),
    ("properties.n.INT_VALUE = 1", A, "expected int_value, double_value, string_value or bool_value, not 'INT_VALUE'"),
    ("custom_properties.run.name.string_value = 'x'", A, "not 'name' at column 23"),
    ("properties.``.int_value = 1", A, "expected a property's name in the backquotes"),
    ("id = 1 & id = 2", A, "unexpected character '&' at column 8"),
    ("id.x = 1", A, "id has no fields"),
    ("id > 1e400", A, "1e400 is beyond a double at column 6"),
    ("id = 9223372036854775808", A, "9223372036854775808 is beyond a 64-bit whole number (ZetaSQL's INT64) at column 6"),
])
def test_refusals(expr, kind, message):
    with pytest.raises(WhereError) as e:
        parse(expr, kind)
    assert isinstance(e.value, UsageError)
    assert message in str(e.value)
    assert "\n" not in str(e.value)


def test_the_label_names_where_it_came_from():
    with pytest.raises(WhereError, match=r"^where: expected a value after '=' at column 6"):
        parse("id = ", A, label="where")


# -- one store, written by ml-metadata 1.17 ----------------------------------------------

NAMES = ["a0", "a1", "b2", "", "x", "c1", "e1", "run"]
STRINGS = ["a", "b", "hello", "x", "", "a1"]
PATTERNS = ["a%", "%1", "_", "%", "h%o", "b_", "%x%"]
CONTEXT_NAMES = ["c1", "c2", "c3", "c4", "c5"]


def _props(node: Any, i: int, prefix: str = "") -> None:
    """Varied properties: declared ones (n, f, s, b) on some nodes, custom ones on others."""
    if i % 3 == 0:
        node.properties["n"].int_value = i
    if i % 4 == 1:
        node.properties["f"].double_value = i / 2
    if i % 3 == 1:
        node.properties["s"].string_value = STRINGS[i % len(STRINGS)]
    if i % 5 == 2:
        node.properties["b"].bool_value = i % 2 == 0
    if i % 2 == 0:
        node.custom_properties["c"].int_value = i * 2
    if i % 3 == 2:
        node.custom_properties["c"].string_value = STRINGS[(i + 1) % len(STRINGS)]  # same name, other column
    if i % 4 == 3:
        node.custom_properties["run.name"].string_value = NAMES[i % len(NAMES)]
    if i % 5 == 0:
        node.custom_properties["x"].double_value = 1.5 * i


def build(store: Any) -> None:
    """Artifacts, executions and contexts of every kind of value, written by raw ml-metadata."""
    def declared(proto: Any, name: str) -> Any:
        proto.name = name
        for key, kind in (("n", pb.INT), ("f", pb.DOUBLE), ("s", pb.STRING), ("b", pb.BOOLEAN)):
            proto.properties[key] = kind
        return proto

    ds = store.put_artifact_type(declared(pb.ArtifactType(), "ds"))
    model = store.put_artifact_type(declared(pb.ArtifactType(), "model"))
    trainer = store.put_execution_type(declared(pb.ExecutionType(), "trainer"))
    evaluator = store.put_execution_type(declared(pb.ExecutionType(), "eval"))
    exp = store.put_context_type(declared(pb.ContextType(), "exp"))
    run = store.put_context_type(declared(pb.ContextType(), "run"))
    states = [None, pb.Artifact.PENDING, pb.Artifact.LIVE, pb.Artifact.DELETED, pb.Artifact.MARKED_FOR_DELETION]
    artifacts = []
    for i in range(12):
        a = pb.Artifact(type_id=ds if i % 3 else model, uri=f"file:/d/{NAMES[i % len(NAMES)]}{i}")
        if NAMES[i % len(NAMES)]:
            a.name = f"{NAMES[i % len(NAMES)]}{i}"
        if states[i % 5] is not None:
            a.state = states[i % 5]
        if i % 4 == 2:
            a.external_id = f"ext{i}"
        if i % 6 != 5:  # some with no property at all
            _props(a, i)
        artifacts.append(a)
    artifacts.append(pb.Artifact(type_id=model, uri="file:/d/naïve", name="naïve"))  # text beyond ASCII
    aids = store.put_artifacts(artifacts)
    known = [None, pb.Execution.NEW, pb.Execution.RUNNING, pb.Execution.COMPLETE, pb.Execution.FAILED,
             pb.Execution.CACHED, pb.Execution.CANCELED]
    executions = []
    for i in range(8):
        x = pb.Execution(type_id=trainer if i % 2 else evaluator)
        if i != 3:
            x.name = f"e{i}"
        if known[i % len(known)] is not None:
            x.last_known_state = known[i % len(known)]
        if i == 4:
            x.external_id = "xe4"
        if i != 6:
            _props(x, i + 1)
        executions.append(x)
    eids = store.put_executions(executions)
    contexts = []
    for i, name in enumerate(CONTEXT_NAMES):
        c = pb.Context(type_id=exp if i % 2 == 0 else run, name=name)
        if i == 1:
            c.external_id = "xc1"
        _props(c, i + 2)
        contexts.append(c)
    cids = store.put_contexts(contexts)
    # c2 and c3 in c1, c4 in c2 and c3; c5 alone.
    store.put_parent_contexts([pb.ParentContext(child_id=cids[1], parent_id=cids[0]),
                               pb.ParentContext(child_id=cids[2], parent_id=cids[0]),
                               pb.ParentContext(child_id=cids[3], parent_id=cids[1]),
                               pb.ParentContext(child_id=cids[3], parent_id=cids[2])])
    attributions = [pb.Attribution(artifact_id=aids[i], context_id=cids[(i * 7) % 4]) for i in range(0, 12, 2)]
    attributions += [pb.Attribution(artifact_id=aids[i], context_id=cids[(i + 1) % 5]) for i in range(0, 12, 3)]
    associations = [pb.Association(execution_id=eids[i], context_id=cids[i % 3]) for i in range(0, 8) if i != 5]
    associations += [pb.Association(execution_id=eids[1], context_id=cids[3])]
    store.put_attributions_and_associations(attributions, associations)
    types = [pb.Event.INPUT, pb.Event.OUTPUT, pb.Event.DECLARED_INPUT, pb.Event.DECLARED_OUTPUT,
             pb.Event.INTERNAL_OUTPUT, pb.Event.INPUT]
    events = [pb.Event(artifact_id=aids[(i * 5) % 11], execution_id=eids[i % 7], type=types[i % len(types)],
                       milliseconds_since_epoch=1000 * i) for i in range(14)]
    store.put_events(events)


@pytest.fixture(scope="module")
def stores(tmp_path_factory) -> Dict[str, Any]:
    """One store written by ml-metadata 1.17 (its raw store), the package on it with ml-metadata's
    backend, and with the native one on a byte copy (sqlite3 and ml-metadata never on one file)."""
    folder = tmp_path_factory.mktemp("where")
    path, copy = folder / "mlmd.db", folder / "native.db"
    config = pb.ConnectionConfig()
    config.sqlite.filename_uri = str(path)
    config.sqlite.connection_mode = pb.SqliteMetadataSourceConfig.READWRITE_OPENCREATE
    writer = metadata_store.MetadataStore(config)
    build(writer)
    del writer
    gc.collect()
    shutil.copyfile(path, copy)
    raw = raw_mlmd(path)
    times = sorted({n.create_time_since_epoch for n in raw.get_artifacts() + raw.get_executions()
                    + raw.get_contexts()})
    return {"raw": raw, "mlmd": mx.open_store(path, backend="mlmd"),
            "native": mx.open_store(copy, backend="native"), "times": times}


def raw_ids(raw: Any, kind: Kind, expr: str) -> List[int]:
    get = {A: raw.get_artifacts, E: raw.get_executions, C: raw.get_contexts}[kind]
    return sorted(n.id for n in get(list_options=metadata_store.ListOptions(filter_query=expr)))


def package_ids(store: mx.Store, kind: Kind, expr: str) -> List[int]:
    get = {A: store.backend.artifacts, E: store.backend.executions, C: store.backend.contexts}[kind]
    return sorted(n.id for n in get(Query(where=parse(expr, kind))))


# -- random expressions ------------------------------------------------------------------

INTS = st.sampled_from([-1, 0, 1, 2, 3, 4, 6, 8, 10, 12, 20])
NUMBERS = st.one_of(INTS, st.sampled_from([0.5, 1.5, 2.0, 4.5, 7.5, 15.0]))


def _quoted(s: str) -> str:
    return f"'{s}'"


def _value(kind: str, names: List[str]) -> st.SearchStrategy[str]:
    if kind in ("int", "double"):
        return NUMBERS.map(repr)
    if kind == "string":
        return st.sampled_from(names).map(_quoted)
    return st.sampled_from(["true", "false"])


def _test(column: str, kind: str, names: List[str], enum: List[str] = ()) -> st.SearchStrategy[str]:
    """One predicate on `column`, of every form its type takes."""
    null = st.sampled_from([f"{column} IS NULL", f"{column} IS NOT NULL"])
    if enum:
        one = st.sampled_from(enum)
        some = st.lists(one, min_size=1, max_size=3).map(", ".join)
        return st.one_of(null, st.builds(lambda op, v: f"{column} {op} {v}", st.sampled_from(["=", "!="]), one),
                         st.builds(lambda op, v: f"{column} {op} ({v})", st.sampled_from(["IN", "NOT IN"]), some))
    if kind == "bool":
        return st.one_of(null, st.just(column), st.builds(lambda op, v: f"{column} {op} {v}",
                                                          st.sampled_from(["=", "!="]), _value(kind, names)))
    value = _value(kind, names)
    forms = [null,
             st.builds(lambda op, v: f"{column} {op} {v}", st.sampled_from(["=", "!=", "<", "<=", ">", ">=", "<>"]), value),
             st.builds(lambda op, vs: f"{column} {op} ({', '.join(vs)})", st.sampled_from(["IN", "NOT IN"]),
                       st.lists(value, min_size=1, max_size=3)),
             st.builds(lambda lo, hi: f"{column} BETWEEN {lo} AND {hi}", value, value)]
    if kind == "string":
        forms.append(st.builds(lambda op, p: f"{column} {op} '{p}'", st.sampled_from(["LIKE", "NOT LIKE"]),
                               st.sampled_from(PATTERNS)))
    return st.one_of(*forms)


ARTIFACT_STATES = ["UNKNOWN", "PENDING", "LIVE", "MARKED_FOR_DELETION", "DELETED"]
EXECUTION_STATES = ["UNKNOWN", "NEW", "RUNNING", "COMPLETE", "FAILED", "CACHED", "CANCELED"]
EVENTS = ["INPUT", "OUTPUT", "DECLARED_INPUT", "DECLARED_OUTPUT", "INTERNAL_OUTPUT"]


def atoms(kind: Kind, times: List[int]) -> st.SearchStrategy[str]:
    names = NAMES + [f"{n}{i}" for i, n in enumerate(NAMES)] + STRINGS
    time_values = st.sampled_from([t + d for t in times for d in (-1, 0, 1)]).map(str)
    found = [_test("id", "int", names), _test("type_id", "int", names),
             _test("type", "string", ["ds", "model", "trainer", "eval", "exp", "run", "x"]),
             _test("name", "string", names + CONTEXT_NAMES), _test("external_id", "string", ["ext2", "xe4", "xc1", "e"]),
             st.builds(lambda c, op, t: f"{c} {op} {t}", st.sampled_from(["create_time_since_epoch",
                                                                            "last_update_time_since_epoch"]),
                       st.sampled_from(["<", "<=", ">", ">=", "=", "!="]), time_values)]
    columns = {"int_value": "int", "double_value": "double", "string_value": "string", "bool_value": "bool"}
    held = [("n", "int_value"), ("f", "double_value"), ("s", "string_value"), ("b", "bool_value"), ("c", "int_value"),
            ("c", "string_value"), ("x", "double_value"), ("`run.name`", "string_value")]
    for scope in ("properties", "custom_properties"):
        for key, column in held:  # the column the property's values are in, mostly
            found.append(_test(f"{scope}.{key}.{column}", columns[column], STRINGS + names))
        found.append(st.tuples(st.sampled_from(["n", "f", "s", "b", "c", "x", "`run.name`", "missing"]),
                               st.sampled_from(sorted(columns))).flatmap(
            lambda kc, s=scope: _test(f"{s}.{kc[0]}.{kc[1]}", columns[kc[1]], STRINGS + names)))
    alias = st.sampled_from(["a", "b"])
    if kind is A:
        found += [_test("uri", "string", [f"file:/d/{n}{i}" for i, n in enumerate(NAMES)]),
                  _test("state", "state", [], ARTIFACT_STATES)]
    if kind is E:
        found.append(_test("last_known_state", "state", [], EXECUTION_STATES))
    if kind in (A, E):
        other = "execution_id" if kind is A else "artifact_id"
        for column, ckind in (("name", "string"), ("id", "int"), ("type", "string"), ("create_time_since_epoch", "int")):
            found.append(alias.flatmap(lambda a, c=column, k=ckind: _test(f"contexts_{a}.{c}", k, CONTEXT_NAMES + ["exp", "run"])))
        found.append(alias.flatmap(lambda a: _test(f"events_{a}.type", "event", [], EVENTS)))
        found.append(alias.flatmap(lambda a: _test(f"events_{a}.{other}", "int", [])))
        found.append(alias.flatmap(lambda a: _test(f"events_{a}.milliseconds_since_epoch", "int", [])))
    if kind is C:
        for scope in ("parent_contexts", "child_contexts"):
            for column, ckind in (("name", "string"), ("id", "int"), ("type", "string")):
                found.append(alias.flatmap(lambda a, s=scope, c=column, k=ckind: _test(f"{s}_{a}.{c}", k,
                                                                                         CONTEXT_NAMES + ["exp", "run"])))
        found.append(alias.flatmap(lambda a: _test(f"artifacts_{a}.uri", "string", ["file:/d/a00"])))
        found.append(alias.flatmap(lambda a: _test(f"artifacts_{a}.state", "state", [], ARTIFACT_STATES)))
        found.append(alias.flatmap(lambda a: _test(f"executions_{a}.last_known_state", "state", [], EXECUTION_STATES)))
        found.append(alias.flatmap(lambda a: _test(f"executions_{a}.name", "string", ["e0", "e1", "e2"])))
    return st.one_of(*found)


def expressions(kind: Kind, times: List[int]) -> st.SearchStrategy[str]:
    return st.recursive(atoms(kind, times), lambda inner: st.one_of(
        st.builds(lambda a, b: f"{a} AND {b}", inner, inner),
        st.builds(lambda a, b: f"({a}) OR ({b})", inner, inner),
        st.builds(lambda a, b: f"{a} OR {b}", inner, inner),
        inner.map(lambda a: f"NOT ({a})"),
        inner.map(lambda a: f"NOT {a}" if " AND " not in a and " OR " not in a else f"NOT ({a})"),
    ), max_leaves=5)


def cases(times: List[int]) -> st.SearchStrategy[Tuple[Kind, str]]:
    each = {kind: expressions(kind, times) for kind in (A, E, C)}  # made once: they are large
    return st.sampled_from([A, E, C]).flatmap(lambda kind: each[kind].map(lambda expr: (kind, expr)))


# Where 1.17 fails on an expression of the language by a fault of its own, its enum rewrite: a
# test written twice (it replaces both at once, then finds the second gone), and `!=` or NOT IN
# on a neighbour's enum (`artifacts_a.state != LIVE` rewritten to `artifacts_a. ((state ...`).
# The package answers those, as 1.17 answers the same written its way round (filters.where_text).
def ml_metadata_bug(expr: str, error: str) -> bool:
    return "Query cannot be rewritten successfully" in error or (
        "Syntax error" in error and re.search(r"\b(artifacts|executions)_\w+\.(state|last_known_state)\s*(!=|NOT IN)",
                                              expr) is not None)


# The same examples every run (a CI run fails only where the code changed); MLMD_WHERE_EXAMPLES=N
# draws N random ones instead, to look further.
EXAMPLES = int(os.environ.get("MLMD_WHERE_EXAMPLES", "150"))
DERANDOMIZE = "MLMD_WHERE_EXAMPLES" not in os.environ


def test_same_ids_as_ml_metadata_1_17(stores):
    """Random expressions: ml-metadata 1.17's own filter_query and the package's, on one store,
    give the same ids (on both backends); where 1.17 refuses one, so does the package."""
    raw, times = stores["raw"], stores["times"]
    compared = []

    @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None,
              derandomize=DERANDOMIZE)
    @given(cases(times))
    def same(case):
        kind, expr = case
        try:
            want = raw_ids(raw, kind, expr)
        except Exception as e:  # 1.17 refuses it: the package must too
            if ml_metadata_bug(expr, str(e)):
                from mlmd_exercise.store.mlmd.filters import where_text

                want = raw_ids(raw, kind, where_text(parse(expr, kind)))
                for backend in ("native", "mlmd"):
                    assert package_ids(stores[backend], kind, expr) == want, (backend, kind, expr)
                compared.append(("1.17's bug", want))
                return
            with pytest.raises(WhereError):
                parse(expr, kind)
            compared.append(("refused", str(e)))
            return
        for backend in ("native", "mlmd"):
            assert package_ids(stores[backend], kind, expr) == want, (backend, kind, expr)
        compared.append((expr, want))

    same()
    # The store answers many of them with something: not every expression matches nothing.
    answered = [w for _, w in compared if isinstance(w, list)]
    assert len(answered) > 100, compared[:20]  # compared, not refused
    assert sum(1 for w in answered if w) > len(answered) // 5, compared[:20]


# Expressions whose answer turns on the points where 1.17's meaning is easy to miss.
FIXED = [
    (A, "state != LIVE"),  # also where there is no state
    (A, "NOT state = LIVE"),  # not there
    (A, "state NOT IN (LIVE, PENDING)"),
    (E, "last_known_state NOT IN (FAILED, CANCELED)"),
    (E, "last_known_state IS NULL"),
    (A, "properties.n.int_value = 0 OR id = 2"),  # naming a property joins it: id 2 has no n
    (A, "NOT properties.n.int_value = 3"),
    (A, "properties.n.int_value IS NULL"),
    (A, "properties.f.int_value IS NULL"),
    (A, "custom_properties.c.string_value IS NULL"),
    (A, "custom_properties.c.int_value >= 8 AND custom_properties.c.int_value < 20.5"),
    (E, "custom_properties.`run.name`.string_value = 'e1'"),
    (C, "properties.b.bool_value"),
    (C, "properties.b.bool_value = false"),
    (A, "contexts_a.name = 'c1' OR id = 2"),  # naming an alias joins it: no context, no match
    (A, "NOT contexts_a.name = 'c1'"),  # in SOME context not called c1
    (A, "contexts_a.name = 'c1' AND contexts_a.name = 'c2'"),  # one alias, one context
    (A, "contexts_a.name = 'c1' AND contexts_b.name = 'c2'"),
    (E, "contexts_a.name = 'c1' OR contexts_b.name = 'c4'"),
    (A, "events_0.type = INPUT AND events_1.type = OUTPUT"),
    (A, "events_0.type != INPUT"),
    (E, "events_0.type IN (OUTPUT, DECLARED_OUTPUT) AND events_0.milliseconds_since_epoch >= 3000"),
    (E, "events_0.artifact_id BETWEEN 2 AND 6"),
    (C, "parent_contexts_a.name = 'c1'"),
    (C, "child_contexts_a.name = 'c4' AND NOT parent_contexts_b.name = 'c1'"),
    (C, "artifacts_a.state = LIVE OR executions_a.last_known_state = COMPLETE"),
    (C, "type = 'run' AND external_id IS NOT NULL"),
    (A, "name LIKE 'a%' AND uri NOT LIKE '%1'"),
    (A, "name < 'b' AND name IS NOT NULL"),
    (E, "name IN ('e1', 'e2') OR name IS NULL"),
    (A, "id IN (1, 2.0, 3.5) OR type = 'model'"),
    (A, "properties.f.double_value > 1 AND properties.f.double_value <= 4.5"),
]


def test_the_fixed_expressions_against_1_17(stores):
    for kind, expr in FIXED:
        want = raw_ids(stores["raw"], kind, expr)
        for backend in ("native", "mlmd"):
            assert package_ids(stores[backend], kind, expr) == want, (backend, kind, expr)


@pytest.mark.parametrize("kind, expr", [
    (A, "state = LIVE OR state = LIVE"),
    (A, "events_0.type = INPUT AND NOT events_0.type = INPUT"),
    (C, "artifacts_a.state != LIVE"),
    (C, "executions_a.last_known_state NOT IN (COMPLETE, FAILED) AND executions_a.last_known_state != NEW"),
])
def test_what_1_17_fails_to_rewrite_the_package_answers(stores, kind, expr):
    from mlmd_exercise.store.mlmd.filters import where_text

    with pytest.raises(Exception, match="Query cannot be rewritten successfully|Syntax error"):
        raw_ids(stores["raw"], kind, expr)
    want = raw_ids(stores["raw"], kind, where_text(parse(expr, kind)))  # 1.17 on the same, its way round
    for backend in ("native", "mlmd"):
        assert package_ids(stores[backend], kind, expr) == want, backend


def test_an_answer_that_1_17_gives(stores):
    """A few answers said outright, that the comparison above cannot get wrong together."""
    native = stores["native"]
    raw = stores["raw"]
    no_context = sorted(set(n.id for n in raw.get_artifacts())
                        - {a.id for c in raw.get_contexts() for a in raw.get_artifacts_by_context(c.id)})
    assert no_context  # the store has artifacts in no context...
    both = package_ids(native, A, "contexts_a.id > 0 OR id > 0")
    assert not set(no_context) & set(both)  # ... which an alias leaves out, even under OR
    stateless = sorted(a.id for a in raw.get_artifacts() if not a.HasField("state"))
    assert set(stateless) <= set(package_ids(native, A, "state != LIVE"))
    assert not set(stateless) & set(package_ids(native, A, "NOT state = LIVE"))


def test_the_where_narrows_the_rest_of_the_query(stores):
    for backend in ("native", "mlmd"):
        b = stores[backend].backend
        every = [a.id for a in b.artifacts(Query(where=parse("id > 2", A), order="id", ascending=True))]
        assert every == list(range(3, 14))
        assert [a.id for a in b.artifacts(Query(where=parse("id > 2", A), ids=[1, 4, 5], order="id",
                                                 ascending=True))] == [4, 5]
        assert [a.id for a in b.artifacts(Query(where=parse("id > 2", A), order="id", limit=2))] == [13, 12]


def test_a_string_ml_metadata_cannot_be_given(stores):
    """ml-metadata's filter language pastes strings into its SQL: with it, a quote is refused;
    the native backend binds it, and finds the name."""
    from mlmd_exercise.errors import StoreError
    with pytest.raises(StoreError, match="cannot be given \"it's\""):
        stores["mlmd"].backend.artifacts(Query(where=parse("name = 'it\\'s'", A)))
    assert stores["native"].backend.artifacts(Query(where=parse("name = 'it\\'s'", A))) == []


# -- PostgreSQL and MySQL ------------------------------------------------------------------


def _filled(location: str, workdir: Path) -> mx.Store:
    """The same store on every database, written by ml-metadata 1.17; the package's store on it."""
    mx.open_store(location, create=True).close()
    writer = raw_mlmd(location)
    build(writer)
    del writer
    gc.collect()
    return mx.open_store(location)


matrix = store_matrix(_filled)


def test_every_database_gives_the_ids_sqlite_gives(matrix, stores):
    backend = matrix.backend
    # ml-metadata's backend without its filter language (1.21) answers the same: the package's SQL
    # on a server; on an SQLite file it holds, 1.17's language takes the expression written out.
    ways = [True, False] if backend.name == "mlmd" and not matrix.location.is_sqlite else [getattr(backend, "filters", True)]
    per_query = backend.ids_per_query
    try:
        for filters in ways:
            if backend.name == "mlmd":
                backend.filters = filters
                backend.ids_per_query = 3 if filters else per_query  # the matches asked a chunk at a time
            for kind, expr in FIXED:
                assert package_ids(matrix, kind, expr) == raw_ids(stores["raw"], kind, expr), \
                    (matrix.location, filters, kind, expr)
    finally:
        if backend.name == "mlmd":
            backend.filters = True
        backend.ids_per_query = per_query


def test_text_beyond_ascii_on_every_database(matrix):
    """A name beyond ASCII is found as it was written (on MySQL, in the latin1 form ml-metadata's
    client stores): bound, it needs no quoting; ml-metadata's filter language is never handed it."""
    if matrix.backend.name == "mlmd" and matrix.location.is_sqlite:
        from mlmd_exercise.errors import StoreError

        with pytest.raises(StoreError, match="cannot be given 'naïve'.*--backend native"):
            package_ids(matrix, A, "name = 'naïve'")
        return
    assert package_ids(matrix, A, "name = 'naïve'") == [13]
    assert package_ids(matrix, A, "uri = 'file:/d/naïve' AND name LIKE 'na%'") == [13]


def test_without_sql_or_filter_language_it_says_what_to_do(stores):
    """ml-metadata 1.21 on an SQLite file this process holds: no filter language, and no SQL of
    the package's own (Python's sqlite3 must not open the file too): refused, naming the way."""
    from mlmd_exercise.errors import StoreError

    backend = stores["mlmd"].backend
    backend.filters = False
    try:
        with pytest.raises(StoreError, match="a filter query needs plain SQL over its tables.*--backend native"):
            backend.executions(Query(where=parse("id = 1", E)))
    finally:
        backend.filters = True


# -- the command line ----------------------------------------------------------------------


def test_ls_where(stores, run_cli, monkeypatch):
    monkeypatch.setenv("MLMD_BACKEND", "native")  # the file this process's native store holds
    path = stores["native"].location.path
    result = run_cli("ls", "executions", "--where", "contexts_a.name = 'c1' AND last_known_state != COMPLETE",
                     "--json", "--db", path)
    assert result.code == 0, result.err
    import json

    got = sorted(r["id"] for r in json.loads(result.out))
    assert got == raw_ids(stores["raw"], E, "contexts_a.name = 'c1' AND last_known_state != COMPLETE") and got
    result = run_cli("ls", "artifacts", "--where", "state = LIVE", "--type", "ds", "--json", "--db", path)
    assert result.code == 0, result.err
    assert sorted(r["id"] for r in json.loads(result.out)) == raw_ids(stores["raw"], A, "state = LIVE AND type = 'ds'")
    result = run_cli("ls", "contexts", "--where", "parent_contexts_p.name = 'c1'", "--json", "--db", path)
    assert sorted(r["id"] for r in json.loads(result.out)) == [2, 3]


def test_ls_where_malformed(stores, run_cli, monkeypatch):
    monkeypatch.setenv("MLMD_BACKEND", "native")
    result = run_cli("ls", "executions", "--where", "id = ", "--db", stores["native"].location.path)
    check(result, "--where: expected a value after '=' at column 6: \"id = \"")
    assert "Traceback" not in result.err
    result = run_cli("ls", "artifacts", "--where", "last_known_state = COMPLETE", "--db", stores["native"].location.path)
    check(result, "an artifact has no 'last_known_state'")
    check(run_cli("ls", "contexts", "--where", "(id = 1", "--db", stores["native"].location.path.parent / "none.db"),
          "--where: expected ')' to close the '(' at column 1, not the end at column 8")  # before the store is looked for


def test_export_where(stores, run_cli, monkeypatch, tmp_path):
    monkeypatch.setenv("MLMD_BACKEND", "native")
    bundle = tmp_path / "b.jsonl"
    expr = "contexts_a.name = 'c1' OR last_known_state = COMPLETE"
    result = run_cli("export", "-o", bundle, "--where", expr, "--db", stores["native"].location.path)
    assert result.code == 0, result.err
    from mlmd_exercise.bundle import read_bundle

    exported = sorted(int(x["id"]) for x in read_bundle(str(bundle)).executions)
    assert exported == raw_ids(stores["raw"], E, expr) and exported
    check(run_cli("export", "-o", tmp_path / "c.jsonl", "--where", "contexts_a.nam = 'c1'",
                  "--db", stores["native"].location.path), "contexts_a has no field 'nam'")
    assert not (tmp_path / "c.jsonl").exists()


def test_the_runs_page_takes_where(stores, monkeypatch):
    """The explorer's runs page, served: where= narrows its runs; a bad one is a 400 page naming it."""
    from urllib.parse import quote

    from test_web import start_server, stop

    monkeypatch.setenv("MLMD_BACKEND", "native")
    server = start_server(stores["native"].location.path)
    try:
        expr = "contexts_a.name = 'c2' OR events_0.type = INPUT"
        status, _, body = server.get("/runs?where=" + quote(expr))
        assert status == 200, body
        want = raw_ids(stores["raw"], E, expr)
        assert want
        shown = sorted({int(i) for i in re.findall(r'/execution/(\d+)"', body)})
        assert shown == want
        status, _, body = server.get("/runs?where=" + quote("id = "))
        assert status == 400
        assert "where: expected a value after" in body and "at column 5: &quot;id =&quot;" in body
    finally:
        stop(server)


def test_lineage_where_starts_from_every_match(stores, run_cli, monkeypatch):
    monkeypatch.setenv("MLMD_BACKEND", "native")
    import json

    path = stores["native"].location.path
    expr = "events_a.type = OUTPUT"
    result = run_cli("lineage", "--where", expr, "--direction", "upstream", "--hops", "1", "--json", "--db", path)
    assert result.code == 0, result.err
    walked = json.loads(result.out)
    starts = raw_ids(stores["raw"], E, expr)
    assert walked["start"]["ids"] == starts and starts
    inputs = {e.artifact_id for e in stores["raw"].get_events_by_execution_ids(starts)
              if e.type in (pb.Event.INPUT, pb.Event.DECLARED_INPUT, pb.Event.INTERNAL_INPUT)}
    assert sorted(a["id"] for a in walked["artifacts"]) == sorted(inputs)  # one hop up: their inputs
    assert sorted(x["id"] for x in walked["executions"]) == starts
    result = run_cli("lineage", "--where", "contexts_a.name = 'c5'", "--start", "artifacts", "--db", path)
    assert result.code == 0, result.err
    assert result.out.startswith("lineage of ")
    check(run_cli("lineage", "--where", "uri = 'x'", "--db", path), "--where: an execution has no 'uri'")
    check(run_cli("lineage", "3", "--where", "id = 1", "--db", path), "give --where or a starting node")


def test_prune_where_removes_only_the_runs_it_matches(stores, run_cli, monkeypatch, tmp_path):
    monkeypatch.setenv("MLMD_BACKEND", "native")
    copy = tmp_path / "prune.db"
    shutil.copyfile(stores["native"].location.path, copy)
    expr = "last_known_state IN (FAILED, CANCELED)"
    doomed = raw_ids(stores["raw"], E, expr)
    assert doomed
    result = run_cli("prune", "--older-than", "0s", "--where", expr, "--db", copy)
    assert result.code == 0, result.err
    assert result.out.startswith(f"{len(doomed)} runs started before"), result.out
    result = run_cli("prune", "--older-than", "0s", "--where", expr, "--yes", "--db", copy)
    assert result.code == 0, result.err
    every = raw_ids(stores["raw"], E, "id > 0")
    store = mx.open_store(copy, backend="native")
    left = sorted(x.id for x in store.backend.executions())
    store.close()
    removed = set(every) - set(left)
    # Only runs it matched are gone (one it matched may stay: upstream of what another run kept).
    assert removed and removed <= set(doomed), (removed, doomed)
    check(run_cli("prune", "--older-than", "0s", "--where", "state = LIVE", "--db", copy), "an execution has no 'state'")
