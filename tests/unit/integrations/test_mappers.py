"""The pure mappers: Segment, CloudEvents, Shopify and WooCommerce payloads → events."""

from datetime import UTC, datetime

import msgspec
import pytest

from engine.errors import PayloadTooLarge, ValidationError
from engine.events import Event
from integrations import cloudevents, segment, shop
from integrations.models import CLOUDEVENTS_DEFAULTS, SEGMENT_DEFAULTS, EventMap, SourceMapping, merged
from tests.payloads import shopify_order, shopify_refund, woo_order

NOW = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)


def _segment(body, endpoint="track", mapping=SEGMENT_DEFAULTS):
    messages, _ = segment.decode(msgspec.json.encode(body), endpoint=endpoint, max_batch=10)
    return segment.to_actions(messages, mapping=mapping, now=NOW)


def test_segment_order_completed_is_a_purchase_with_revenue_as_amount():
    [event] = _segment(
        {
            "userId": "anna",
            "event": "Order Completed",
            "messageId": "m-1",
            "properties": {"order_id": "50314b8e", "revenue": 25.0, "currency": "USD"},
            "timestamp": "2026-11-19T08:00:00.000Z",
        }
    )
    assert isinstance(event, Event)
    assert (event.id, event.member, event.type) == ("m-1", "anna", "purchase")
    assert event.properties["amount"] == 25.0
    assert event.occurred_at == datetime(2026, 11, 19, 8, 0, tzinfo=UTC)


def test_segment_unmapped_names_pass_through_or_are_ignored():
    body = {"userId": 7, "event": "Review Submitted", "messageId": "m-2"}
    [event] = _segment(body)
    assert isinstance(event, Event) and (event.type, event.member) == ("Review Submitted", "7")
    strict = SourceMapping(passthrough=False)
    assert _segment(body, mapping=strict) == []


def test_segment_brand_mapping_overrides_defaults():
    mapping = merged(
        SourceMapping(events={"Order Completed": EventMap(type="order", amount_from=["total"])}), SEGMENT_DEFAULTS
    )
    [event] = _segment(
        {"userId": "a", "event": "Order Completed", "messageId": "m", "properties": {"total": "12.5", "revenue": 99}},
        mapping=mapping,
    )
    assert isinstance(event, Event) and event.type == "order" and event.properties["amount"] == 12.5


def test_segment_clock_skew_correction_from_original_timestamp():
    [event] = _segment(
        {
            "userId": "a",
            "event": "x",
            "messageId": "m",
            "originalTimestamp": "2026-11-20T09:00:00Z",
            "sentAt": "2026-11-20T09:10:00Z",
        }
    )
    assert isinstance(event, Event) and event.occurred_at == datetime(2026, 11, 20, 9, 50, tzinfo=UTC)


def test_segment_identify_refund_and_anonymous():
    actions = _segment(
        {
            "batch": [
                {
                    "type": "identify",
                    "userId": "anna",
                    "messageId": "i1",
                    "traits": {"name": "Anna R.", "plan": "gold"},
                },
                {"type": "track", "anonymousId": "anon", "event": "Order Completed", "messageId": "a1"},
                {
                    "type": "track",
                    "userId": "anna",
                    "event": "Order Refunded",
                    "messageId": "r1",
                    "properties": {"order_id": "o-9", "total": 10},
                },
            ]
        },
        endpoint="batch",
    )
    assert actions == [
        segment.Identify(member="anna", display_name="Anna R.", attributes={"plan": "gold"}),
        segment.Retraction(request_id="r1", member="anna", reference="o-9", amount=10.0),
    ]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"userId": "a", "event": "x"}, "$.messageId"),
        ({"userId": "a", "messageId": "m"}, "$.event"),
        ({"userId": "a", "messageId": "m", "event": "x", "properties": []}, "$.properties"),
        ({"userId": "a", "messageId": "m", "event": "x", "timestamp": "yesterday"}, "$.timestamp"),
    ],
)
def test_segment_bad_messages_name_the_field(body, field):
    with pytest.raises(ValidationError) as caught:
        _segment(body)
    assert caught.value.field == field


def test_segment_batch_limit():
    with pytest.raises(PayloadTooLarge):
        segment.decode(msgspec.json.encode({"batch": [{"userId": "a"}] * 11}), endpoint="batch", max_batch=10)


def _ce(**overrides):
    body = {
        "specversion": "1.0",
        "id": "A234-1234-1234",
        "source": "/shop/checkout",
        "type": "com.example.purchase",
        "subject": "anna",
        "time": "2026-11-20T09:00:00Z",
        "datacontenttype": "application/json",
        "data": {"amount": 12},
    }
    body.update(overrides)
    return {k: v for k, v in body.items() if v is not None}


