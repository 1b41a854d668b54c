"""MLMD's own query language (`ListOperationOptions.filter_query`), parsed here into a small AST.

ml-metadata 1.17 hands a filter query to ZetaSQL and turns it into SQL over MLMD's tables;
ml-metadata 1.21 dropped it. The package reads the same language itself (`parse`), and each
backend evaluates the tree over MLMD's tables (store/where_sql.py), so that `--where` means the
same whatever ml-metadata is installed. The grammar is the part of ZetaSQL that MLMD documents
and 1.17 accepts, checked against 1.17 itself (tests/test_where.py); its meaning is 1.17's:

- A node attribute (`id`, `type_id`, `type` (the type's name), `name`, `external_id`,
  `create_time_since_epoch`, `last_update_time_since_epoch`; artifacts' `uri` and `state`,
  executions' `last_known_state`), a property's value (`properties.NAME.int_value`,
  `custom_properties.NAME.string_value`, ... `double_value`, `bool_value`; an odd NAME in
  backquotes), or a neighbour's attribute through an alias: `contexts_A.name` (artifacts and
  executions), `events_A.type` (artifacts and executions), `parent_contexts_A.name`,
  `child_contexts_A.name`, `artifacts_A.uri`, `executions_A.last_known_state` (contexts).
- Every alias, and every property named, is one row joined to the node: a node matches when
  SOME choice of those rows makes the expression true. So a node without the property or
  without a context never matches an expression that names it, even under OR or NOT, and
  `NOT contexts_a.name = 'x'` means "in some context not called x".
- SQL's three values: a comparison with a missing value (NULL) is neither true nor false, and
  NOT keeps it so; but an enum's `!=` and `NOT IN` (`state != LIVE`) also hold where the node
  has no state, as 1.17 rewrites them.
- Types as ZetaSQL checks them: a number compares with a number (int or double), a string with
  a string, a bool with `true`/`false`; LIKE takes a string; enums take their names unquoted.

Refused here though 1.17 takes them (the rest of ZetaSQL): arithmetic, functions, `NULL` as a
value, an enum by its number, `<` on a bool. Answered here though 1.17 fails on them (its enum
rewrite is textual): an enum test written twice, `!=` and NOT IN on a neighbour's enum. A
property's name is read as stored (1.17 lowercases it, and so never finds `Acc`). Refused as 1.17 refuses them: what ZetaSQL
cannot parse or type, and what 1.17 then fails to run (`parent_contexts_a.create_time_since_epoch`).
A string literal is data: its escapes (`\\'`) are read as ZetaSQL reads them, and the backends
bind it, never paste it (1.17 copies it into its SQL).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterator, List, Optional, Tuple, Union

from mlmd_exercise.errors import UsageError
from mlmd_exercise.records import EVENT_TYPES, ArtifactState, ExecutionState, Kind

__all__ = ["Field", "Compare", "Among", "Like", "IsNull", "Truth", "Not", "And", "Or", "Expr", "Value",
           "WhereError", "parse", "text", "text_of_field", "strings", "fields", "ENUMS"]

Value = Union[int, float, str, bool]


class WhereError(UsageError):
    """An expression the language does not take: one line naming where and what was expected."""


@dataclass(frozen=True)
class Field:
    """What a test reads: `scope` "node" (an attribute of the node itself), "properties" or
    "custom_properties" (`key` the property's name, `name` the value column), or a neighbour
    ("contexts", "parent_contexts", "child_contexts", "artifacts", "executions", "events"; `key`
    its alias); `name` the attribute; `type` "int", "double", "string", "bool" or an enum
    ("state", "last_known_state", "event")."""

    scope: str
    name: str
    key: str = ""
    type: str = "int"


@dataclass(frozen=True)
class Compare:
    """`field op value`, op one of = != < <= > >= (an enum's value: its name)."""

    field: Field
    op: str
    value: Value


@dataclass(frozen=True)
class Among:
    """`field [NOT] IN (values)`."""

    field: Field
    values: Tuple[Value, ...]
    negated: bool = False


@dataclass(frozen=True)
class Like:
    """`field [NOT] LIKE pattern` (% any text, _ one character; case as the database's LIKE)."""

    field: Field
    pattern: str
    negated: bool = False


@dataclass(frozen=True)
class IsNull:
    """`field IS [NOT] NULL`."""

    field: Field
    negated: bool = False


@dataclass(frozen=True)
class Truth:
    """A bool value alone: `properties.b.bool_value`."""

    field: Field


@dataclass(frozen=True)
class Not:
    part: "Expr"


@dataclass(frozen=True)
class And:
    parts: Tuple["Expr", ...]


@dataclass(frozen=True)
class Or:
    parts: Tuple["Expr", ...]


Expr = Union[Compare, Among, Like, IsNull, Truth, Not, And, Or]

# Each enum's names, in MLMD's order (a name's position is the number MLMD stores); 1.17 knows
# these artifact states and event types only.
ENUMS = {
    "state": tuple(s.value for s in ArtifactState)[:5],
    "last_known_state": tuple(s.value for s in ExecutionState),
    "event": EVENT_TYPES[:7],
}

_TIMES = {"create_time_since_epoch": "int", "last_update_time_since_epoch": "int"}
_COMMON = {"id": "int", "type_id": "int", "type": "string", "name": "string", "external_id": "string", **_TIMES}
# The node's own attributes, by kind.
_ATTRIBUTES = {
    Kind.ARTIFACT: {**_COMMON, "uri": "string", "state": "state"},
    Kind.EXECUTION: {**_COMMON, "last_known_state": "last_known_state"},
    Kind.CONTEXT: dict(_COMMON),
}
_VALUES = {"int_value": "int", "double_value": "double", "string_value": "string", "bool_value": "bool"}
# A neighbour's attributes, as 1.17 joins them (its joins hold no type_id or external_id, and
# a parent's or child's context no times).
_BASIC = {"id": "int", "name": "string", "type": "string"}
_NEIGHBOURS = {
    Kind.ARTIFACT: {"contexts": {**_BASIC, **_TIMES},
                    "events": {"type": "event", "milliseconds_since_epoch": "int", "execution_id": "int"}},
    Kind.EXECUTION: {"contexts": {**_BASIC, **_TIMES},
                     "events": {"type": "event", "milliseconds_since_epoch": "int", "artifact_id": "int"}},
    Kind.CONTEXT: {"parent_contexts": dict(_BASIC), "child_contexts": dict(_BASIC),
                   "artifacts": {**_BASIC, **_TIMES, "uri": "string", "state": "state"},
                   "executions": {**_BASIC, **_TIMES, "last_known_state": "last_known_state"}},
}
_NUMBERS = ("int", "double")
_KEYWORDS = {"AND", "OR", "NOT", "IN", "LIKE", "IS", "NULL", "BETWEEN", "TRUE", "FALSE"}
_TOKEN = re.compile(r"""
    (?P<space>\s+)
  | (?P<number>(?:0[xX][0-9A-Fa-f]+|(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)(?![A-Za-z0-9_]))
  | (?P<word>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<string>'(?:[^'\\\n]|\\.)*'|"(?:[^"\\\n]|\\.)*")
  | (?P<backquoted>`[^`]*`)
  | (?P<op><=|>=|!=|<>|=|<|>)
  | (?P<punct>[(),.\-])
""", re.X)
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", "'": "'", '"': '"', "`": "`", "?": "?",
            "a": "\a", "b": "\b", "f": "\f", "v": "\v"}


@dataclass(frozen=True)
class _Token:
    kind: str  # number, word, string, backquoted, op, punct, end
    text: str
    at: int  # offset in the expression


def _what(token: _Token) -> str:
    return "the end" if token.kind == "end" else f"'{token.text}'"


class _Parser:
    def __init__(self, source: str, kind: Kind, label: str) -> None:
        self.source, self.kind, self.label = source, kind, label
        self.tokens = self._tokens()
        self.i = 0

    def fail(self, message: str, token: Optional[_Token] = None) -> WhereError:
        at = (token or self.peek()).at
        return WhereError(f"{self.label}: {message} at column {at + 1}: {self.source!r}"
                          if "\n" in self.source or '"' in self.source
                          else f'{self.label}: {message} at column {at + 1}: "{self.source}"')

    def _tokens(self) -> List[_Token]:
        found: List[_Token] = []
        at = 0
        while at < len(self.source):
            m = _TOKEN.match(self.source, at)
            if m is None:
                char = self.source[at]
                if char in "'\"":
                    raise self.fail("a string that is never closed", _Token("string", char, at))
                raise self.fail(f"unexpected character {char!r}", _Token("punct", char, at))
            if m.lastgroup != "space":
                found.append(_Token(str(m.lastgroup), m.group(), at))
            at = m.end()
        found.append(_Token("end", "", len(self.source)))
        return found

    def peek(self, ahead: int = 0) -> _Token:
        return self.tokens[min(self.i + ahead, len(self.tokens) - 1)]

    def take(self) -> _Token:
        token = self.peek()
        self.i += 1
        return token

    def keyword(self, *words: str) -> bool:
        token = self.peek()
        if token.kind == "word" and token.text.upper() in words:
            self.i += 1
            return True
        return False

    def expect(self, text: str, after: str) -> _Token:
        token = self.peek()
        if token.text.upper() != text or token.kind in ("string", "backquoted"):
            raise self.fail(f"expected '{text}' {after}, not {_what(token)}")
        return self.take()

    # -- expressions --------------------------------------------------------------------

    def whole(self) -> Expr:
        if self.peek().kind == "end":
            raise self.fail("expected an expression")
        expr = self.disjunction()
        if self.peek().kind != "end":
            token = self.peek()
            raise self.fail(f"expected AND, OR or the end, not {_what(token)}")
        return expr

    def disjunction(self) -> Expr:
        parts = [self.conjunction()]
        while self.keyword("OR"):
            parts.append(self.conjunction())
        return parts[0] if len(parts) == 1 else Or(tuple(parts))

    def conjunction(self) -> Expr:
        parts = [self.negation()]
        while self.keyword("AND"):
            parts.append(self.negation())
        return parts[0] if len(parts) == 1 else And(tuple(parts))

    def negation(self) -> Expr:
        if self.keyword("NOT"):
            return Not(self.negation())
        token = self.peek()
        if token.kind == "punct" and token.text == "(":
            self.take()
            expr = self.disjunction()
            self.expect(")", f"to close the '(' at column {token.at + 1}")
            return expr
        return self.predicate()

    def predicate(self) -> Expr:
        start = self.peek()
        field = self.field()
        token = self.peek()
        if token.kind == "op":
            self.take()
            op = "!=" if token.text == "<>" else token.text
            if field.type == "bool" and op not in ("=", "!="):
                raise self.fail(f"{_name(field)} is a bool: it takes = or !=, not '{token.text}'", token)
            if field.type in ENUMS and op not in ("=", "!="):
                raise self.fail(f"{_name(field)} takes =, !=, IN or NOT IN, not '{token.text}'", token)
            return Compare(field, op, self.value(field, f"after '{token.text}'"))
        negated = self.keyword("NOT")
        if self.keyword("IN"):
            return Among(field, self.values(field), negated)
        if self.keyword("LIKE"):
            if field.type != "string":
                raise self.fail(f"LIKE takes a string, and {_name(field)} is not one", self.tokens[self.i - 1])
            pattern = self.value(field, "after LIKE")
            assert isinstance(pattern, str)
            return Like(field, pattern, negated)
        if self.keyword("BETWEEN"):
            if field.type in ENUMS or field.type == "bool":
                raise self.fail(f"{_name(field)} takes =, !=, IN or NOT IN, not BETWEEN", self.tokens[self.i - 1])
            low = self.value(field, "after BETWEEN")
            self.expect("AND", "between BETWEEN's two values")
            both = And((Compare(field, ">=", low), Compare(field, "<=", self.value(field, "after AND"))))
            return Not(both) if negated else both
        if negated:
            raise self.fail(f"expected IN, LIKE or BETWEEN after NOT, not {_what(self.peek())}")
        if self.keyword("IS"):
            negated = self.keyword("NOT")
            if not self.keyword("NULL"):
                raise self.fail(f"expected NULL after IS{' NOT' if negated else ''}, not {_what(self.peek())}")
            return IsNull(field, negated)
        if field.type == "bool":
            return Truth(field)
        if token.kind == "end":
            raise self.fail(f"expected a comparison after {_name(field)}")
        raise self.fail(f"expected a comparison (=, !=, <, IN, LIKE, IS NULL, ...) after "
                        f"{self.source[start.at:token.at].strip()}, not {_what(token)}")

    # -- what a test reads ---------------------------------------------------------------

    def word(self, after: str) -> _Token:
        token = self.peek()
        if token.kind != "word":
            raise self.fail(f"expected a name {after}, not {_what(token)}")
        return self.take()

    def dot(self, after: str) -> None:
        token = self.peek()
        if not (token.kind == "punct" and token.text == "."):
            raise self.fail(f"expected '.' after {after}, not {_what(token)}")
        self.take()

    def field(self) -> Field:
        token = self.peek()
        if token.kind != "word" or token.text.upper() in _KEYWORDS:
            raise self.fail(f"expected an attribute, a property or a '(', not {_what(token)}")
        self.take()
        name = token.text.lower()
        if name in ("properties", "custom_properties"):
            self.dot(token.text)
            key_token = self.peek()
            if key_token.kind == "backquoted":
                key = key_token.text[1:-1]
                if not key:
                    raise self.fail("expected a property's name in the backquotes", key_token)
                self.take()
            elif key_token.kind == "word":
                key = self.take().text
            else:
                raise self.fail(f"expected a property's name after '{token.text}.', not {_what(key_token)}")
            self.dot(f"the property's name")
            column = self.peek()
            value = _VALUES.get(column.text) if column.kind == "word" else None
            if value is None:
                raise self.fail(f"expected int_value, double_value, string_value or bool_value, not {_what(column)}")
            self.take()
            return Field(name, column.text, key, value)
        attributes = _ATTRIBUTES[self.kind]
        if name in attributes:
            if self.peek().kind == "punct" and self.peek().text == ".":
                raise self.fail(f"{token.text} has no fields")
            return Field("node", name, "", attributes[name])
        for scope, fields in _NEIGHBOURS[self.kind].items():
            if name.startswith(scope + "_") and len(name) > len(scope) + 1:
                alias = name[len(scope) + 1:]
                self.dot(token.text)
                attribute = self.word(f"after '{token.text}.'")
                kind = fields.get(attribute.text.lower())
                if kind is None:
                    raise self.fail(f"{scope}_{alias} has no field '{attribute.text}' (it has "
                                    f"{', '.join(fields)})", attribute)
                return Field(scope, attribute.text.lower(), alias, kind)
        kinds = {Kind.ARTIFACT: "an artifact", Kind.EXECUTION: "an execution", Kind.CONTEXT: "a context"}
        known = ", ".join(list(attributes) + ["properties.NAME.int_value"]
                          + [f"{s}_ALIAS.{next(iter(f))}" for s, f in _NEIGHBOURS[self.kind].items()])
        raise self.fail(f"{kinds[self.kind]} has no '{token.text}' (it has {known})", token)

    # -- values --------------------------------------------------------------------------

    def values(self, field: Field) -> Tuple[Value, ...]:
        self.expect("(", "after IN")
        found = [self.value(field, "in the list")]
        while self.peek().kind == "punct" and self.peek().text == ",":
            self.take()
            found.append(self.value(field, "after ','"))
        self.expect(")", "to close the list")
        return tuple(found)

    def value(self, field: Field, after: str) -> Value:
        token = self.peek()
        wanted = ("a number" if field.type in _NUMBERS else "a string" if field.type == "string"
                  else "true or false" if field.type == "bool" else f"one of {', '.join(ENUMS[field.type])}")
        if token.kind == "end":
            raise self.fail(f"expected a value {after}")
        if field.type in ENUMS:
            if token.kind == "word" and token.text in ENUMS[field.type]:
                self.take()
                return token.text
            raise self.fail(f"expected {wanted} {after} (for {_name(field)}), not {_what(token)}")
        negative = token.kind == "punct" and token.text == "-"
        if negative:
            self.take()
            token = self.peek()
        if token.kind == "number" and field.type in _NUMBERS:
            self.take()
            number = -_number(token.text) if negative else _number(token.text)
            if isinstance(number, int) and not -2 ** 63 <= number < 2 ** 63:
                raise self.fail(f"{token.text} is beyond a 64-bit whole number (ZetaSQL's INT64)", token)
            if isinstance(number, float) and number in (float("inf"), float("-inf")):
                raise self.fail(f"{token.text} is beyond a double", token)
            return number
        if not negative and token.kind == "string" and field.type == "string":
            self.take()
            return self.unquoted(token)
        if not negative and token.kind == "word" and token.text.upper() in ("TRUE", "FALSE") and field.type == "bool":
            self.take()
            return token.text.upper() == "TRUE"
        if token.kind == "word" and token.text.upper() == "NULL":
            raise self.fail(f"expected {wanted} {after}, not NULL (test for no value with IS NULL)")
        raise self.fail(f"expected {wanted} {after} (for {_name(field)}), not {_what(token)}")

    def unquoted(self, token: _Token) -> str:
        body = token.text[1:-1]
        out: List[str] = []
        k = 0
        while k < len(body):
            c = body[k]
            if c == "\\":
                escaped = body[k + 1]
                if escaped not in _ESCAPES:
                    raise self.fail(f"an escape ZetaSQL does not know: '\\{escaped}'", _Token("string", "", token.at + k + 1))
                out.append(_ESCAPES[escaped])
                k += 2
            else:
                out.append(c)
                k += 1
        return "".join(out)


def _number(text: str) -> Union[int, float]:
    if text[:2].lower() == "0x":
        return int(text, 16)
    return float(text) if any(c in text for c in ".eE") else int(text)


def _name(field: Field) -> str:
    return text_of_field(field)


def parse(expression: str, kind: Kind, label: str = "--where") -> Expr:
    """The tree of a filter query on nodes of `kind`.

    Raises:
        WhereError: one line, `label` first, naming the column where the expression fails and
            what was expected there.
    """
    return _Parser(expression, kind, label).whole()


# -- the expression as text -------------------------------------------------------------


def text_of_field(field: Field, prefix: str = "") -> str:
    """A field as the language writes it; `prefix` before every alias (so that aliases a
    caller adds of its own cannot meet these)."""
    if field.scope == "node":
        return field.name
    if field.scope in ("properties", "custom_properties"):
        key = field.key if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", field.key) else f"`{field.key}`"
        return f"{field.scope}.{key}.{field.name}"
    return f"{field.scope}_{prefix}{field.key}.{field.name}"


def _literal(field: Field, value: Value) -> str:
    if field.type in ENUMS:
        return str(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
    return repr(value)


def text(expr: Expr, prefix: str = "") -> str:
    """The expression written out again in the language, fully parenthesized (what 1.17 reads
    as the same expression); `prefix`: see `text_of_field`."""
    if isinstance(expr, Compare):
        return f"{text_of_field(expr.field, prefix)} {expr.op} {_literal(expr.field, expr.value)}"
    if isinstance(expr, Among):
        values = ", ".join(_literal(expr.field, v) for v in expr.values)
        return f"{text_of_field(expr.field, prefix)} {'NOT IN' if expr.negated else 'IN'} ({values})"
    if isinstance(expr, Like):
        return (f"{text_of_field(expr.field, prefix)} {'NOT LIKE' if expr.negated else 'LIKE'} "
                f"{_literal(expr.field, expr.pattern)}")
    if isinstance(expr, IsNull):
        return f"{text_of_field(expr.field, prefix)} IS {'NOT NULL' if expr.negated else 'NULL'}"
    if isinstance(expr, Truth):
        return text_of_field(expr.field, prefix)
    if isinstance(expr, Not):
        return f"NOT ({text(expr.part, prefix)})"
    joiner = " AND " if isinstance(expr, And) else " OR "
    return "(" + joiner.join(f"({text(p, prefix)})" for p in expr.parts) + ")"


def strings(expr: Expr) -> Iterator[str]:
    """Every string the expression holds: its string values and LIKE patterns, property names."""
    if isinstance(expr, (Not,)):
        yield from strings(expr.part)
    elif isinstance(expr, (And, Or)):
        for part in expr.parts:
            yield from strings(part)
    else:
        if expr.field.scope in ("properties", "custom_properties"):
            yield expr.field.key
        if expr.field.type in ENUMS:
            return
        if isinstance(expr, Compare) and isinstance(expr.value, str):
            yield expr.value
        elif isinstance(expr, Among):
            yield from (v for v in expr.values if isinstance(v, str))
        elif isinstance(expr, Like):
            yield expr.pattern


def fields(expr: Expr) -> Iterator[Field]:
    """Every field the expression reads, in order."""
    if isinstance(expr, Not):
        yield from fields(expr.part)
    elif isinstance(expr, (And, Or)):
        for part in expr.parts:
            yield from fields(part)
    else:
        yield expr.field
