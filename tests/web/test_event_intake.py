"""The lean event intake (web/api/event_intake.py): the route's answers, and only for plain JSON requests."""

from __future__ import annotations

import json
from typing import Any

import pytest

from engine.earning import EarningRuleSpec, PerUnit
from engine.rules_store import put_rule
from tests.helpers import event, row_counts
from web.api import event_intake

AT = "2026-11-20T09:00:00Z"


@pytest.fixture
async def rules(db, brand, clock):
    await put_rule(
        db,
        brand_id=brand.brand.id,
        spec=EarningRuleSpec(key="buy", event_type="purchase", per_unit=PerUnit(property="amount"), daily_cap=100),
        now=clock.now(),
    )


@pytest.fixture
def lean(monkeypatch) -> list[int]:
    """How many answers the lean path encoded (the route encodes its own)."""
    served: list[int] = []
    encode = event_intake.encode_json

    def counting(value: Any) -> bytes:
        body = encode(value)
        served.append(len(body))
        return body

    monkeypatch.setattr(event_intake, "encode_json", counting)
    return served


def _same_shape(answer: dict[str, Any], member: str) -> dict[str, Any]:
    """An answer with its event ids and member replaced, to compare two members' equal events."""
    text = json.dumps(answer).replace(member, "<member>")
    return json.loads(text)


@pytest.mark.parametrize("batch", [False, True], ids=["one event", "batch"])
async def test_a_plain_request_is_answered_by_the_lean_path_exactly_as_the_route_answers_it(
    client, brand, rules, lean, batch
):
    def body(member: str) -> dict[str, Any]:
        events = [event(f"{member}-{n}", member, "purchase", AT, amount=40) for n in range(3 if batch else 1)]
        return {"events": events} if batch else events[0]

    origin = {"Origin": "https://shop.example"}
    fast = await client.post("/v1/events", json=body("fast"), headers={**brand.headers, **origin})
    assert fast.status_code == 200, fast.text
    assert len(lean) == 1
    # A query string sends the same request through the route, which ignores the parameter.
    routed = await client.post("/v1/events?via=route", json=body("slow"), headers={**brand.headers, **origin})
    assert routed.status_code == 200, routed.text
    assert len(lean) == 1
    assert _same_shape(fast.json(), "fast") == _same_shape(routed.json(), "slow")
    effects = (fast.json()["results"][-1] if batch else fast.json())["effects"]
    assert effects and effects[0]["type"] == "points_awarded", fast.text  # the cap of 100 applied within the batch
    for name in ("content-type", "x-content-type-options", "access-control-allow-origin", "ratelimit-policy"):
        assert fast.headers.get(name) == routed.headers.get(name), name
    assert int(fast.headers["content-length"]) == len(fast.content)


async def test_a_duplicate_through_the_lean_path_is_answered_with_the_first_result(client, brand, rules, lean, db):
    payload = event("e1", "m1", "purchase", AT, amount=30)
    first = await client.post("/v1/events", json=payload, headers=brand.headers)
    before = await row_counts(db, brand.brand.id)
    again = await client.post("/v1/events", json=payload, headers=brand.headers)
    assert again.status_code == 200 and again.json()["duplicate"] is True
    assert again.json()["effects"] == first.json()["effects"] and first.json()["effects"]
    assert len(lean) == 2
    assert await row_counts(db, brand.brand.id) == before


# fmt: off
BAD: list[tuple[str, bytes, dict[str, str], int, str | None]] = [
    ("not JSON", b"{nope", {}, 422, "$"),
    ("wrong field", json.dumps({"id": "x", "member": 5, "type": "v", "occurred_at": AT}).encode(), {}, 422, "$.member"),
    ("NUL in a string", json.dumps(event("x\u0000", "m", "purchase", AT)).encode(), {}, 422, "$.id"),
    ("dated next year", json.dumps(event("x", "m", "purchase", "2027-12-01T00:00:00Z")).encode(), {}, 422, "$.occurred_at"),
    ("1001 events", json.dumps({"events": [event(f"e{i}", "m", "v", AT) for i in range(1001)]}).encode(), {}, 413, "$.events"),
    ("over the body limit", json.dumps(event("x", "m", "v", AT, blob="x" * (2 << 20))).encode(), {}, 413, None),
    ("a form", b"id=x", {"content-type": "application/x-www-form-urlencoded"}, 415, None),
]
# fmt: on