def test_cloudevent_structured_maps_the_pair_to_the_id():
    wires = cloudevents.decode_structured(msgspec.json.encode(_ce()), batch=False, max_batch=10)
    [event] = cloudevents.to_events(wires, mapping=CLOUDEVENTS_DEFAULTS, now=NOW, batch=False)
    assert (event.id, event.member, event.type, event.properties) == (
        "/shop/checkout A234-1234-1234",
        "anna",
        "com.example.purchase",
        {"amount": 12},
    )


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"specversion": "0.3"}, "$.specversion"),
        ({"subject": None}, "$.subject"),
        ({"id": None}, "$.id"),
        ({"source": "has space"}, "$.source"),
        ({"data": None, "data_base64": "AAAA"}, "$.data_base64"),
        ({"datacontenttype": "text/plain", "data": "hi"}, "$.datacontenttype"),
        ({"data": [1, 2]}, "$.data"),
        ({"type": "bad/type!"}, "$.type"),
    ],
)
def test_invalid_cloudevents_name_the_attribute(overrides, field):
    def decode():
        wires = cloudevents.decode_structured(msgspec.json.encode(_ce(**overrides)), batch=False, max_batch=10)
        return cloudevents.to_events(wires, mapping=CLOUDEVENTS_DEFAULTS, now=NOW, batch=False)

    with pytest.raises(ValidationError) as caught:
        decode()
    assert caught.value.field == field


def test_cloudevent_binary_mode():
    headers = {"ce-specversion": "1.0", "ce-id": "1", "ce-source": "urn:pos", "ce-type": "visit", "ce-subject": "bo"}
    wire = cloudevents.decode_binary(headers, b'{"store": "roma"}', content_type="application/json")
    [event] = cloudevents.to_events([wire], mapping=CLOUDEVENTS_DEFAULTS, now=NOW, batch=False)
    assert (event.id, event.member, event.occurred_at, event.properties) == ("urn:pos 1", "bo", NOW, {"store": "roma"})
    with pytest.raises(ValidationError) as caught:
        cloudevents.decode_binary({**headers, "ce-source": ""}, b"{}", content_type="application/json")
    assert caught.value.field == "source"


def test_signatures_are_base64_hmac_sha256():
    body = b'{"id": 1}'
    signature = shop.sign("s3cret", body)
    assert shop.verify("s3cret", body, signature)
    assert not shop.verify("s3cret", body + b" ", signature)
    assert not shop.verify("other", body, signature)
    assert not shop.verify("s3cret", body, None)


def test_shopify_paid_order_and_refund():
    event = shop.shopify("orders/paid", shopify_order(), member_key="email", now=NOW)
    assert isinstance(event, Event)
    assert (event.id, event.member, event.type) == ("shopify:820982911946154508", "anna@example.com", "purchase")
    assert event.properties["amount"] == 199.0 and event.properties["currency"] == "EUR"
    assert [i["sku"] for i in event.properties["line_items"]] == ["IPOD2008PINK", "CASE"]
    assert event.properties["items"] == 3
    by_id = shop.shopify("orders/paid", shopify_order(), member_key="customer_id", now=NOW)
    assert isinstance(by_id, Event) and by_id.member == "115310627314723954"
    refund = shop.shopify("refunds/create", shopify_refund(), member_key="email", now=NOW)
    assert refund == shop.RefundRequest(
        request_id="shopify:refund:509562969", event_id="shopify:820982911946154508", amount=41.94
    )
    assert isinstance(shop.shopify("orders/create", shopify_order(), member_key="email", now=NOW), shop.Ignored)


def test_woocommerce_statuses():
    paid = shop.woocommerce("order.updated", woo_order(), member_key="email", now=NOW)
    assert isinstance(paid, Event)
    assert (paid.id, paid.member, paid.properties["amount"]) == ("woo:727", "john.doe@example.com", 29.35)
    assert paid.occurred_at == datetime(2026, 11, 20, 10, 5, tzinfo=UTC)
    assert isinstance(
        shop.woocommerce("order.updated", woo_order(status="pending"), member_key="email", now=NOW), shop.Ignored
    )
    refunded = shop.woocommerce("order.updated", woo_order(status="refunded"), member_key="email", now=NOW)
    assert refunded == shop.RefundRequest(request_id="woo:refund:727", event_id="woo:727", amount=None)
    guest = woo_order()
    guest["customer_id"] = 0
    assert isinstance(shop.woocommerce("order.updated", guest, member_key="customer_id", now=NOW), shop.Ignored)
