"""What ml-metadata 1.17 quotes wrongly in the SQL it builds, and the guard that keeps such a
string from ever reaching it. Part of the ml-metadata backend (store/mlmd.py).

ml-metadata writes each SQL statement as text. Every string it is given (a type's name and
property names, a node's name, URI and external id, a property's value, an event's path step
key, and the names and URIs it looks up) goes into that text as a literal, quoted by each
database's own function (`Bind` in its query executors, `EscapeString` in its metadata
sources), and that quoting is wrong for some characters (tests/test_injection.py runs each):

    PostgreSQL  a backslash: PQescapeLiteral answers E'...', which ml-metadata puts inside
                quotes of its own, 'E'...'': the literal ends after the E and the rest of the
                value runs as SQL (a name lookup of ' ; CREATE TABLE t (x int); --\\ makes t)
                a NUL character: the value is cut off there
    SQLite      a NUL character: cut off there (sqlite3_mprintf("%q") reads a C string)
    MySQL       a NUL character: stored, but cut off there when ml-metadata reads it back

Struct and proto values are stored base64-encoded, and numbers as numbers: neither is quoted
text. Filter queries are another matter (MLMD's filter language copies a literal into its SQL,
and on PostgreSQL turns every double quote into a single one): store/mlmd/filters.py never puts
a quote, a backslash or anything but plain ASCII into one.

Every call to ml-metadata goes through `Guarded`, which looks at every string among its
arguments, every field of every proto included, and refuses one of those with one line naming
it and where it is, before anything is sent: nothing is written, nothing runs.
"""

from __future__ import annotations

import inspect
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

from mlmd_exercise.errors import MlmdExerciseError
from mlmd_exercise.masking import mask
from mlmd_exercise.records import Kind
from mlmd_exercise.store import tables
from mlmd_exercise.store.backend import Backend
from mlmd_exercise.store.native.dialects import DIALECTS

__all__ = ["Guarded", "SafeLookups", "guarded", "misquoted", "refusal", "storable"]

_CUT = "at which ml-metadata 1.17 cuts the value off on {db}"
# database -> (character, what it is, what ml-metadata does with it)
_MISQUOTED: Dict[str, Tuple[Tuple[str, str, str], ...]] = {
    "postgresql": (("\\", "a backslash", "which ml-metadata 1.17 quotes wrongly in its SQL on {db}, so that "
                                        "the rest of the value would run as SQL"),
                   ("\x00", "a NUL character", _CUT)),
    "sqlite": (("\x00", "a NUL character", _CUT),),
    "mysql": (("\x00", "a NUL character", _CUT),),
}
_OPAQUE = frozenset({"struct_value", "proto_value"})  # stored base64-encoded, never as quoted text
_FIELDS = {"uri": "URI", "external_id": "external id", "name": "name", "type": "type name",
           "description": "description", "version": "version"}
_MAP = {"properties": "property", "custom_properties": "custom property"}


def misquoted(text: str, database: str) -> Optional[Tuple[str, str]]:
    """(what, why) of the first character of `text` that ml-metadata quotes wrongly on this
    database, or None where it stores the text exactly."""
    for char, what, why in _MISQUOTED.get(database, ()):
        if char in text:
            return what, why
    return None


def storable(text: str, database: str) -> str:
    """`text` with each character ml-metadata quotes wrongly on this database replaced by
    U+FFFD (the mark of a character that could not be kept)."""
    for char, _, _ in _MISQUOTED.get(database, ()):
        text = text.replace(char, "\ufffd")
    return text


def refusal(text: str, where: str, database: str, store: object) -> MlmdExerciseError:
    """The error for a string ml-metadata must not be given: one line naming the value (its
    secrets masked, cut short), where it is, why, and what to do instead."""
    what, why = misquoted(text, database) or ("", "")
    shown = mask(text, whole=True)
    shown = repr(shown if len(shown) <= 80 else shown[:77] + "...")
    instead = ("open it with the native backend, the default for PostgreSQL (leave out --backend mlmd and "
               "$MLMD_BACKEND=mlmd)" if database == "postgresql"
               else "open it with the native backend (--backend native), which stores the value exactly")
    return MlmdExerciseError(
        f"refusing to give ml-metadata {where} {shown}: it holds {what}, "
        f"{why.format(db=DIALECTS[database].title)}; nothing was sent to store '{store}': {instead}")


