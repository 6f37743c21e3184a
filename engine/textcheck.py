r"""Input no database can store: NUL characters in strings (PostgreSQL refuses them in text and jsonb).

Pure functions shared by the HTTP boundary (every request body, path and query) and the event decoder.
JSON can carry a NUL only as the escape ``\u0000`` inside a string, so a body is scanned as bytes first
and decoded only when one is there, to name its path.
"""

from __future__ import annotations

import re
from typing import Any

import msgspec

#: ``\u0000`` preceded by an even number of backslashes (``\\u0000`` is a backslash, then text).
_NUL_ESCAPE = re.compile(rb"(?<!\\)(?:\\\\)*\\u0000")
_ANY = msgspec.json.Decoder()


def nul_path(value: Any, path: str = "$") -> str | None:
    """The JSON path of the first string (key or value, at any depth) holding a NUL character, if any."""
    if isinstance(value, str):
        return path if "\x00" in value else None
    if isinstance(value, dict):
        for key, item in value.items():
            if "\x00" in str(key):
                return f"{path}.{_printable(str(key))}"
            found = nul_path(item, f"{path}.{key}")
            if found:
                return found
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found = nul_path(item, f"{path}[{index}]")
            if found:
                return found
    return None


def json_nul_path(body: bytes) -> str | None:
    """The JSON path of the first NUL character in a JSON document as sent, without decoding it when none.

    A body that is not valid JSON answers ``None``: its own decoder reports that.
    """
    if b"\\u0000" not in body or not _NUL_ESCAPE.search(body):
        return None
    try:
        return nul_path(_ANY.decode(body))
    except msgspec.DecodeError:
        return None


def _printable(text: str) -> str:
    return text.replace("\x00", "\\u0000")
