"""Webhooks cannot reach the server's own network: refused at registration, re-checked at delivery,
failures reported without the transport's words, retries only to the endpoint that failed."""

import ipaddress

import httpx
import msgspec
import pytest
from litestar.testing import AsyncTestClient
from sqlalchemy import select

from engine.effects import Notification
from engine.egress import EgressGuard
from engine.orm import OutboxRow
from engine.outbox import NO_RESPONSE, REFUSED, OutboxDeliverer
from engine.points import PointsProcessor
from tests.helpers import event


class Dns:
    """A switchable resolver: names map to addresses, and a test can re-point a name (DNS rebinding)."""

    def __init__(self) -> None:
        self.table = {
            "crm.example": "93.184.215.14",
            "backup.example": "93.184.215.15",
            "first.example": "93.184.215.16",
            "second.example": "93.184.215.17",
            "localhost": "127.0.0.1",
            "loopback.example": "127.0.0.1",
            "metadata.example": "169.254.169.254",
            "office.example": "192.168.1.1",
            "carrier.example": "100.64.0.1",
            "ula.example": "fd00::1",
            "v6local.example": "fe80::1",
        }

    async def __call__(self, host: str, port: int):
        if host not in self.table:
            raise OSError("no such host")
        return [ipaddress.ip_address(self.table[host])]


class Notify:
    name = "notify"

    async def process(self, uow):
        for ctx in uow.events:
            ctx.emit(Notification(topic="challenge.completed", data={"challenge": "autumn"}))

    async def after_commit(self, uow):
        pass


@pytest.fixture
def dns():
    return Dns()


@pytest.fixture
def receiver():
    calls: list[httpx.Request] = []
    answers: dict[str, list[int | Exception]] = {}

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        queue = answers.get(request.url.host, [])
        answer = queue.pop(0) if queue else 200
        if isinstance(answer, Exception):
            raise answer
        return httpx.Response(answer)

    return calls, answers, httpx.AsyncClient(transport=httpx.MockTransport(handler))


@pytest.fixture
async def hooks(settings, backend, redis, clock, receiver, dns):
    from web.app import create_app

    app = create_app(
        settings,
        clock=clock,
        redis=redis if backend.endswith("fakeredis") else None,  # a real-Redis client is bound to its loop
        processors=[PointsProcessor(), Notify()],
        http=receiver[2],
        deliver_webhooks=False,
        resolver=dns,
    )
    async with AsyncTestClient(app=app) as client:
        yield client


@pytest.fixture
async def deliverer(db, receiver, clock, dns, settings):
    deliverer = OutboxDeliverer(
        db, http=receiver[2], clock=clock, guard=EgressGuard(settings.egress_policy, resolver=dns)
    )
    while await deliverer.deliver_due():  # what earlier tests left due in the shared database
        pass
    receiver[0].clear()
    return deliverer


BLOCKED = [
    "https://127.0.0.1/hook",
    "https://localhost/hook",
    "https://[::1]/hook",
    "https://2130706433/hook",
    "https://0x7f.1/hook",
    "https://[::ffff:127.0.0.1]/hook",
    "https://127.0.0.1:5432/",
    "https://169.254.169.254/latest/meta-data/",
    "https://10.0.0.1/hook",
    "https://192.168.1.1/hook",
    "https://100.64.0.1/hook",
    "https://224.0.0.1/hook",
    "https://0.0.0.0/hook",
    "https://[fd00::1]/hook",
    "https://[fe80::1]/hook",
    "https://loopback.example/hook",
    "https://metadata.example/hook",
    "https://office.example/hook",
    "https://carrier.example/hook",
    "https://ula.example/hook",
    "https://v6local.example/hook",
    "https://unknown.example/hook",
]


@pytest.mark.parametrize("url", BLOCKED)
async def test_registration_refuses_internal_addresses_with_a_problem_naming_the_field(hooks, brand, url):
    refused = await hooks.post("/v1/webhooks", json={"url": url}, headers=brand.headers)
    assert refused.status_code == 422, refused.text
    assert refused.json()["field"] == "$.url"
    assert (await hooks.get("/v1/webhooks", headers=brand.headers)).json() == []