_MAP_FIELD, _REPEATED, _SINGLE, _PROPERTIES = 0, 1, 2, 3
_field_kinds: Dict[str, Tuple[int, bool]] = {}  # field's full name -> (how it holds values, of messages)


def _kind(field: FieldDescriptor) -> Tuple[int, bool]:
    found = _field_kinds.get(field.full_name)
    if found is None:
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            values = field.message_type.fields_by_name["value"].message_type
            found = (_PROPERTIES if values is not None and values.full_name == "ml_metadata.Value" else _MAP_FIELD,
                     values is not None)
        else:
            # is_repeated where protobuf has it (6 has it and deprecates label; 4.25 has only label).
            repeated = getattr(field, "is_repeated", None)
            if repeated is None:
                repeated = field.label == FieldDescriptor.LABEL_REPEATED
            found = (_REPEATED if repeated else _SINGLE, field.message_type is not None)
        _field_kinds[field.full_name] = found
    return found


def _texts(message: Message, out: List[str]) -> List[str]:
    """Every string in a proto, appended to `out` (the quick pass: where is asked only of a
    proto that holds a string to refuse, by `_strings`)."""
    for field, value in message.ListFields():
        if field.name in _OPAQUE:
            continue
        how, messages = _kind(field)
        if how == _PROPERTIES:  # a node's properties: only a string value is text (every node has many)
            for key, item in value.items():
                out.append(key)
                if item.WhichOneof("value") == "string_value":
                    out.append(item.string_value)
        elif how in (_MAP_FIELD, _REPEATED):
            if how == _MAP_FIELD:
                out.extend(key for key in value if isinstance(key, str))
            for item in (value.values() if how == _MAP_FIELD else value):
                if messages:
                    _texts(item, out)
                elif isinstance(item, str):
                    out.append(item)
        elif messages:
            _texts(value, out)
        elif isinstance(value, str):
            out.append(value)
    return out


def _strings(message: Message, path: Tuple[Any, ...] = ()) -> Iterator[Tuple[Tuple[Any, ...], str]]:
    """(path, text) of every string in a proto: fields, map keys and values, repeated fields."""
    for field, value in message.ListFields():
        name = field.name
        if name in _OPAQUE:
            continue
        how, messages = _kind(field)
        here = path + (name,)
        if how in (_MAP_FIELD, _PROPERTIES):
            for key, item in value.items():
                if isinstance(key, str):
                    yield here + (key, "@key"), key
                if messages:
                    yield from _strings(item, here + (key,))
                elif isinstance(item, str):
                    yield here + (key,), item
        elif how == _REPEATED:
            for i, item in enumerate(value):
                if messages:
                    yield from _strings(item, here + (i,))
                elif isinstance(item, str):
                    yield here + (i,), item
        elif messages:
            yield from _strings(value, here)
        elif isinstance(value, str):
            yield here, value


def _where(message: Message, path: Tuple[Any, ...]) -> str:
    """Where in a proto a string is, in words: "the custom property 'env.command' of a Trainer
    execution", "the path step key of an INPUT event"."""
    kind = type(message).__name__  # Artifact, Execution, Context, Event, ArtifactType, ...
    noun = kind.replace("Type", " type").lower()
    type_name = getattr(message, "type", "") if kind in ("Artifact", "Execution", "Context") else ""
    if kind == "Event":
        from ml_metadata.proto import metadata_store_pb2 as pb

        type_name = pb.Event.Type.Name(message.type)
    described = f"{type_name} {noun}" if type_name else noun
    owner = f"{'an' if described[:1].upper() in 'AEIOU' else 'a'} {described}"
    if path[0] in _MAP and len(path) > 1:
        prop = f"{_MAP[path[0]]} '{path[1]}'"
        return f"the name of {prop} of {owner}" if path[-1] == "@key" else f"the {prop} of {owner}"
    if path[0] == "path":
        return f"the path step key of {owner}"
    return f"the {_FIELDS.get(str(path[0]), str(path[0]))} of {owner}"


