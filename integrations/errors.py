"""msgspec's decoding errors as :class:`engine.errors.ValidationError` naming the JSON path."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from engine.errors import ValidationError

if TYPE_CHECKING:
    import msgspec

_PATH = re.compile(r" - at `(?P<path>[^`]*)`$")
_NAMED_FIELD = re.compile(r"(?:missing required|unknown) field `([^`]+)`")


def from_msgspec(exc: msgspec.ValidationError | msgspec.DecodeError, *, prefix: str = "$") -> ValidationError:
    """A validation error whose ``field`` is the JSON path (under ``prefix``) msgspec reported."""
    message = str(exc)
    match = _PATH.search(message)
    path = match.group("path") if match else "$"
    if match:
        message = message[: match.start()]
    named = _NAMED_FIELD.search(message)
    if named:
        path = f"{path}.{named.group(1)}"
    path = prefix + path[1:] if path.startswith("$") else path
    return ValidationError(f"{message} (at {path})", field=path)
