"""Sources over HTTP: the Segment mount, CloudEvents in three modes, Shopify and WooCommerce webhooks."""

import base64
import gzip
import json

import pytest
from sqlalchemy import select

from engine.earning import EarningRuleSpec, PerUnit
from engine.rules_store import put_rule
from integrations.orm import PendingRetractionRow
from integrations.shop import sign
from tests.helpers import row_counts
from tests.payloads import shopify_order, shopify_refund, woo_order


@pytest.fixture
async def rules(db, brand, clock):
    await put_rule(
        db,
        brand_id=brand.brand.id,
        spec=EarningRuleSpec(key="buy", event_type="purchase", per_unit=PerUnit(property="amount")),
        now=clock.now(),
    )


def basic(key: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{key}:".encode()).decode()}


async def balance(client, brand, member: str) -> int:
    answer = await client.get(f"/v1/members/{member}/points", headers=brand.headers)
    assert answer.status_code == 200, answer.text
    return int(answer.json()["balance"])


TRACK = {
    "type": "track",
    "userId": "anna",
    "event": "Order Completed",
    "messageId": "ajs-next-1f2e3d",
    "properties": {"order_id": "50314b8e9bcf000000000000", "revenue": 25.0, "currency": "USD"},
    "timestamp": "2026-11-19T08:00:00.000Z",
    "context": {"library": {"name": "analytics-python", "version": "2.3.3"}},
}


async def test_segment_track_with_basic_auth_and_duplicate_message_id(client, brand, rules, db):
    answer = await client.post("/segment/v1/track", json=TRACK, headers=basic(brand.secret))
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"success": True}
    assert await balance(client, brand, "anna") == 25
    before = await row_counts(db, brand.brand.id)
    again = await client.post("/segment/v1/t", json=TRACK, headers=basic(brand.secret))
    assert again.status_code == 200
    assert await row_counts(db, brand.brand.id) == before
    assert await balance(client, brand, "anna") == 25


async def test_segment_auth_is_required_and_secret(client, brand, rules):
    assert (await client.post("/segment/v1/track", json=TRACK)).status_code == 401
    assert (await client.post("/segment/v1/track", json=TRACK, headers=basic("sk_nope"))).status_code == 401
    assert (await client.post("/segment/v1/track", json=TRACK, headers=basic(brand.publishable))).status_code == 403


async def test_segment_batch_gzip_identify_and_refund(client, brand, rules, db):
    body = {
        "batch": [
            {"type": "identify", "userId": "bo", "messageId": "i-1", "traits": {"name": "Bo Lind", "plan": "gold"}},
            {**TRACK, "userId": "bo", "messageId": "t-1"},
            {
                "type": "track",
                "userId": "bo",
                "event": "Order Refunded",
                "messageId": "r-1",
                "properties": {"order_id": "50314b8e9bcf000000000000", "total": 5},
            },
            {"type": "track", "anonymousId": "visitor", "event": "Order Completed", "messageId": "a-1"},
        ],
        "sentAt": "2026-11-20T10:00:00Z",
    }
    headers = {**basic(brand.secret), "Content-Type": "application/json", "Content-Encoding": "gzip"}
    answer = await client.post("/segment/v1/batch", content=gzip.compress(json.dumps(body).encode()), headers=headers)
    assert answer.status_code == 200, answer.text
    member = (await client.get("/v1/members/bo", headers=brand.headers)).json()
    assert member["display_name"] == "Bo Lind" and member["attributes"] == {"plan": "gold"}
    assert member["points"] == 20  # 25 earned, the "Order Refunded" of 5 retracted at once
    async with db.read() as session:
        [pending] = (
            await session.scalars(select(PendingRetractionRow).where(PendingRetractionRow.brand_id == brand.brand.id))
        ).all()
    assert (pending.event_key, pending.by, pending.amount, pending.source) == (
        "50314b8e9bcf000000000000",
        "order_id",
        5.0,
        "segment",
    )


async def test_segment_gzip_bomb_and_bad_input(client, brand, rules, db, settings):
    before = await row_counts(db, brand.brand.id)
    bomb = gzip.compress(b"{" + b" " * (settings.max_body_bytes + 10) + b"}")
    headers = {**basic(brand.secret), "Content-Encoding": "gzip", "Content-Type": "application/json"}
    assert (await client.post("/segment/v1/track", content=bomb, headers=headers)).status_code == 413
    assert (await client.post("/segment/v1/track", content=b"not gzip", headers=headers)).status_code == 422
    missing = await client.post("/segment/v1/track", json={**TRACK, "messageId": None}, headers=basic(brand.secret))
    assert missing.status_code == 422 and missing.json()["field"] == "$.messageId"
    assert await row_counts(db, brand.brand.id) == before


