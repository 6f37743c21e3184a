"""Apple's PassKit web service, mounted at the path of the passes' ``webServiceURL`` (``/passkit`` by default).

These routes follow Apple's fixed protocol (``v1``) for Wallet on devices: they are not part of the brand's API
and are left out of its OpenAPI document (their shapes and statuses are Apple's; docs/wallet.md lists them).
Pass-specific calls authenticate with ``Authorization: ApplePass <authenticationToken>``.
"""

from __future__ import annotations

import logging
from email.utils import parsedate_to_datetime
from typing import Annotated, Any
from urllib.parse import urlsplit

from litestar import Request, Response, Router, delete, get, post
from litestar.params import FromPath, JSONBody, QueryParameter

from web.deps import ServicesDep
from web.pages.wallet_cards import passkit_of, pkpass_response
from web.schemas.wallet import PassKitLogIn, RegistrationIn, UpdatedPassesOut

log = logging.getLogger("questline.wallet")
REGISTRATION = "/v1/devices/{device:str}/registrations/{pass_type:str}/{serial:str}"
_LOG_LINES = 20


@post(REGISTRATION, status_code=201)
async def register_device(
    request: Request[Any, Any, Any],
    device: FromPath[str],
    pass_type: FromPath[str],
    serial: FromPath[str],
    data: JSONBody[RegistrationIn],
    services: ServicesDep,
) -> Response[None]:
    """Register a device for a pass's updates: 201 when new, 200 when it was registered already."""
    created = await passkit_of(services).register(
        device=device,
        pass_type=pass_type,
        serial=serial,
        authorization=request.headers.get("authorization"),
        push_token=data.pushToken,
    )
    return Response(None, status_code=201 if created else 200)


@delete(REGISTRATION, status_code=200)
async def unregister_device(
    request: Request[Any, Any, Any],
    device: FromPath[str],
    pass_type: FromPath[str],
    serial: FromPath[str],
    services: ServicesDep,
) -> None:
    """Stop a device's updates for a pass."""
    await passkit_of(services).unregister(
        device=device, pass_type=pass_type, serial=serial, authorization=request.headers.get("authorization")
    )


@get("/v1/devices/{device:str}/registrations/{pass_type:str}")
async def updated_passes(
    device: FromPath[str],
    pass_type: FromPath[str],
    services: ServicesDep,
    since: Annotated[str | None, QueryParameter(name="passesUpdatedSince", max_length=32)] = None,
) -> Response[UpdatedPassesOut | None]:
    """The device's passes changed since the tag (200 with a new tag), or 204 when none did."""
    found = await passkit_of(services).updated(device=device, pass_type=pass_type, since=since)
    if found is None:
        return Response(None, status_code=204)
    serials, tag = found
    return Response(UpdatedPassesOut(serialNumbers=serials, lastUpdated=tag))


@get("/v1/passes/{pass_type:str}/{serial:str}")
async def latest_pass(
    request: Request[Any, Any, Any], pass_type: FromPath[str], serial: FromPath[str], services: ServicesDep
) -> Response[bytes]:
    """The pass as it is now; 304 when it has not changed since ``If-Modified-Since``."""
    issued = await passkit_of(services).latest(
        pass_type=pass_type, serial=serial, authorization=request.headers.get("authorization")
    )
    since = request.headers.get("if-modified-since")
    if since:
        try:
            seen = int(parsedate_to_datetime(since).timestamp())
        except (TypeError, ValueError, IndexError, OverflowError):
            seen = -1
        if issued.updated_s <= seen:
            return Response(b"", status_code=304)
    return pkpass_response(issued.data, issued.updated_s)


@post("/v1/log", status_code=200)
async def device_log(data: JSONBody[PassKitLogIn]) -> None:
    """Wallet's error messages about this web service, written to the server's log."""
    for line in data.logs[:_LOG_LINES]:
        log.warning("passkit device log: %s", line[:500])


def passkit_router(web_service_url: str) -> Router:
    """The PassKit routes under the path of ``web_service_url`` (e.g. ``/passkit``)."""
    path = urlsplit(web_service_url).path.rstrip("/") or "/"
    return Router(
        path=path,
        route_handlers=[register_device, unregister_device, updated_passes, latest_pass, device_log],
        include_in_schema=False,
        tags=["passkit"],
    )
