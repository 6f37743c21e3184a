"""``POST /v1/events``: one event or a batch, applied exactly once, answered with what each caused."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, post
from litestar.di import Provide
from litestar.params import RawBody

from engine.events import Event, EventBatch, decode_events
from integrations import cloudevents, store
from integrations.models import CLOUDEVENTS_DEFAULTS, merged
from web.api.event_intake import LeanEventIntake, coalescer_of, plausible, to_out
from web.deps import PrincipalDep, Services, ServicesDep, provide_secret_principal
from web.schemas.events import BatchResultOut, EventResultOut


def document_body(data: Event | EventBatch) -> None:  # pragma: no cover - never called
    """What ``POST /v1/events`` accepts, for the OpenAPI document only.

    The handler decodes the raw body itself, once and typed (:func:`engine.events.decode_events`), so it
    declares no ``data``; Litestar documents a request body from a dependency's ``data`` instead. The
    handler does not ask for this dependency, so it never runs and nothing decodes the body twice.
    """


async def decode_cloudevents(
    services: Services, brand_id: Any, request: Request[Any, Any, Any], body: bytes
) -> tuple[list[Event], bool]:
    """Decode CloudEvents in whichever mode the request uses (one typed decode of the body), mapped for the brand."""
    content_type = request.headers.get("content-type", "")
    kind = cloudevents.media_type(content_type)
    if kind in (cloudevents.STRUCTURED, cloudevents.BATCH):
        batch = kind == cloudevents.BATCH
        wires = cloudevents.decode_structured(body, batch=batch, max_batch=services.settings.max_batch)
    else:
        batch = False
        wires = [cloudevents.decode_binary(request.headers, body, content_type=content_type)]
    async with services.db.read() as session:
        custom = await store.get_mapping(session, brand_id=brand_id, source="cloudevents")
    mapping = merged(custom, CLOUDEVENTS_DEFAULTS)
    return cloudevents.to_events(wires, mapping=mapping, now=services.clock.now(), batch=batch), batch


class EventsController(Controller):
    """Event ingestion."""

    path = "/v1/events"
    tags = ("events",)
    dependencies = {  # noqa: RUF012
        "principal": Provide(provide_secret_principal),
        "documented_body": Provide(document_body, sync_to_thread=False),
    }

    @post(
        "/",
        status_code=200,
        middleware=[LeanEventIntake],
        summary="Send one event or a batch",
        description=(
            'Body: one event, or `{"events": [...]}` with up to 1000. Validated as a whole: a bad field anywhere '
            "answers 422 naming its JSON path and nothing of the request is applied. A repeated `id` answers the "
            "first result with `duplicate: true` and changes nothing. CloudEvents 1.0 are accepted too: "
            "structured (`application/cloudevents+json`), batch (`application/cloudevents-batch+json`) and binary "
            "(`ce-*` headers) mode; see docs/integrations.md. "
            "`occurred_at` must lie within the plausibility "
            "window: at most `QUESTLINE_EVENT_MAX_FUTURE_SECONDS` (300) ahead of the server's clock and at most the "
            "brand's `event_max_age_days` (default 365) old; outside it answers 422 naming the field."
        ),
    )
    async def ingest(
        self, request: Request[Any, Any, Any], body: RawBody, services: ServicesDep, principal: PrincipalDep
    ) -> EventResultOut | BatchResultOut:
        """Validate, process in one transaction (single events coalesced), and report per-event effects."""
        content_type = request.headers.get("content-type", "")
        if cloudevents.is_cloudevents(content_type, request.headers):
            events, is_batch = await decode_cloudevents(services, principal.brand.id, request, body)
        else:
            events, is_batch = decode_events(body, max_batch=services.settings.max_batch)
        plausible(services, principal.brand, events, is_batch=is_batch)
        # validated before joining: one request's bad input cannot fail the others it is coalesced with
        results = await coalescer_of(request.app.state, services).process(principal.brand, events)
        outs = [to_out(r) for r in results]
        return BatchResultOut(results=outs) if is_batch else outs[0]
