"""The webhook topic catalog: wildcards, unknown topics refused, derived and throttled topics, the delivery log,
replay, test events and secret rotation with an overlap (verified as a receiver would)."""

import hashlib
import json
import re
import uuid
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest
from litestar.testing import AsyncTestClient
from sqlalchemy import select

from engine import publishing, topics
from engine.admins import create_admin
from engine.effects import Notification, PointsAwarded, ProgressAdvanced, RankChanged
from engine.errors import ValidationError
from engine.orm import OutboxRow
from engine.outbox import OutboxDeliverer
from engine.points import PointsProcessor
from engine.signatures import verify
from tests.conftest import public_resolver
from tests.helpers import event, make_brand
from tests.web.test_console import PASSWORD, post_form, sign_in
from tests.web.test_webhooks import GUARD

ROOT = Path(__file__).resolve().parents[2]


class Effects:
    """A processor that emits a badge notification, a challenge step and bonus points for every event."""

    name = "effects"

    async def process(self, uow):
        for ctx in uow.events:
            ctx.emit(Notification(topic="badge.awarded", data={"badge": "regular"}))
            ctx.emit(ProgressAdvanced(challenge="coffee-week", progress=1.0, target=5.0))
            ctx.emit(PointsAwarded(points=7, source="challenge", key="coffee-week"))

    async def after_commit(self, uow):
        pass


