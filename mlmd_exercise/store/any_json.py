"""A stored proto value (a `google.protobuf.Any`) as JSON, the same on both backends and every
Python: protobuf's JSON form for its well-known types (a Duration reads "90s"), which every
process with protobuf can decode; for any other message (TFX's, MLMD's own) its type URL and
its bytes in base64, since its JSON form would depend on which modules the process imported."""

from __future__ import annotations

import base64
from typing import Any, Dict, Optional

__all__ = ["any_json", "DOUBLE_URL", "double_any", "double_of"]

_WELL_KNOWN = "type.googleapis.com/google.protobuf."
_MODULES = ("duration", "timestamp", "struct", "wrappers", "field_mask", "empty")
# A float no database keeps as a double (NaN, the infinities, -0.0: values.exact_double) is
# stored as this well-known type in MLMD's proto_value, and both backends read it as the float.
DOUBLE_URL = _WELL_KNOWN + "DoubleValue"


def double_any(value: float) -> bytes:
    """`value` as a serialized google.protobuf.Any holding a DoubleValue (exact, NaN included)."""
    from google.protobuf import any_pb2, wrappers_pb2

    packed = any_pb2.Any()
    packed.Pack(wrappers_pb2.DoubleValue(value=value))
    return packed.SerializeToString()


def double_of(message: Any) -> Optional[float]:
    """The float a google.protobuf.Any holds where it is a DoubleValue, else None."""
    if message.type_url != DOUBLE_URL:
        return None
    from google.protobuf import message as protobuf_message, wrappers_pb2

    try:
        return wrappers_pb2.DoubleValue.FromString(message.value).value
    except protobuf_message.DecodeError:  # damaged bytes: read as another proto value would be
        return None


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
