"""The OpenAPI document, kept truthful: security schemes, problem responses, and an offline reference.

:class:`ApiDocumentation` is a route plugin that declares, on every documented operation, what it derives
from the handler: the key it needs (``principal`` = secret key, ``caller`` = secret or publishable key,
``/widgets/v1`` = publishable key in ``?key=``) and the RFC 9457 problem responses it can answer (401/403
for keys, 404 for path parameters, 422 always (NUL characters are refused in any
parameter) and 400 with inputs, 409 for writes, 413/415 for JSON bodies).
A handler's own ``responses=`` and ``security=`` win. The Swagger UI assets are served from
``web/static/vendor`` (no CDN), so ``/schema`` works without internet.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import msgspec
from litestar._openapi.schema_generation.plugins.struct import StructSchemaPlugin
from litestar.enums import ParamType
from litestar.handlers import HTTPRouteHandler
from litestar.openapi import OpenAPIConfig, ResponseSpec
from litestar.openapi.plugins import SwaggerRenderPlugin
from litestar.openapi.spec import (
    Components,
    OpenAPIFormat,
    OpenAPIMediaType,
    OpenAPIResponse,
    OpenAPIType,
    Operation,
    Parameter,
    PathItem,
    Reference,
    RequestBody,
    Schema,
    SecurityRequirement,
    SecurityScheme,
)
from litestar.plugins import PluginProtocol, ReceiveRoutePlugin
from litestar.routes import BaseRoute, HTTPRoute
from litestar.typing import FieldDefinition

from engine import topics
from web.hygiene import takes_json_body
from web.names import CONSOLE_COOKIE

PROBLEM_JSON = "application/problem+json"
SWAGGER_VERSION = "5.36.0"
VENDOR = "/static/vendor/swagger-ui"


class Problem(msgspec.Struct, kw_only=True):
    """An RFC 9457 problem: every error answer of the API."""

    type: str
    """A URI naming the kind of problem (``https://questline.dev/problems/<slug>``)."""
    title: str
    status: int
    detail: str
    field: str | None = None
    """The offending input: a JSON path into the body (``$.events[2].occurred_at``) or a parameter name."""
    errors: list[dict[str, Any]] | None = None
    """Request validation: each error with its message, key and source."""


_DESCRIPTIONS = {
    400: "Malformed request (for example a body that is not JSON)",
    401: "No API key, or an unknown or revoked one",
    403: "The key may not do this (for example a publishable key on a secret-key endpoint)",
    404: "Nothing of the brand is found under this path",
    409: "Conflicts with the current state (for example an awarded badge, an ended campaign, a moved-on program)",
    410: "Gone: the award was revoked",
    413: "The body or batch is too large",
    415: "The body is not sent as JSON (`Content-Type: application/json`)",
    422: "Invalid input: the problem's `field` names the JSON path or parameter",
    429: "Too many requests",
    503: "A dependency is unavailable; retry after `Retry-After`",
}


def problem(status: int, description: str | None = None) -> ResponseSpec:
    """An ``application/problem+json`` response of ``status``."""
    return ResponseSpec(
        data_container=Problem,
        generate_examples=False,
        description=description or _DESCRIPTIONS.get(status, "Error"),
        media_type=PROBLEM_JSON,
    )


def problems(*statuses: int) -> dict[int, ResponseSpec]:
    """Problem responses for ``statuses`` (for a handler's ``responses=``)."""
    return {status: problem(status) for status in statuses}


def answers(
    status: int, model: Any, description: str, *, media_type: str = "application/json"
) -> dict[int, ResponseSpec]:
    """Another status a handler answers with ``model`` (e.g. 200 when a PUT replaced, 201 when it created)."""
    return {
        status: ResponseSpec(
            data_container=model, generate_examples=False, description=description, media_type=media_type
        )
    }


@dataclass
class JsonOrYaml(Operation):
    """An operation whose 200 answer is JSON or, on request, the same document as YAML (``application/yaml``)."""

    def __post_init__(self) -> None:
        """Offer the JSON answer's schema for ``application/yaml`` too."""
        ok = (self.responses or {}).get("200")
        if isinstance(ok, OpenAPIResponse) and ok.content and "application/json" in ok.content:
            ok.content["application/yaml"] = OpenAPIMediaType(schema=ok.content["application/json"].schema)


SECURITY_SCHEMES: dict[str, SecurityScheme] = {
    "secretKey": SecurityScheme(
        type="http",
        scheme="bearer",
        bearer_format="sk_live_…",
        description="The brand's secret key (`sk_…`) as `Authorization: Bearer <key>`; server-side use only. "
        "Endpoints that also read with a publishable key (`pk_…`) accept it the same way.",
    ),
    "secretKeyHeader": SecurityScheme(
        type="apiKey",
        name="X-Api-Key",
        security_scheme_in="header",
        description="The same key in the `X-Api-Key` header, for clients that cannot set `Authorization`.",
    ),
    "publishableKey": SecurityScheme(
        type="apiKey",
        name="key",
        security_scheme_in="query",
        description="The brand's publishable key (`pk_…`), safe in web pages: widgets and public board reads.",
    ),
    "segmentWriteKey": SecurityScheme(
        type="http",
        scheme="basic",
        description="Segment's tracking API style: the brand's secret key as the Basic username (empty password), "
        "as Segment's libraries send their write key; a `writeKey` body field is accepted too.",
    ),
    "consoleSession": SecurityScheme(
        type="apiKey",
        name=CONSOLE_COOKIE,
        security_scheme_in="cookie",
        description="The console's session cookie, set by signing in at `/console/sign-in` (console pages only).",
    ),
}

SECRET_KEY: list[SecurityRequirement] = [{"secretKey": []}, {"secretKeyHeader": []}]
ANY_KEY: list[SecurityRequirement] = [*SECRET_KEY, {"publishableKey": []}]
PUBLISHABLE_KEY: list[SecurityRequirement] = [{"publishableKey": []}]
SEGMENT_KEY: list[SecurityRequirement] = [{"segmentWriteKey": []}, {"secretKey": []}]

#: Handler arguments that are not client input.
_NOT_INPUT = frozenset({"self", "request", "socket", "state", "scope", "headers", "cookies", "query", "body", "data"})
_WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def handler_security(handler: HTTPRouteHandler, path: str) -> list[SecurityRequirement]:
    """The keys an operation accepts, read from the principal it depends on (or its path, for widgets)."""
    parameters = handler.parsed_fn_signature.parameters
    if "principal" in parameters:
        return SECRET_KEY
    if "caller" in parameters:
        return ANY_KEY
    if path.startswith("/widgets/v1/"):
        return PUBLISHABLE_KEY
    if path.startswith("/segment/"):
        return SEGMENT_KEY  # the handlers read the write key themselves, in every form Segment's clients send it
    return []


def handler_statuses(handler: HTTPRouteHandler, route: HTTPRoute, *, secured: bool) -> set[int]:
    """The error statuses an operation can answer, from what it takes."""
    statuses: set[int] = {422}  # any parameter, even one the handler ignores, is refused with a NUL character
    if secured:
        statuses |= {401, 403}
    if route.path_parameters:
        statuses.add(404)
    inputs = set(handler.parsed_fn_signature.parameters) - _NOT_INPUT - set(handler.resolve_dependencies())
    json_body = takes_json_body(handler)
    if inputs or json_body or route.path_parameters:
        statuses.add(400)
    if json_body:
        statuses |= {413, 415}
    if secured and _WRITES & set(handler.http_methods):
        statuses.add(409)
    if secured and route.path.startswith("/v1/"):
        statuses.add(429)  # every keyed /v1 request takes a token from its key's bucket (web/ratelimit.py)
    if secured or _uses_services(handler):
        statuses.add(503)  # the database (or Redis, for reads that need it) does not answer (web/unavailable.py)
    return statuses


def _uses_services(handler: HTTPRouteHandler) -> bool:
    """Whether the operation reaches a dependency (its own ``services`` or one a dependency of it takes)."""
    names = set(handler.parsed_fn_signature.parameters) | set(handler.resolve_dependencies())
    return bool(names & {"services", "principal", "caller", "db", "session"})


class ApiDocumentation(ReceiveRoutePlugin):
    """Declare security and problem responses on every documented operation (see the module docstring)."""

    def receive_route(self, route: BaseRoute) -> None:
        """Complete each handler's ``security`` and ``responses`` before the document is built."""
        if not isinstance(route, HTTPRoute):
            return
        for handler in route.route_handlers:
            if not handler.resolve_include_in_schema():
                continue
            security = handler.security if handler.security is not None else handler_security(handler, route.path)
            if security and handler.security is None:
                handler.security = security
                handler._resolved_security = list(security)  # a cached resolution would hide the new value
            declared = dict(handler.responses or {})
            for status in sorted(handler_statuses(handler, route, secured=bool(security))):
                declared.setdefault(status, problem(status))
            handler.responses = declared


class StrictStructSchema(StructSchemaPlugin):
    """msgspec structs that refuse unknown fields say so: ``additionalProperties: false``."""

    def to_openapi_schema(self, field_definition: FieldDefinition, schema_creator: Any) -> Schema:
        """The struct's schema, closed when the struct forbids unknown fields."""
        schema = super().to_openapi_schema(field_definition, schema_creator)
        config = getattr(field_definition.type_, "__struct_config__", None)
        if config is not None and config.forbid_unknown_fields:
            schema.additional_properties = False
        return schema


_STRING = Schema(type=OpenAPIType.STRING)
_WEBHOOK_HEADERS = (
    ("webhook-id", "The message id (`msg_…`): dedupe on it, a retry or replay repeats it."),
    ("webhook-timestamp", "Seconds since the epoch when it was sent; refuse one more than 5 minutes off."),
    ("webhook-signature", "`v1,<base64 HMAC-SHA256 of id.timestamp.body>` with the endpoint's `whsec_` secret; "
     "two space-separated signatures (new, old) during a secret rotation's overlap."),
)  # fmt: skip


def webhook_items() -> dict[str, PathItem | Reference]:
    """The document's ``webhooks``: one operation per topic of the catalog, with an example message."""
    items: dict[str, PathItem | Reference] = {}
    for topic in topics.TOPICS:
        example = topics.envelope(topic.name, topic.example, datetime(2026, 12, 6, 9, 30, tzinfo=UTC))
        body = Schema(
            type=OpenAPIType.OBJECT,
            required=["type", "timestamp", "data"],
            properties={
                "type": Schema(type=OpenAPIType.STRING, const=topic.name),
                "timestamp": Schema(type=OpenAPIType.STRING, format=OpenAPIFormat.DATE_TIME),
                "data": Schema(type=OpenAPIType.OBJECT, description=topic.summary),
            },
        )
        summary = f"{topic.name}{' (sent only while an endpoint subscribes)' if topic.derived else ''}"
        items[topic.name] = PathItem(
            post=Operation(
                summary=summary,
                description=topic.summary,
                operation_id=f"webhook_{topic.name.replace('.', '_')}",
                tags=["webhooks"],
                parameters=[
                    Parameter(name=name, param_in=ParamType.HEADER, required=True, schema=_STRING, description=text)
                    for name, text in _WEBHOOK_HEADERS
                ],
                request_body=RequestBody(
                    required=True, content={"application/json": OpenAPIMediaType(schema=body, example=example)}
                ),
                responses={
                    "2XX": OpenAPIResponse(description="Received: any 2xx. 410 disables the endpoint; others retry.")
                },
            )
        )
    return items


def openapi_plugins() -> list[PluginProtocol]:
    """The plugins that keep the document truthful (for ``Litestar(plugins=…)``)."""
    return [ApiDocumentation(), StrictStructSchema()]


def openapi_config(version: str) -> OpenAPIConfig:
    """The document's metadata, security schemes, and the Swagger UI served from this server's own files."""
    return OpenAPIConfig(
        title="Questline API",
        version=version,
        description=(
            "Gamified engagement engine for loyalty programs: events in; points, challenges, badges and ranks out. "
            "Every error is an RFC 9457 `application/problem+json` answer whose `field` names the offending input."
        ),
        path="/schema",
        webhooks=webhook_items(),
        components=Components(security_schemes=dict(SECURITY_SCHEMES)),
        render_plugins=[
            SwaggerRenderPlugin(
                version=SWAGGER_VERSION,
                js_url=f"{VENDOR}/swagger-ui-bundle.js",
                css_url=f"{VENDOR}/swagger-ui.css",
                standalone_preset_js_url=f"{VENDOR}/swagger-ui-standalone-preset.js",
                favicon=f"<link rel='icon' type='image/png' href='{VENDOR}/favicon-32x32.png'>",
                path="/swagger",
            )
        ],
    )