async def test_segment_webhook_destination_accepts_one_message_of_any_type(client, brand, rules):
    headers = {"Authorization": f"Bearer {brand.secret}"}
    answer = await client.post("/segment/v1/webhook", json={**TRACK, "messageId": "w-1"}, headers=headers)
    assert answer.status_code == 200
    page = {"type": "page", "userId": "anna", "messageId": "p-1", "name": "Home"}
    assert (await client.post("/segment/v1/webhook", json=page, headers=headers)).status_code == 200
    assert await balance(client, brand, "anna") == 25


CE = {
    "specversion": "1.0",
    "id": "A234-1234-1234",
    "source": "https://shop.example/checkout",
    "type": "purchase",
    "subject": "cleo",
    "time": "2026-11-20T09:00:00Z",
    "datacontenttype": "application/json",
    "data": {"amount": 30},
}


async def test_cloudevents_structured_batch_and_binary(client, brand, rules):
    structured = {**brand.headers, "Content-Type": "application/cloudevents+json"}
    one = await client.post("/v1/events", content=json.dumps(CE), headers=structured)
    assert one.status_code == 200, one.text
    assert one.json()["id"] == "https://shop.example/checkout A234-1234-1234"
    again = await client.post("/v1/events", content=json.dumps(CE), headers=structured)
    assert again.json()["duplicate"] is True
    batch = [{**CE, "id": "b1"}, {**CE, "id": "b2", "source": "urn:pos:roma"}]
    answer = await client.post(
        "/v1/events",
        content=json.dumps(batch),
        headers={**brand.headers, "Content-Type": "application/cloudevents-batch+json"},
    )
    assert answer.status_code == 200, answer.text
    assert [r["duplicate"] for r in answer.json()["results"]] == [False, False]
    binary = {
        **brand.headers,
        "Content-Type": "application/json",
        "ce-specversion": "1.0",
        "ce-id": "bin-1",
        "ce-source": "urn:pos",
        "ce-type": "purchase",
        "ce-subject": "cleo",
        "ce-time": "2026-11-20T09:30:00Z",
    }
    answer = await client.post("/v1/events", content=b'{"amount": 10}', headers=binary)
    assert answer.status_code == 200, answer.text
    assert await balance(client, brand, "cleo") == 100


async def test_invalid_cloudevents_answer_422_naming_the_attribute(client, brand, rules, db):
    before = await row_counts(db, brand.brand.id)
    structured = {**brand.headers, "Content-Type": "application/cloudevents+json"}
    for broken, field in (
        ({**CE, "specversion": "0.3"}, "$.specversion"),
        ({k: v for k, v in CE.items() if k != "source"}, "$.source"),
    ):
        answer = await client.post("/v1/events", content=json.dumps(broken), headers=structured)
        assert answer.status_code == 422, answer.text
        assert answer.json()["field"] == field
    batch = [CE, {**CE, "id": "x", "subject": ""}]
    answer = await client.post(
        "/v1/events",
        content=json.dumps(batch),
        headers={**brand.headers, "Content-Type": "application/cloudevents-batch+json"},
    )
    assert answer.status_code == 422 and answer.json()["field"] == "$[1].subject"
    binary = {
        **brand.headers,
        "Content-Type": "application/json",
        "ce-specversion": "1.0",
        "ce-id": "1",
        "ce-type": "t",
    }
    answer = await client.post("/v1/events", content=b"{}", headers=binary)
    assert answer.status_code == 422 and answer.json()["field"] == "source"
    assert await row_counts(db, brand.brand.id) == before


async def configure(client, brand, platform: str, secret: str, **extra):
    answer = await client.put(f"/v1/integrations/{platform}", json={"secret": secret, **extra}, headers=brand.headers)
    assert answer.status_code == 200, answer.text
    assert "secret" not in answer.json()
    return answer.json()