async def test_https_is_required_outside_the_embedded_default(hooks, brand, settings):
    plain = await hooks.post("/v1/webhooks", json={"url": "http://crm.example/hook"}, headers=brand.headers)
    if settings.embedded:  # local development may send to a plain-http receiver (never an internal one)
        assert plain.status_code == 201
        local = await hooks.post("/v1/webhooks", json={"url": "http://localhost:9000/"}, headers=brand.headers)
        assert local.status_code == 422
    else:
        assert plain.status_code == 422 and plain.json()["field"] == "$.url"
    assert (
        await hooks.post("/v1/webhooks", json={"url": "https://crm.example/h"}, headers=brand.headers)
    ).status_code == 201


async def test_the_switches_open_http_and_private_addresses_for_local_development(settings):
    strict = msgspec.structs.replace(settings, database_url="postgresql+asyncpg://x/y")
    assert strict.egress_policy.allow_http is False and strict.egress_policy.allow_private is False
    opened = msgspec.structs.replace(strict, webhooks_allow_http=True, webhooks_allow_private=True)
    assert opened.egress_policy.allow_http and opened.egress_policy.allow_private


async def test_delivery_rechecks_the_address_and_reports_a_generic_reason(hooks, brand, receiver, deliverer, db, dns):
    calls, _, _ = receiver
    created = await hooks.post("/v1/webhooks", json={"url": "https://crm.example/hook"}, headers=brand.headers)
    assert created.status_code == 201
    dns.table["crm.example"] = "127.0.0.1"  # the name now points inside (DNS rebinding after registration)
    await hooks.post("/v1/events", json=event("r1", "m", "visit", "2026-11-20T09:00:00Z"), headers=brand.headers)
    assert await deliverer.deliver_due() == 1
    assert calls == []  # nothing was sent
    async with db.read() as session:
        row = await session.scalar(select(OutboxRow).where(OutboxRow.brand_id == brand.brand.id))
    assert row.delivered_at is None and REFUSED in row.last_error
    page = await hooks.get("/v1/webhooks", headers=brand.headers)
    assert page.status_code == 200


async def test_transport_errors_are_not_shown_to_the_brand(hooks, brand, receiver, deliverer, db):
    calls, answers, _ = receiver
    await hooks.post("/v1/webhooks", json={"url": "https://crm.example/hook"}, headers=brand.headers)
    answers["crm.example"] = [httpx.ConnectError("[Errno 111] Connection refused to 93.184.215.14:443")]
    await hooks.post("/v1/events", json=event("t1", "m", "visit", "2026-11-20T09:00:00Z"), headers=brand.headers)
    await deliverer.deliver_due()
    assert len(calls) == 1
    async with db.read() as session:
        row = await session.scalar(select(OutboxRow).where(OutboxRow.brand_id == brand.brand.id))
    assert NO_RESPONSE in row.last_error
    assert "ConnectError" not in row.last_error and "refused" not in row.last_error.replace(REFUSED, "")


async def test_a_retry_goes_only_to_the_endpoint_that_failed(hooks, brand, receiver, deliverer, db, clock):
    from datetime import timedelta

    calls, answers, _ = receiver
    mine = ("first.example", "second.example")  # other tests' brands may have retries due at the same time
    for url in ("https://first.example/hook", "https://second.example/hook"):
        assert (await hooks.post("/v1/webhooks", json={"url": url}, headers=brand.headers)).status_code == 201
    answers["second.example"] = [500]
    await hooks.post("/v1/events", json=event("p1", "m", "visit", "2026-11-20T09:00:00Z"), headers=brand.headers)
    await deliverer.deliver_due()
    assert sorted(c.url.host for c in calls if c.url.host in mine) == ["first.example", "second.example"]
    calls.clear()
    clock.advance(timedelta(minutes=1))
    assert await deliverer.deliver_due() >= 1
    assert [c.url.host for c in calls if c.url.host in mine] == ["second.example"]
    async with db.read() as session:
        row = await session.scalar(select(OutboxRow).where(OutboxRow.brand_id == brand.brand.id))
    assert row.delivered_at is not None and row.attempts == 2 and len(row.delivered_to) == 2
