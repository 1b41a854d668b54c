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
and on PostgreSQL turns every double quote into a single one): store/mlmd_filters.py never puts
a quote, a backslash or anything but plain ASCII into one.

Every call to ml-metadata goes through `Guarded`, which looks at every string among its
arguments, every field of every proto included, and refuses one of those with one line naming
it and where it is, before anything is sent: nothing is written, nothing runs.
"""

from __future__ import annotations

import inspect
from typing import Any, Dict, Iterator, Optional, Tuple

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

from mlmd_exercise.errors import MlmdExerciseError
from mlmd_exercise.masking import mask

__all__ = ["Guarded", "guarded", "misquoted", "refusal"]

_CUT = "at which ml-metadata 1.17 cuts the value off on {db}"
# database -> (character, what it is, what ml-metadata does with it)
_MISQUOTED: Dict[str, Tuple[Tuple[str, str, str], ...]] = {
    "postgresql": (("\\", "a backslash", "which ml-metadata 1.17 quotes wrongly in its SQL on {db}, so that "
                                        "the rest of the value would run as SQL"),
                   ("\x00", "a NUL character", _CUT)),
    "sqlite": (("\x00", "a NUL character", _CUT),),
    "mysql": (("\x00", "a NUL character", _CUT),),
}
_NAMES = {"postgresql": "PostgreSQL", "sqlite": "SQLite", "mysql": "MySQL"}
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
        f"{why.format(db=_NAMES.get(database, database))}; nothing was sent to store '{store}': {instead}")


def _strings(message: Message, path: Tuple[Any, ...] = ()) -> Iterator[Tuple[Tuple[Any, ...], str]]:
    """(path, text) of every string in a proto: fields, map keys and values, repeated fields."""
    for field, value in message.ListFields():
        name = field.name
        if name in _OPAQUE:
            continue
        here = path + (name,)
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            value_field = field.message_type.fields_by_name["value"]
            for key, item in value.items():
                if isinstance(key, str):
                    yield here + (key, "@key"), key
                if value_field.message_type is not None:
                    yield from _strings(item, here + (key,))
                elif isinstance(item, str):
                    yield here + (key,), item
        elif field.label == FieldDescriptor.LABEL_REPEATED:
            for i, item in enumerate(value):
                if isinstance(item, Message):
                    yield from _strings(item, here + (i,))
                elif isinstance(item, str):
                    yield here + (i,), item
        elif isinstance(value, Message):
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
        self._chars = tuple(char for char, _, _ in _MISQUOTED.get(database, ()))

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._store, name)
        if not callable(attr) or name.startswith("_"):
            return attr
        names = tuple(p for p in inspect.signature(attr).parameters)

        def call(*args: Any, **kwargs: Any) -> Any:
            for i, value in enumerate(args):
                self._check(value, names[i] if i < len(names) else "argument", name)
            for key, value in kwargs.items():
                self._check(value, key, name)
            return attr(*args, **kwargs)

        call.__name__ = name
        setattr(self, name, call)  # found directly from now on
        return call

    def _bad(self, text: str) -> bool:
        return any(char in text for char in self._chars)

    def _check(self, value: Any, parameter: str, method: str) -> None:
        if isinstance(value, str):
            if self._bad(value):
                where = f"the {parameter.replace('_', ' ')} that {method} looks up"
                raise refusal(value, where, self._database, self._label)
        elif isinstance(value, Message):
            for path, text in _strings(value):
                if self._bad(text):
                    raise refusal(text, _where(value, path), self._database, self._label)
        elif isinstance(value, (list, tuple)):
            for item in value:
                self._check(item, parameter, method)


def guarded(store: Any, database: str, label: str) -> Any:
    """`store` behind the guard (typed Any: it answers as ml-metadata's MetadataStore)."""
    return Guarded(store, database, label)