async def test_shopify_paid_order_refund_and_signatures(client, brand, rules, db):
    secret = "shpss_0123456789abcdef"
    out = await configure(client, brand, "shopify", secret, shop_domain="roma.myshopify.com")
    assert out["webhook_path"] == f"/hooks/shopify/{brand.brand.slug}"
    listed = (await client.get("/v1/integrations", headers=brand.headers)).json()
    assert secret not in json.dumps(listed)
    body = json.dumps(shopify_order()).encode()
    url = f"/hooks/shopify/{brand.brand.slug}"
    headers = {
        "X-Shopify-Topic": "orders/paid",
        "X-Shopify-Shop-Domain": "roma.myshopify.com",
        "Content-Type": "application/json",
    }
    bad = await client.post(url, content=body, headers={**headers, "X-Shopify-Hmac-Sha256": sign("wrong", body)})
    assert bad.status_code == 401
    assert (await client.post(url, content=body, headers=headers)).status_code == 401
    good = {**headers, "X-Shopify-Hmac-Sha256": sign(secret, body)}
    answer = await client.post(url, content=body, headers=good)
    assert answer.status_code == 200, answer.text
    assert answer.json()["outcome"] == "purchase" and answer.json()["event_id"] == "shopify:820982911946154508"
    assert (await client.post(url, content=body, headers=good)).json()["duplicate"] is True
    assert await balance(client, brand, "anna@example.com") == 199
    refund = json.dumps(shopify_refund()).encode()
    refund_headers = {**headers, "X-Shopify-Topic": "refunds/create", "X-Shopify-Hmac-Sha256": sign(secret, refund)}
    first = await client.post(url, content=refund, headers=refund_headers)
    assert first.json()["outcome"] == "retraction" and first.json()["duplicate"] is False
    assert (await client.post(url, content=refund, headers=refund_headers)).json()["duplicate"] is True
    async with db.read() as session:
        [pending] = (
            await session.scalars(select(PendingRetractionRow).where(PendingRetractionRow.brand_id == brand.brand.id))
        ).all()
    assert (pending.event_key, pending.amount, pending.source) == ("shopify:820982911946154508", 41.94, "shopify")


async def test_shopify_unknown_brand_or_unconfigured(client, brand):
    body = b"{}"
    assert (await client.post("/hooks/shopify/no-such-brand", content=body)).status_code == 404
    assert (await client.post(f"/hooks/shopify/{brand.brand.slug}", content=body)).status_code == 404


async def test_woocommerce_order_updated_and_signatures(client, brand, rules):
    secret = "woo-secret-123456"
    await configure(client, brand, "woocommerce", secret, member_key="customer_id")
    url = f"/hooks/woocommerce/{brand.brand.slug}"
    ping = await client.post(
        url, content=b"webhook_id=12", headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    assert ping.status_code == 200 and ping.json()["outcome"] == "ignored"
    body = json.dumps(woo_order()).encode()
    headers = {"X-WC-Webhook-Topic": "order.updated", "X-WC-Webhook-Resource": "order", "X-WC-Webhook-Event": "updated"}
    assert (
        await client.post(url, content=body, headers={**headers, "X-WC-Webhook-Signature": sign("nope", body)})
    ).status_code == 401
    answer = await client.post(url, content=body, headers={**headers, "X-WC-Webhook-Signature": sign(secret, body)})
    assert answer.status_code == 200, answer.text
    assert answer.json()["event_id"] == "woo:727"
    completed = json.dumps(woo_order(status="completed")).encode()
    again = await client.post(
        url, content=completed, headers={**headers, "X-WC-Webhook-Signature": sign(secret, completed)}
    )
    assert again.json()["duplicate"] is True
    assert await balance(client, brand, "26") == 29


async def test_integration_settings_validation(client, brand):
    assert (
        await client.put("/v1/integrations/magento", json={"secret": "0123456789"}, headers=brand.headers)
    ).status_code == 404
    short = await client.put("/v1/integrations/shopify", json={"secret": "x"}, headers=brand.headers)
    assert short.status_code in (400, 422)
    assert (
        await client.put("/v1/integrations/shopify", json={"secret": "0123456789"}, headers=brand.public_headers)
    ).status_code == 403


async def test_program_sources_section_maps_segment_names(client, brand, rules):
    document = {
        "sources": [
            {
                "source": "segment",
                "passthrough": False,
                "events": {"Order Placed": {"type": "purchase", "amount_from": ["total"]}},
            }
        ]
    }
    applied = await client.put("/v1/program", json=document, headers=brand.headers)
    assert applied.status_code == 200, applied.text
    assert applied.json()["changes"] == ["sources.segment: mapping set"]
    exported = (await client.get("/v1/program", headers=brand.headers)).json()
    assert exported["sources"][0]["source"] == "segment"
    assert exported["sources"][0]["events"]["Order Placed"]["type"] == "purchase"
    track = {"userId": "dee", "event": "Order Placed", "messageId": "op-1", "properties": {"total": "40"}}
    assert (await client.post("/segment/v1/track", json=track, headers=basic(brand.secret))).status_code == 200
    ignored = {"userId": "dee", "event": "Something Else", "messageId": "se-1"}
    assert (await client.post("/segment/v1/track", json=ignored, headers=basic(brand.secret))).status_code == 200
    assert await balance(client, brand, "dee") == 40
    bad = await client.put("/v1/program", json={"sources": [{"source": "mixpanel"}]}, headers=brand.headers)
    assert bad.status_code == 422 and bad.json()["field"].startswith("$.sources[0]")


async def test_openapi_documents_the_sources(client):
    schema = (await client.get("/schema/openapi.json")).json()
    for path in ("/segment/v1/track", "/segment/v1/batch", "/hooks/shopify/{slug}", "/v1/integrations/{platform}"):
        assert path in schema["paths"], path