class Guarded:
    """ml-metadata's MetadataStore, whose every call first looks at every string among its
    arguments and refuses one that ml-metadata would quote wrongly (see `refusal`)."""

    def __init__(self, store: Any, database: str, label: str) -> None:
        self._store = store
        self._database = database
        self._label = label

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._store, name)
        if not callable(attr) or name.startswith("_"):
            return attr
        names = tuple(p for p in inspect.signature(attr).parameters)
        database, label = self._database, self._label  # not self: no cycle keeps ml-metadata open

        def call(*args: Any, **kwargs: Any) -> Any:
            for i, value in enumerate(args):
                _check(value, names[i] if i < len(names) else "argument", name, database, label)
            for key, value in kwargs.items():
                _check(value, key, name, database, label)
            return attr(*args, **kwargs)

        call.__name__ = name
        setattr(self, name, call)  # found directly from now on
        return call


def _check(value: Any, parameter: str, method: str, database: str, label: str) -> None:
    """Refuses a string ml-metadata would quote wrongly: `value` itself, a proto's, a list's."""
    if isinstance(value, str):
        if misquoted(value, database):
            raise refusal(value, f"the {parameter.replace('_', ' ')} that {method} looks up", database, label)
    elif isinstance(value, Message):
        if misquoted("".join(_texts(value, [])), database):
            for path, text in _strings(value):
                if misquoted(text, database):
                    raise refusal(text, _where(value, path), database, label)
    elif isinstance(value, (list, tuple)):
        for item in value:
            _check(item, parameter, method, database, label)
    elif isinstance(getattr(value, "filter_query", None), str):  # ListOptions: filters.py's, plain
        _check(value.filter_query, "filter query", method, database, label)


def guarded(store: Any, database: str, label: str) -> Any:
    """`store` behind the guard (typed Any: it answers as ml-metadata's MetadataStore)."""
    return Guarded(store, database, label)


class SafeLookups(Backend):
    """The ml-metadata backend's ways around the strings it must not give ml-metadata: a
    lookup by such a name or URI answered by the package's own SQL (bound parameters) where
    the store offers it, and `check_text` (store/backend.py) refusing one at the call."""

    _mlmd: Any
    _sql: Optional[Callable[..., list]]
    database: str
    label: str

    def _sql_values(self, *values: str) -> Optional[Tuple[str, ...]]:
        """`values` as the package's own SQL looks them up, where one is a string ml-metadata
        would quote wrongly and this store offers that SQL; else None (ml-metadata is asked,
        and its guard refuses such a value)."""
        if self._sql is None or not any(misquoted(v, self.database) for v in values):
            return None
        return tuple(DIALECTS[self.database].stored_text(v) for v in values)

    def _ids_then(self, kind: Kind, ids: Sequence[int]) -> list:
        by_id = {Kind.ARTIFACT: self._mlmd.get_artifacts_by_id, Kind.EXECUTION: self._mlmd.get_executions_by_id,
                 Kind.CONTEXT: self._mlmd.get_contexts_by_id}[kind]
        return list(by_id(list(ids))) if ids else []

    def _by_type_and_name(self, kind: Kind, type_name: str, name: str) -> Any:
        """MLMD's node of this type and name, or None; a name it would quote wrongly is looked
        up by the package's SQL, where the store offers it (else the guard refuses it)."""
        plain = self._sql_values(type_name, name)
        if plain is not None and self._sql is not None:
            found = self._ids_then(kind, tables.ids_named(self._sql, kind.value, *plain))
            return found[0] if found else None
        by_name = {Kind.ARTIFACT: self._mlmd.get_artifact_by_type_and_name,
                   Kind.EXECUTION: self._mlmd.get_execution_by_type_and_name,
                   Kind.CONTEXT: self._mlmd.get_context_by_type_and_name}[kind]
        return by_name(type_name, name)

    def check_text(self, where: str, text: Optional[str]) -> None:
        super().check_text(where, text)
        if isinstance(text, str) and misquoted(text, self.database):
            raise refusal(text, where, self.database, self.label)

    def storable_text(self, text: str) -> str:
        return storable(text, self.database)