@pytest.mark.parametrize(("name", "body", "headers", "status", "field"), BAD, ids=[b[0] for b in BAD])
async def test_bad_input_through_the_lean_path_gets_the_routes_problem_and_changes_nothing(
    client, brand, rules, lean, db, name, body, headers, status, field
):
    before = await row_counts(db, brand.brand.id)
    sent = {**brand.headers, "content-type": "application/json", **headers}
    response = await client.post("/v1/events", content=body, headers=sent)
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    assert problem["status"] == status and problem["detail"]
    if field is not None:
        assert problem["field"] == field
    routed = await client.post("/v1/events?via=route", content=body, headers=sent)
    assert routed.status_code == status
    assert {**routed.json(), "trace_id": ""} == {**problem, "trace_id": ""}  # the route's problem, but its trace
    assert lean == []
    assert await row_counts(db, brand.brand.id) == before


@pytest.mark.parametrize(
    ("which", "status"), [("publishable", 403), ("unknown", 401)], ids=["publishable key", "unknown key"]
)
async def test_a_key_the_lean_path_does_not_accept_is_refused_by_the_route(client, brand, lean, db, which, status):
    key = brand.publishable if which == "publishable" else "sk_" + "0" * 40
    before = await row_counts(db, brand.brand.id)
    response = await client.post(
        "/v1/events", json=event("x", "m", "purchase", AT), headers={"Authorization": f"Bearer {key}"}
    )
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert lean == []
    assert await row_counts(db, brand.brand.id) == before


async def test_cloudevents_go_through_the_route(client, brand, rules, lean):
    cloud = {
        "specversion": "1.0",
        "id": "ce-1",
        "source": "/pos",
        "type": "purchase",
        "subject": "m9",
        "time": AT,
        "data": {"amount": 12},
    }
    headers = {**brand.headers, "content-type": "application/cloudevents+json"}
    response = await client.post("/v1/events", content=json.dumps(cloud).encode(), headers=headers)
    assert response.status_code == 200, response.text
    assert response.json()["member"] == "m9"
    assert lean == []


async def test_a_body_read_in_parts_is_joined():
    """The middleware reads a body sent in several ASGI messages as one, and hands the same messages on."""
    payload = json.dumps(event("parts", "m2", "purchase", AT, amount=5)).encode()
    parts = [payload[:10], payload[10:25], payload[25:]]
    messages = [{"type": "http.request", "body": part, "more_body": i < 2} for i, part in enumerate(parts)]

    async def receive() -> dict[str, Any]:
        return messages.pop(0)

    body, read = await event_intake.read_body(receive, 1 << 20)  # type: ignore[arg-type]
    assert body == payload and len(read) == 3
    replayed = event_intake.replaying(read, receive)  # type: ignore[arg-type]
    assert [await replayed() for _ in range(3)] == read


async def test_a_body_over_the_limit_is_handed_on_unread_past_the_limit():
    messages = [{"type": "http.request", "body": b"x" * 600, "more_body": True} for _ in range(3)]

    async def receive() -> dict[str, Any]:
        return messages.pop(0)

    body, read = await event_intake.read_body(receive, 1000)  # type: ignore[arg-type]
    assert body is None and len(read) == 2 and len(messages) == 1
    replayed = event_intake.replaying(read, receive)  # type: ignore[arg-type]
    assert [len((await replayed())["body"]) for _ in range(3)] == [600, 600, 600]
