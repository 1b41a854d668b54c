"""The package's `Query` as MLMD's filter language: what the ml-metadata backend lists by.

Part of the ml-metadata backend (store/mlmd.py).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Callable, List, Optional, Sequence

from ml_metadata.metadata_store.metadata_store import ListOptions, OrderByField

from mlmd_exercise.errors import MlmdExerciseError
from mlmd_exercise.records import Kind
from mlmd_exercise.store.backend import PropertyTest, Query, TextSearch

if TYPE_CHECKING:
    from mlmd_exercise.where import Expr

__all__ = ["literal", "in_list", "where_text", "sayable", "says_text", "property_passes", "text_passes", "filters", "options", "order", "matches", "passes"]

_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")  # a property name MLMD's filter language can name
_QUOTED_KEY = re.compile(r"[A-Za-z0-9_.-]+")  # one it can name in backquotes: `env.command`, `tag.team`


# Characters a value may hold to go into a filter query as a quoted literal: MLMD copies
# the literal into its SQL as it is (no escape works on every database), so a value with a
# quote, a backslash or anything unusual is looked up another way.
_PLAIN = re.compile(r"[A-Za-z0-9._~:/?#\[\]@!$&()*+,;=% -]*")


def literal(text: str) -> Optional[str]:
    """`text` as a string literal of MLMD's filter language, or None where it holds
    characters that could not be quoted safely (those are looked up another way)."""
    return f"'{text}'" if _PLAIN.fullmatch(text) else None


def sayable(test: PropertyTest) -> bool:
    """Whether the filter language can say this test: a key it can name and, for text, values
    it can quote. The others are tested here, on what the rest of the query found."""
    return _named(test.key) is not None and (test.op == ">=" or all(literal(str(v)) is not None
                                                                    for v in test.values))


def says_text(search: Optional[TextSearch]) -> bool:
    """Whether the filter language can say this text search (else it is tested here)."""
    return search is None or not search.text or (literal(f"%{search.text}%") is not None
                                                  and all(_named(k) is not None for k in search.keys))


def _named(key: str) -> Optional[str]:
    """A property name as the filter language names it, or None where it cannot."""
    if _KEY.fullmatch(key):
        return key
    return f"`{key}`" if _QUOTED_KEY.fullmatch(key) else None


def _quoted(text: str) -> str:
    """`text` as a literal, for a test `sayable` passed (the others never reach a filter query)."""
    found = literal(text)
    if found is None:
        raise MlmdExerciseError(f"the value '{text}' cannot be searched in a filter query")
    return found


def _key(name: str) -> str:
    named = _named(name)
    if named is None:
        raise MlmdExerciseError(f"property name '{name}' cannot be searched")
    return named


def in_list(column: str, literals: Sequence[str]) -> str:
    return f"{column} IN ({', '.join(literals)})"


def _test(test: PropertyTest) -> str:
    column = f"custom_properties.{_key(test.key)}"
    if test.op == ">=":
        return f"{column}.double_value >= {float(test.values[0])!r}"
    return in_list(f"{column}.string_value", [_quoted(str(v)) for v in test.values])


def filters(query: Query, kind: Kind) -> List[str]:
    found: List[str] = []
    if query.ids is not None:
        found.append(in_list("id", [str(int(i)) for i in query.ids]) if query.ids else "id < 0")
    if query.id_above is not None:
        found.append(f"id > {int(query.id_above)}")
    if query.type_id is not None:
        found.append(f"type_id = {int(query.type_id)}")
    if query.not_type_id is not None:
        found.append(f"type_id != {int(query.not_type_id)}")
    if query.context_id is not None and kind is not Kind.CONTEXT:
        found.append(f"contexts_a.id = {int(query.context_id)}")
    if query.created_from is not None:
        found.append(f"create_time_since_epoch >= {int(query.created_from)}")
    if query.created_before is not None:
        found.append(f"create_time_since_epoch < {int(query.created_before)}")
    if query.states:
        column = "last_known_state" if kind is Kind.EXECUTION else "state"
        known = [s for s in query.states if s != "UNKNOWN"]
        if known and len(known) == len(query.states):
            found.append("(" + " OR ".join(f"{column} = {s}" for s in known) + ")")
    found += [_test(t) for t in query.custom]
    if query.where is not None:  # its aliases apart from contexts_a above (backend._where checked its strings)
        found.append(where_text(query.where, prefix="w_"))
    if query.text is not None and query.text.text:
        like = literal(f"%{query.text.text}%")  # (says_text: never None here)
        terms = [f"type LIKE {like}", f"name LIKE {like}"]
        terms += [f"custom_properties.{_key(k)}.string_value LIKE {like}" for k in query.text.keys]
        if query.text.text.isdigit() and len(query.text.text) < 18:
            terms.append(f"id = {int(query.text.text)}")
        found.append("(" + " OR ".join(terms) + ")")
    return found


def where_text(expr: "Expr", prefix: str = "") -> str:
    """A filter query's tree written out for ml-metadata 1.17, round its enum rewrite: 1.17 turns
    `state = LIVE` into SQL by a textual replace that fails where the same test comes twice
    ("Query cannot be rewritten successfully") and breaks `artifacts_a.state != LIVE` into a
    syntax error. Every enum test is written as an IN list, each one unlike the others (a value
    said again: `IN (LIVE, LIVE)`), a negated one with its `IS NULL` said outright (the meaning
    1.17 gives `!=` and `NOT IN`). The rest as `where.text` writes it."""
    from mlmd_exercise.where import ENUMS, Among, And, Compare, Not, Or, text, text_of_field

    seen: set = set()

    def among(column: str, values: List[str]) -> str:
        said = f"{column} IN ({', '.join(values)})"
        while said in seen:
            values = values + [values[-1]]
            said = f"{column} IN ({', '.join(values)})"
        seen.add(said)
        return said

    def written(e: "Expr") -> str:
        if isinstance(e, Not):
            return f"NOT ({written(e.part)})"
        if isinstance(e, (And, Or)):
            joiner = " AND " if isinstance(e, And) else " OR "
            return "(" + joiner.join(f"({written(p)})" for p in e.parts) + ")"
        if isinstance(e, (Compare, Among)) and e.field.type in ENUMS:
            column = text_of_field(e.field, prefix)
            values = [str(e.value)] if isinstance(e, Compare) else [str(v) for v in e.values]
            negated = e.op == "!=" if isinstance(e, Compare) else e.negated
            test = among(column, values)
            return f"(NOT ({test}) OR {column} IS NULL)" if negated else test
        return text(e, prefix)

    return written(expr)


def options(query: Query, filters: List[str], limit: Optional[int]) -> ListOptions:
    return ListOptions(limit=limit, order_by=OrderByField.ID if query.order == "id" else OrderByField.CREATE_TIME,
                       is_asc=query.ascending, filter_query=" AND ".join(filters))


def order(query: Query) -> Callable:
    return (lambda r: r.id) if query.order == "id" else (lambda r: (r.created_ms, r.id))


def matches(record, query: Query, kind: Kind) -> bool:
    """Whether a record passes the query's other fields, where MLMD could not filter it (a
    value its filter language cannot quote): those a lookup by URI or name can meet."""
    if query.type_id is not None and record.type_id != query.type_id:
        return False
    if query.not_type_id is not None and record.type_id == query.not_type_id:
        return False
    if query.ids is not None and record.id not in set(query.ids):
        return False
    if query.id_above is not None and record.id <= query.id_above:
        return False
    if query.states and record.state not in query.states:
        return False
    if query.created_from is not None and record.created_ms < query.created_from:
        return False
    if query.created_before is not None and record.created_ms >= query.created_before:
        return False
    if query.context_id is not None or query.custom or query.text is not None or query.where is not None:
        raise MlmdExerciseError("a lookup by a URI or name with quotes cannot be combined with "
                                "a context, property or text filter")
    return True


def _like(text: str) -> "re.Pattern[str]":
    """`%text%` as MLMD's LIKE reads it: % any text, _ any one character."""
    pattern = "".join(".*" if c == "%" else "." if c == "_" else re.escape(c) for c in text)
    return re.compile(f".*{pattern}.*", re.S)


