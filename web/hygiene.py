"""Request hygiene before any handler runs: JSON bodies only as JSON, no NUL characters, ids within 64 bits.

:func:`request_hygiene` is an app-level guard, so it sees the matched handler and its parsed path
parameters but runs before the body or the query is decoded into the handler's arguments. Each refusal
is a 4xx problem naming the field, and nothing is written.
"""

from __future__ import annotations

import re
from typing import Any

from litestar import Request
from litestar.connection import ASGIConnection
from litestar.enums import RequestEncodingType
from litestar.exceptions import HTTPException
from litestar.handlers.base import BaseRouteHandler
from litestar.params import BodyKwarg, ParameterKwarg
from litestar.typing import FieldDefinition

from engine.errors import NotFound, ValidationError
from engine.textcheck import json_nul_path

#: The largest id PostgreSQL's ``bigint`` (and SQLite's INTEGER) can hold.
MAX_ID = 2**63 - 1
_LONG_INTEGER = re.compile(r"^\s*[+-]?(?P<digits>[0-9]{19,})\s*$")
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


class UnsupportedMediaType(HTTPException):
    """415: a JSON endpoint was sent a body that does not say it is JSON."""

    status_code = 415


def is_json_content_type(value: str) -> bool:
    """Whether a ``Content-Type`` names JSON (``application/json`` or any ``+json`` type)."""
    media = value.split(";", 1)[0].strip().lower()
    return media == "application/json" or (media.startswith("application/") and media.endswith("+json"))


#: Handler ``opt`` flag: the body's media type is a third party's choice (e.g. WooCommerce pings its
#: webhook with a form body), so no 415; the handler checks a signature over the raw body instead.
ANY_MEDIA_TYPE = "any_media_type"


def takes_json_body(handler: BaseRouteHandler) -> bool:
    """Whether the handler reads a JSON request body (a JSON ``data`` argument or the raw ``body``)."""
    if handler.opt.get(ANY_MEDIA_TYPE):
        return False
    parameters = handler.parsed_fn_signature.parameters
    if "body" in parameters:
        return True
    data = parameters.get("data")
    if data is None:
        return False
    kwarg = data.kwarg_definition
    return not isinstance(kwarg, BodyKwarg) or kwarg.media_type == RequestEncodingType.JSON


def _query_fields(handler: BaseRouteHandler) -> dict[str, FieldDefinition]:
    """The handler's arguments by the query name they are read from (their alias when they have one)."""
    fields: dict[str, FieldDefinition] = {}
    for name, field in handler.parsed_fn_signature.parameters.items():
        kwarg = field.kwarg_definition
        if isinstance(kwarg, ParameterKwarg) and (kwarg.header or kwarg.cookie):
            continue
        fields[getattr(kwarg, "query", None) or name] = field
    return fields


def _is_int(field: FieldDefinition) -> bool:
    if field.is_optional:
        return any(inner.is_subclass_of(int) for inner in field.inner_types)
    return field.is_subclass_of(int)


def _beyond_64_bits(value: str) -> bool:
    found = _LONG_INTEGER.match(value)
    if found is None:
        return False
    digits = found.group("digits").lstrip("0")
    return len(digits) > 19 or not -MAX_ID - 1 <= int(value) <= MAX_ID


def _check_path_and_query(connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler) -> None:
    for name, value in connection.path_params.items():
        if isinstance(value, int) and not -MAX_ID - 1 <= value <= MAX_ID:
            raise NotFound(f"no such {name}: ids fit in 64 bits", field=name)
        if isinstance(value, str) and "\x00" in value:
            raise ValidationError(f"the path parameter {name} holds a NUL character", field=name)
    query = connection.query_params
    if not query:
        return
    fields = _query_fields(handler)
    seen: set[str] = set()
    for name, value in query.multi_items():
        if "\x00" in name or "\x00" in value:
            raise ValidationError(f"the query parameter {name!r} holds a NUL character", field=name.replace("\x00", ""))
        field = fields.get(name)
        if field is None:
            continue
        if name in seen and not field.is_non_string_sequence:
            raise ValidationError(f"the query parameter {name} takes one value; it was given more", field=name)
        seen.add(name)
        if _is_int(field) and _beyond_64_bits(value):
            raise ValidationError(f"the query parameter {name} is beyond 64 bits", field=name)


async def request_hygiene(connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler) -> None:
    """Refuse what no handler should see.

    Raises:
        NotFound: an integer path parameter beyond 64 bits (no stored id can match it).
        ValidationError: a NUL character in a path or query parameter or in any string of a JSON body.
        UnsupportedMediaType: a JSON endpoint sent a body without a JSON ``Content-Type``.
    """
    _check_path_and_query(connection, handler)
    if not isinstance(connection, Request) or connection.method not in _BODY_METHODS:
        return
    headers = connection.headers
    content_type = headers.get("content-type", "")
    is_json = is_json_content_type(content_type)
    json_endpoint = takes_json_body(handler)
    has_body = headers.get("content-length", "0").strip() not in ("", "0") or "transfer-encoding" in headers
    if json_endpoint and not is_json and (has_body or content_type):
        shown = content_type or "none"
        raise UnsupportedMediaType(
            detail=f"this endpoint takes JSON: send `Content-Type: application/json` (got {shown})"
        )
    if not is_json or "body" in handler.parsed_fn_signature.parameters:
        return  # forms and other bodies are their handlers' to read; a raw-body decoder checks after the key
    body = await connection.body()
    found = json_nul_path(body)
    if found:
        raise ValidationError(
            f"a string holds a NUL character (\\u0000), which cannot be stored (at {found})", field=found
        )