@pytest.fixture
def receiver():
    """Every request the endpoints got, and the answers to give (status, body), 200 "ok" when none is queued."""
    calls: list[httpx.Request] = []
    answers: list[tuple[int, str]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        status, body = answers.pop(0) if answers else (200, "ok")
        return httpx.Response(status, text=body)

    return SimpleNamespace(calls=calls, answers=answers, http=httpx.AsyncClient(transport=httpx.MockTransport(handler)))


@pytest.fixture
async def hooks(backend, settings, redis, clock, receiver):
    from web.app import create_app

    app = create_app(
        settings, clock=clock, redis=redis if backend.endswith("fakeredis") else None,
        processors=[PointsProcessor(), Effects()], http=receiver.http, deliver_webhooks=False,
        resolver=public_resolver,
    )  # fmt: skip
    async with AsyncTestClient(app=app) as test_client:
        yield test_client


@pytest.fixture
async def admin(db, brand, clock):
    email = f"hooks-{uuid.uuid4().hex[:8]}@brand.example"
    await create_admin(db, brand_id=brand.brand.id, email=email, password=PASSWORD, name="Ada", now=clock.now())
    return email


async def _drain(db, receiver, clock) -> OutboxDeliverer:
    deliverer = OutboxDeliverer(db, http=receiver.http, clock=clock, guard=GUARD)
    while await deliverer.deliver_due():  # what earlier tests left due in the shared database
        pass
    receiver.calls.clear()
    return deliverer


def test_wildcards_match_families_and_everything():
    assert topics.matches("*", "rank.changed") and topics.matches("badge.*", "badge.revoked")
    assert not topics.matches("badge.*", "badges.awarded") and not topics.matches("badge.*", "rank.changed")
    assert topics.subscribed([], "member.erased") and not topics.subscribed(["tier.*"], "reward.redeemed")
    assert topics.listened([["tier.*"], ["points.awarded"]]) == {
        "points.awarded", *(t for t in topics.CATALOG if t.startswith("tier."))
    }  # fmt: skip
    assert topics.check_topics(["badge.*", "badge.*", "*"]) == ["badge.*", "*"]
    for bad, index in ((["badge.awarded", "bagde.awarded"], 1), (["nothing.*"], 0), (["badge"], 0), ([".*"], 0)):
        with pytest.raises(ValidationError) as caught:
            topics.check_topics(bad)
        assert caught.value.field == f"$.topics[{index}]" and repr(bad[index]) in caught.value.detail


def test_every_emitted_topic_is_in_the_catalog_and_documented():
    """Every topic a domain writes appears in the catalog, the OpenAPI ``webhooks`` and docs/api.md."""
    emitted = set()
    for path in ROOT.glob("*/**/*.py"):
        if ".venv" in path.parts or "tests" in path.parts:
            continue
        text = path.read_text(encoding="utf-8")
        for marker in ('topic="', 'topic=f"tier.'):
            for chunk in text.split(marker)[1:]:
                name = chunk.split('"', 1)[0]
                emitted.add("tier." if marker.endswith("tier.") else name)
    emitted.discard("tier.")
    assert emitted and emitted <= set(topics.CATALOG), emitted - set(topics.CATALOG)
    docs = (ROOT / "docs/api.md").read_text(encoding="utf-8")
    assert [t for t in topics.CATALOG if f"`{t}`" not in docs] == []


async def test_the_openapi_document_declares_every_topic(client):
    schema = (await client.get("/schema/openapi.json")).json()
    assert set(schema["webhooks"]) == set(topics.CATALOG)
    for name, item in schema["webhooks"].items():
        body = item["post"]["requestBody"]["content"]["application/json"]
        assert body["schema"]["properties"]["type"]["const"] == name
        assert body["example"]["type"] == name and body["example"]["data"] == topics.CATALOG[name].example
        assert {p["name"] for p in item["post"]["parameters"]} >= {"webhook-id", "webhook-signature"}


async def test_unknown_topics_answer_422_naming_them_and_register_nothing(hooks, brand):
    for topics_, field in ((["badge.awarded", "bagde.awarded"], "$.topics[1]"), (["nothing.*"], "$.topics[0]")):
        answer = await hooks.post(
            "/v1/webhooks", json={"url": "https://crm.example/h", "topics": topics_}, headers=brand.headers
        )
        assert answer.status_code == 422 and answer.json()["field"] == field
        assert topics_[int(field[-2])] in answer.json()["detail"]
    assert (await hooks.get("/v1/webhooks", headers=brand.headers)).json() == []
    created = await hooks.post(
        "/v1/webhooks", json={"url": "https://crm.example/h", "topics": ["*"]}, headers=brand.headers
    )
    assert created.status_code == 201 and created.json()["topics"] == ["*"]


async def test_wildcards_route_each_topic_and_derived_topics_cost_nothing_unheard(hooks, brand, receiver, clock, db):
    deliverer = await _drain(db, receiver, clock)
    routes = {
        "https://a.example/h": ["badge.*"],
        "https://b.example/h": ["*"],
        "https://c.example/h": ["points.awarded"],
        "https://d.example/h": ["member.*"],
    }
    for url, wanted in routes.items():
        added = await hooks.post("/v1/webhooks", json={"url": url, "topics": wanted}, headers=brand.headers)
        assert added.status_code == 201
    quiet = await make_brand(db, clock, name="quiet")
    for who in (brand, quiet):
        sent = await hooks.post(
            "/v1/events", json=event("w1", "m-1", "visit", "2026-11-20T09:00:00Z"), headers=who.headers
        )
        assert sent.status_code == 200
    joined = event("w2", "m-1", "member.enrolled", "2026-11-20T09:01:00Z")
    assert (await hooks.post("/v1/events", json=joined, headers=brand.headers)).status_code == 200
    while await deliverer.deliver_due():
        pass
    got: dict[str, list[str]] = {}
    for call in receiver.calls:
        got.setdefault(str(call.url), []).append(json.loads(call.content)["type"])
    each = ["badge.awarded", "challenge.progressed", "points.awarded"]
    assert sorted(got["https://a.example/h"]) == ["badge.awarded"] * 2
    assert sorted(got["https://b.example/h"]) == sorted([*each, *each, "member.enrolled"])
    assert sorted(got["https://c.example/h"]) == ["points.awarded"] * 2
    assert got["https://d.example/h"] == ["member.enrolled"]
    points = next(json.loads(c.content) for c in receiver.calls if b"points.awarded" in c.content)
    assert points["data"] == {
        "member": "m-1", "event": "w1", "points": 7, "source": "challenge", "key": "coffee-week", "multiplier": 1.0,
        "capped": False,
    }  # fmt: skip
    async with db.read() as session:
        unheard = list(await session.scalars(select(OutboxRow.topic).where(OutboxRow.brand_id == quiet.brand.id)))
    assert unheard == ["badge.awarded"]  # a brand nobody listens to gets no derived rows


async def test_delivery_log_replay_and_test_event(hooks, brand, receiver, clock, db):
    deliverer = await _drain(db, receiver, clock)
    created = (
        await hooks.post(
            "/v1/webhooks", json={"url": "https://crm.example/h", "topics": ["badge.*"]}, headers=brand.headers
        )
    ).json()
    base = f"/v1/webhooks/{created['id']}"
    await hooks.post("/v1/events", json=event("d1", "m-2", "visit", "2026-11-20T09:00:00Z"), headers=brand.headers)
    receiver.answers.append((500, "upstream broke " + "x" * 900))
    await deliverer.deliver_due()
    log = (await hooks.get(f"{base}/deliveries", headers=brand.headers)).json()
    [failed] = log["deliveries"]
    assert failed["succeeded"] is False and failed["response_code"] == 500 and failed["kind"] == "delivery"
    assert failed["topic"] == "badge.awarded" and failed["latency_ms"] >= 0
    assert failed["body_excerpt"].startswith("upstream broke") and len(failed["body_excerpt"]) == 500

    replayed = await hooks.post(f"{base}/deliveries/{failed['id']}/replay", headers=brand.headers)
    assert replayed.status_code == 200
    assert (
        replayed.json()["kind"] == "replay" and replayed.json()["succeeded"] and replayed.json()["response_code"] == 200
    )
    assert receiver.calls[-1].headers["webhook-id"] == failed["message_id"]  # the same message: receivers dedupe
    async with db.read() as session:
        row = await session.scalar(select(OutboxRow).where(OutboxRow.message_id == failed["message_id"]))
    assert row.delivered_to == [created["id"]]
    clock.advance(timedelta(minutes=1))
    while await deliverer.deliver_due():  # the retry has no one left to serve: settled, nothing sent again
        pass
    assert len(receiver.calls) == 2

    tested = (await hooks.post(f"{base}/test", headers=brand.headers)).json()
    assert tested["kind"] == "test" and tested["topic"] == "webhook.test" and tested["body_excerpt"] == "ok"
    assert json.loads(receiver.calls[-1].content)["data"]["endpoint"] == created["id"]
    log = (await hooks.get(f"{base}/deliveries?limit=2", headers=brand.headers)).json()
    assert [d["kind"] for d in log["deliveries"]] == ["test", "replay"] and log["next_before"] is not None
    older = (await hooks.get(f"{base}/deliveries?before={log['next_before']}", headers=brand.headers)).json()
    assert [d["id"] for d in older["deliveries"]] == [failed["id"]] and older["next_before"] is None

    other = await make_brand(db, clock, name="other")
    for path in (f"{base}/deliveries", f"{base}/test", f"{base}/deliveries/{failed['id']}/replay"):
        method = hooks.get if path.endswith("deliveries") else hooks.post
        assert (await method(path, headers=other.headers)).status_code == 404
    assert (await hooks.post(f"{base}/deliveries/999999999/replay", headers=brand.headers)).status_code == 404
    assert len(receiver.calls) == 3  # nothing was sent for the refused requests


async def test_rotation_signs_with_both_secrets_during_the_overlap_then_only_the_new(hooks, brand, receiver, clock, db):
    await _drain(db, receiver, clock)
    created = (await hooks.post("/v1/webhooks", json={"url": "https://crm.example/h"}, headers=brand.headers)).json()
    base = f"/v1/webhooks/{created['id']}"
    old = created["secret"]
    bad = await hooks.post(f"{base}/rotate-secret", json={"overlap_hours": 500}, headers=brand.headers)
    assert bad.status_code == 422
    rotated = await hooks.post(f"{base}/rotate-secret", json={"overlap_hours": 2}, headers=brand.headers)
    assert rotated.status_code == 200
    new = rotated.json()["secret"]
    assert new.startswith("whsec_") and new != old
    assert rotated.json()["previous_secret_until"].startswith("2026-11-20T12:00:00")

    def received() -> tuple[dict[str, str], bytes]:
        call = receiver.calls[-1]
        return dict(call.headers.items()), call.content

    await hooks.post(f"{base}/test", headers=brand.headers)
    headers, body = received()
    assert len(headers["webhook-signature"].split()) == 2
    assert verify(new, headers=headers, body=body, now=clock.now())
    assert verify(old, headers=headers, body=body, now=clock.now())
    clock.advance(timedelta(hours=2, seconds=1))
    await hooks.post(f"{base}/test", headers=brand.headers)
    headers, body = received()
    assert len(headers["webhook-signature"].split()) == 1
    assert verify(new, headers=headers, body=body, now=clock.now())
    assert not verify(old, headers=headers, body=body, now=clock.now())
    listed = (await hooks.get("/v1/webhooks", headers=brand.headers)).json()
    assert listed[0]["secret"] is None


async def test_rank_changes_are_throttled_per_member_and_board(db, clock, brand):
    # the endpoints are stood for by the unit's cached topics: nothing here is ever sent
    def unit(*ranks: tuple[int, str, int]):
        contexts = [
            SimpleNamespace(
                member_id=member_id,
                event=SimpleNamespace(member=f"m-{member_id}", id=f"e-{member_id}-{rank}"),
                effects=[RankChanged(board=board, period="2026-11", rank=rank, score=10.0, total=3)],
            )
            for member_id, board, rank in ranks
        ]
        return SimpleNamespace(
            events=contexts,
            brand=brand.brand,
            now=clock.now(),
            stash={"publishing.listened": frozenset({"rank.changed"})},
        )

    interval = timedelta(seconds=60)
    assert (
        await publishing.publish_ranks(
            db, unit((1, "weekly", 3), (1, "weekly", 2), (1, "monthly", 5)), interval=interval
        )
        == 2
    )
    clock.advance(timedelta(seconds=30))
    assert await publishing.publish_ranks(db, unit((1, "weekly", 1), (2, "weekly", 4)), interval=interval) == 1
    clock.advance(timedelta(seconds=31))
    assert await publishing.publish_ranks(db, unit((1, "weekly", 1)), interval=interval) == 1
    async with db.read() as session:
        rows = list(
            await session.scalars(
                select(OutboxRow)
                .where(OutboxRow.brand_id == brand.brand.id, OutboxRow.topic == "rank.changed")
                .order_by(OutboxRow.id)
            )
        )
    assert [(r.payload["data"]["member"], r.payload["data"]["board"], r.payload["data"]["rank"]) for r in rows] == [
        ("m-1", "weekly", 2), ("m-1", "monthly", 5), ("m-2", "weekly", 4), ("m-1", "weekly", 1),
    ]  # fmt: skip
    assert all("m-1" not in (r.throttle_key or "") for r in rows)  # keyed by internal ids: erasure leaves no trace
    # settle them now: written ahead of the next test's clock, they would fall due in the middle of it
    async with httpx.AsyncClient() as http:
        deliverer = OutboxDeliverer(db, http=http, clock=clock, guard=GUARD)
        while await deliverer.deliver_due():
            pass


async def test_erasure_publishes_member_erased_and_scrubs_the_delivery_log(hooks, brand, receiver, clock, db):
    deliverer = await _drain(db, receiver, clock)
    added = await hooks.post(
        "/v1/webhooks", json={"url": "https://crm.example/h", "topics": ["badge.*"]}, headers=brand.headers
    )
    await hooks.post(
        "/v1/events", json=event("x1", "m-erase-me", "visit", "2026-11-20T09:00:00Z"), headers=brand.headers
    )
    receiver.answers.append((200, "thanks for m-erase-me"))  # an endpoint echoing what it got
    await deliverer.deliver_due()
    assert (await hooks.delete("/v1/members/m-erase-me", headers=brand.headers)).status_code == 204
    async with db.read() as session:
        rows = list(
            await session.scalars(
                select(OutboxRow).where(OutboxRow.brand_id == brand.brand.id, OutboxRow.topic == "member.erased")
            )
        )
    [row] = rows
    data = row.payload["data"]
    assert data["external_id_sha256"] == hashlib.sha256(b"m-erase-me").hexdigest()
    assert data["member"].startswith("erased-") and "m-erase-me" not in json.dumps(row.payload)
    log = (await hooks.get(f"/v1/webhooks/{added.json()['id']}/deliveries", headers=brand.headers)).json()
    [logged] = log["deliveries"]
    assert logged["body_excerpt"] == f"thanks for {data['member']}"


async def test_console_endpoint_page_logs_replays_tests_and_rotates(hooks, brand, receiver, clock, db, admin):
    await _drain(db, receiver, clock)
    await sign_in(hooks, admin)
    page = await hooks.get("/console/webhooks")
    assert 'value="badge.*"' in page.text and 'value="rank.changed"' in page.text and "webhook.test" not in page.text
    added = await post_form(hooks, "/console/webhooks", {"url": "https://crm.example/hooks", "topics": ["badge.*"]})
    assert re.search(r'id="webhook-secret">whsec_', added.text)
    [endpoint] = (await hooks.get("/v1/webhooks", headers=brand.headers)).json()
    assert endpoint["topics"] == ["badge.*"]
    base = f"/console/webhooks/{endpoint['id']}"
    assert "No deliveries yet" in (await hooks.get(base)).text

    receiver.answers.append((503, "try later"))
    tested = await post_form(hooks, f"{base}/test", {})
    assert tested.status_code == 200 and 'id="webhook-attempt"' in tested.text and "503" in tested.text
    assert "try later" in tested.text  # the answer's excerpt in the log
    delivery = re.search(rf'action="{base}/deliveries/(\d+)/replay"', tested.text)
    assert delivery is not None
    replayed = await post_form(hooks, f"{base}/deliveries/{delivery.group(1)}/replay", {})
    assert "Delivery replayed" in replayed.text and replayed.text.count("/replay") == 2
    assert [json.loads(c.content)["type"] for c in receiver.calls] == ["webhook.test", "webhook.test"]

    rotated = await post_form(hooks, f"{base}/rotate", {"overlap_hours": "24"})
    secret = re.search(r'id="webhook-secret">(whsec_[^<]+)<', rotated.text)
    assert secret is not None and "both signatures" in rotated.text
    await post_form(hooks, f"{base}/test", {})
    call = receiver.calls[-1]
    assert verify(secret.group(1), headers=dict(call.headers.items()), body=call.content, now=clock.now())
    assert len(call.headers["webhook-signature"].split()) == 2
    italian = await hooks.get(f"{base}?lang=it")
    assert "Registro delle consegne" in italian.text
    assert (await hooks.get("/console/webhooks/999999999")).status_code == 404


async def test_a_manual_adjustment_is_published_as_points_awarded_while_subscribed(hooks, brand, receiver, clock, db):
    deliverer = await _drain(db, receiver, clock)
    await hooks.post("/v1/events", json=event("a1", "m-adj", "visit", "2026-11-20T09:00:00Z"), headers=brand.headers)
    adjust = {"points": 25, "reason": "goodwill"}
    assert (
        await hooks.post("/v1/members/m-adj/points/adjustments", json=adjust, headers=brand.headers)
    ).status_code == 201
    async with db.read() as session:  # nobody listens yet: nothing written
        assert (
            await session.scalar(
                select(OutboxRow.id).where(OutboxRow.brand_id == brand.brand.id, OutboxRow.topic == "points.awarded")
            )
            is None
        )
    await hooks.post(
        "/v1/webhooks", json={"url": "https://crm.example/h", "topics": ["points.*"]}, headers=brand.headers
    )
    assert (
        await hooks.post("/v1/members/m-adj/points/adjustments", json=adjust, headers=brand.headers)
    ).status_code == 201
    while await deliverer.deliver_due():
        pass
    [call] = receiver.calls
    assert json.loads(call.content)["data"] == {
        "member": "m-adj", "points": 25, "source": "adjustment", "key": "manual", "multiplier": 1.0, "capped": False,
        "reason": "goodwill",
    }  # fmt: skip