def property_passes(record, test: PropertyTest) -> bool:
    value = record.custom.get(test.key)
    if test.op == ">=":
        return isinstance(value, (int, float)) and not isinstance(value, bool) and value >= float(test.values[0])
    return isinstance(value, str) and value in {str(v) for v in test.values}


def text_passes(record, search) -> bool:
    like = _like(search.text)
    texts = [getattr(record, "type", ""), getattr(record, "name", "") or ""]
    texts += [v for k, v in record.custom.items() if k in search.keys and isinstance(v, str)]
    if any(like.fullmatch(t) for t in texts):
        return True
    return search.text.isdigit() and len(search.text) < 18 and record.id == int(search.text)


def passes(record, query: Query, members: Optional[set] = None) -> bool:
    """Whether a record meets every field of `query` (but the order and limit), as MLMD's filter
    query would have had it: where ml-metadata has no filter language (1.21). `members`: the
    ids of the query's context, where it names one."""
    if query.ids is not None and record.id not in set(query.ids):
        return False
    if query.id_above is not None and record.id <= query.id_above:
        return False
    if query.type_id is not None and record.type_id != query.type_id:
        return False
    if query.not_type_id is not None and record.type_id == query.not_type_id:
        return False
    if members is not None and record.id not in members:
        return False
    if query.created_from is not None and record.created_ms < query.created_from:
        return False
    if query.created_before is not None and record.created_ms >= query.created_before:
        return False
    if query.states and record.state not in query.states:
        return False
    if query.uris is not None and getattr(record, "uri", None) not in set(query.uris):
        return False
    if query.names is not None and record.name not in set(query.names):
        return False
    if not all(property_passes(record, t) for t in query.custom):
        return False
    return query.text is None or not query.text.text or text_passes(record, query.text)
