"""A stored proto value (a `google.protobuf.Any`) as JSON, the same on both backends and every
Python: protobuf's JSON form for its well-known types (a Duration reads "90s"), which every
process with protobuf can decode; for any other message (TFX's, MLMD's own) its type URL and
its bytes in base64, since its JSON form would depend on which modules the process imported."""

from __future__ import annotations

import base64
from typing import Any, Dict

__all__ = ["any_json"]

_WELL_KNOWN = "type.googleapis.com/google.protobuf."
_MODULES = ("duration", "timestamp", "struct", "wrappers", "field_mask", "empty")


def any_json(message: Any) -> Dict[str, Any]:
    """`message`, a google.protobuf.Any, as a JSON-ready dict."""
    if message.type_url.startswith(_WELL_KNOWN):
        import importlib

        from google.protobuf import json_format

        for name in _MODULES:  # each well-known type registered, so that the Any unpacks here
            importlib.import_module(f"google.protobuf.{name}_pb2")
        try:
            return json_format.MessageToDict(message)
        except (TypeError, KeyError, ValueError):  # damaged bytes: shown as they are
            pass
    return {"type_url": message.type_url, "value": base64.b64encode(message.value).decode()}
