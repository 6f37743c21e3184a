"""Outbox rows become Standard Webhooks: signed, retried with backoff, disabled on 410."""

from datetime import timedelta

import httpx
import pytest
from litestar.testing import AsyncTestClient
from sqlalchemy import select

from engine.clock import FrozenClock
from engine.effects import Notification
from engine.egress import EgressGuard
from engine.orm import OutboxRow
from engine.outbox import RETRY_SCHEDULE, OutboxDeliverer
from engine.points import PointsProcessor
from engine.signatures import sign, verify
from engine.topics import subscribed
from tests.conftest import public_resolver
from tests.helpers import event

GUARD = EgressGuard(resolver=public_resolver)


class Notify:
    """A processor that emits one notification per event."""

    name = "notify"

    async def process(self, uow):
        for ctx in uow.events:
            ctx.emit(Notification(topic="challenge.completed", data={"challenge": "autumn"}))

    async def after_commit(self, uow):
        pass


@pytest.fixture
def receiver():
    calls: list[httpx.Request] = []
    answers: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(answers.pop(0) if answers else 200)

    return calls, answers, httpx.AsyncClient(transport=httpx.MockTransport(handler))


@pytest.fixture
async def hook_client(backend, settings, redis, clock, receiver):
    from web.app import create_app

    # As in the shared ``client`` fixture: the test client serves the app on another event loop, and a
    # real-Redis client is bound to the loop it was made on, so the app opens its own.
    app = create_app(
        settings,
        clock=clock,
        redis=redis if backend.endswith("fakeredis") else None,
        processors=[PointsProcessor(), Notify()],
        http=receiver[2],
        deliver_webhooks=False,
        resolver=public_resolver,
    )
    async with AsyncTestClient(app=app) as test_client:
        yield test_client


async def test_signed_delivery_retry_and_gone(hook_client, brand, receiver, clock, db):
    calls, answers, _ = receiver
    created = await hook_client.post(
        "/v1/webhooks", json={"url": "https://crm.example/hooks", "topics": ["challenge.*"]}, headers=brand.headers
    )
    assert created.status_code == 201
    secret = created.json()["secret"]
    assert secret.startswith("whsec_")
    assert "secret" not in (await hook_client.get("/v1/webhooks", headers=brand.headers)).json()[0] or (
        (await hook_client.get("/v1/webhooks", headers=brand.headers)).json()[0]["secret"] is None
    )
    # the app's own deliverer runs on the server's loop; drive an identical one from the test, after settling
    # what earlier tests left in the shared database (a deliverer serves every brand): what is due now, and
    # the retries due within the hour, which the clock's minute below would otherwise bring due mid-test
    ahead = FrozenClock(clock.now() + timedelta(hours=1))
    settler = OutboxDeliverer(db, http=receiver[2], clock=ahead, guard=GUARD)
    while await settler.deliver_due():
        pass
    deliverer = OutboxDeliverer(db, http=receiver[2], clock=clock, guard=GUARD)
    calls.clear()
    await hook_client.post("/v1/events", json=event("e1", "m", "visit", "2026-11-20T09:00:00Z"), headers=brand.headers)

    answers.append(500)
    assert await deliverer.deliver_due() == 1
    assert len(calls) == 1
    async with db.read() as session:
        row = await session.scalar(select(OutboxRow).where(OutboxRow.brand_id == brand.brand.id))
    assert row.delivered_at is None and row.attempts == 1 and "HTTP 500" in row.last_error
    assert row.next_attempt_at >= clock.now() + RETRY_SCHEDULE[0]
    assert await deliverer.deliver_due() == 0  # not due yet

    clock.advance(timedelta(minutes=1))
    assert await deliverer.deliver_due() == 1
    request = calls[-1]
    headers = {k: v for k, v in request.headers.items()}
    assert verify(secret, headers=headers, body=request.content, now=clock.now())
    assert not verify(secret, headers={**headers, "webhook-id": "other"}, body=request.content, now=clock.now())
    assert calls[0].headers["webhook-id"] == request.headers["webhook-id"]  # same id on retry: receivers dedupe
    payload = httpx.Response(200, content=request.content).json()
    assert payload["type"] == "challenge.completed" and payload["data"]["member"] == "m"
    async with db.read() as session:
        row = await session.scalar(select(OutboxRow).where(OutboxRow.brand_id == brand.brand.id))
    assert row.delivered_at is not None and row.attempts == 2

    answers.append(410)
    await hook_client.post("/v1/events", json=event("e2", "m", "visit", "2026-11-20T09:00:00Z"), headers=brand.headers)
    await deliverer.deliver_due()
    listed = (await hook_client.get("/v1/webhooks", headers=brand.headers)).json()
    assert listed[0]["active"] is False and "410" in listed[0]["disabled_reason"]


async def test_messages_of_a_brand_nobody_listens_to_are_settled_without_a_claim(
    hook_client, brand, receiver, clock, db
):
    from tests.helpers import make_brand

    calls, _, http = receiver
    deliverer = OutboxDeliverer(db, http=http, clock=clock, guard=GUARD)
    while await deliverer.deliver_due():  # what earlier tests left due in the shared database
        pass
    listener = await make_brand(db, clock, name="listener")
    created = await hook_client.post(
        "/v1/webhooks", json={"url": "https://crm.example/hooks", "topics": ["challenge.*"]}, headers=listener.headers
    )
    assert created.status_code == 201
    for who in (brand, listener):
        body = {"events": [event(f"q{i}", "m", "visit", "2026-11-20T09:00:00Z") for i in range(3)]}
        assert (await hook_client.post("/v1/events", json=body, headers=who.headers)).status_code == 200
    claims: list[int] = []
    original = deliverer._claim

    async def counted_claim():
        claimed = await original()
        claims.extend(c.brand_id for c in claimed)
        return claimed

    deliverer._claim = counted_claim  # type: ignore[method-assign]
    assert await deliverer.deliver_due() == 6  # 3 settled in one statement + 3 claimed and sent
    assert claims == [listener.brand.id] * 3 and len(calls) == 3
    async with db.read() as session:
        rows = list(await session.scalars(select(OutboxRow).where(OutboxRow.brand_id.in_([brand.brand.id]))))
    assert len(rows) == 3
    assert all(r.delivered_at is not None and r.attempts == 1 and r.last_error == "" for r in rows)
    assert await deliverer.deliver_due() == 0


async def test_endpoint_validation(client, brand):
    bad = await client.post("/v1/webhooks", json={"url": "ftp://x"}, headers=brand.headers)
    assert bad.status_code == 422 and bad.json()["field"] == "$.url"
    assert (await client.delete("/v1/webhooks/999999", headers=brand.headers)).status_code == 404


def test_signature_matches_the_standard_webhooks_example():
    # Test vector from the Standard Webhooks specification.
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    body = b'{"test": 2432232314}'
    signature = sign(secret, message_id="msg_p5jXN8AQM9LWM0D4loKWxJek", timestamp=1614265330, body=body)
    assert signature == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


@pytest.mark.parametrize(
    ("topics", "topic", "expected"),
    [
        ([], "badge.awarded", True),
        (["badge.*"], "badge.awarded", True),
        (["badge.*"], "challenge.completed", False),
        (["challenge.completed"], "challenge.completed", True),
    ],
)
def test_topic_subscription(topics, topic, expected):
    assert subscribed(topics, topic) is expected
