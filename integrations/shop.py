"""Shopify and WooCommerce order webhooks → Questline purchases and retraction requests (pure, no I/O).

Both platforms sign the raw body: ``base64(HMAC-SHA256(secret, body))`` in ``X-Shopify-Hmac-Sha256`` or
``X-WC-Webhook-Signature``. A paid order becomes a ``purchase`` whose id is ``shopify:<order id>`` or
``woo:<order id>`` (so a retried webhook, or Woo's ``processing`` then ``completed``, counts once), a refund
a :class:`RefundRequest` for that id.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import UTC, datetime
from typing import Any, Literal

import msgspec

from engine.errors import ValidationError
from engine.events import Event
from integrations.errors import from_msgspec

Platform = Literal["shopify", "woocommerce"]
MemberKey = Literal["email", "customer_id"]
PREFIX: dict[str, str] = {"shopify": "shopify", "woocommerce": "woo"}
MAX_LINE_ITEMS = 50
WOO_PAID = ("processing", "completed")


def sign(secret: str, body: bytes) -> str:
    """The platforms' signature of ``body``: base64 of its HMAC-SHA256 under ``secret``."""
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def verify(secret: str, body: bytes, signature: str | None) -> bool:
    """Whether ``signature`` signs ``body`` under ``secret`` (constant-time comparison)."""
    if not signature:
        return False
    return hmac.compare_digest(sign(secret, body).encode(), signature.strip().encode())


class RefundRequest(msgspec.Struct, frozen=True, kw_only=True):
    """Retract (part of) a purchase: ``amount`` ``None`` means all of it."""

    request_id: str
    event_id: str
    amount: float | None


class Ignored(msgspec.Struct, frozen=True, kw_only=True):
    """A webhook that asks nothing of Questline (another topic, an unpaid order, a guest)."""

    reason: str


Outcome = Event | RefundRequest | Ignored

_OBJECT = msgspec.json.Decoder(dict[str, Any])


def decode(body: bytes) -> dict[str, Any]:
    """The webhook's JSON object.

    Raises:
        ValidationError: not a JSON object.
    """
    try:
        return _OBJECT.decode(body)
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        raise from_msgspec(exc) from exc


def _money(value: Any) -> float | None:
    try:
        return round(float(value), 2) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None


def _when(value: Any, *, naive_is_utc: bool) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC) if naive_is_utc else None
    return parsed


def _member(order: dict[str, Any], *, member_key: MemberKey, customer_id: Any, email: Any) -> str | None:
    value = customer_id if member_key == "customer_id" else email
    if value in (None, "", 0):
        return None
    return str(value).strip().lower() if member_key == "email" else str(value)


def _line_items(items: Any, *, price: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for item in (items or [])[:MAX_LINE_ITEMS]:
        if not isinstance(item, dict):
            continue
        out.append(
            {
                "product_id": item.get("product_id"),
                "sku": str(item.get("sku") or "")[:64],
                "name": str(item.get("name") or item.get("title") or "")[:100],
                "quantity": item.get("quantity") if isinstance(item.get("quantity"), int) else 1,
                "price": _money(item.get(price)),
            }
        )
    return out


def _purchase(
    *,
    platform: Platform,
    order: dict[str, Any],
    member: str,
    amount: float,
    when: datetime,
    items: list[dict[str, Any]],
) -> Event:
    properties = {
        "amount": amount,
        "currency": str(order.get("currency") or ""),
        "order_id": str(order["id"]),
        "source": platform,
        "line_items": items,
        "items": sum(int(i["quantity"]) for i in items),
    }
    wire = {
        "id": f"{PREFIX[platform]}:{order['id']}",
        "member": member,
        "type": "purchase",
        "occurred_at": when,
        "properties": properties,
    }
    try:
        return msgspec.convert(wire, Event)
    except msgspec.ValidationError as exc:
        raise from_msgspec(exc) from exc


def _order_id(order: dict[str, Any], key: str = "id") -> str:
    value = order.get(key)
    if not isinstance(value, int | str) or value in ("", 0):
        raise ValidationError(f"the payload has no `{key}`", field=f"$.{key}")
    return str(value)


def shopify(topic: str, payload: dict[str, Any], *, member_key: MemberKey, now: datetime) -> Outcome:
    """What a Shopify webhook asks: ``orders/paid`` a purchase, ``refunds/create`` a refund.

    Raises:
        ValidationError: the payload lacks its ids.
    """
    if topic == "refunds/create":
        return _shopify_refund(payload)
    if topic != "orders/paid":
        return Ignored(reason=f"topic {topic or '(none)'} is not used")
    _order_id(payload)
    customer = payload.get("customer") or {}
    email = payload.get("email") or payload.get("contact_email") or customer.get("email")
    member = _member(payload, member_key=member_key, customer_id=customer.get("id"), email=email)
    if member is None:
        return Ignored(reason=f"the order has no customer {member_key}")
    amount = _money(payload.get("total_price")) or 0.0
    when = _when(payload.get("processed_at") or payload.get("created_at"), naive_is_utc=False) or now
    items = _line_items(payload.get("line_items"), price="price")
    return _purchase(platform="shopify", order=payload, member=member, amount=amount, when=when, items=items)


def _shopify_refund(payload: dict[str, Any]) -> RefundRequest:
    refund_id = _order_id(payload)
    order_id = _order_id(payload, "order_id")
    transactions = [
        t
        for t in payload.get("transactions") or []
        if isinstance(t, dict) and t.get("kind") == "refund" and t.get("status") in (None, "success")
    ]
    amounts = [_money(t.get("amount")) or 0.0 for t in transactions]
    if not amounts:
        amounts = [
            _money(i.get("subtotal")) or 0.0 for i in payload.get("refund_line_items") or [] if isinstance(i, dict)
        ]
    amount = round(sum(amounts), 2) if amounts else None
    return RefundRequest(request_id=f"shopify:refund:{refund_id}", event_id=f"shopify:{order_id}", amount=amount)


def woocommerce(topic: str, payload: dict[str, Any], *, member_key: MemberKey, now: datetime) -> Outcome:
    """What a WooCommerce order webhook asks: a paid order a purchase, a refunded one a whole refund.

    Raises:
        ValidationError: the payload lacks its id.
    """
    if topic not in ("order.updated", "order.created"):
        return Ignored(reason=f"topic {topic or '(none)'} is not used")
    order_id = _order_id(payload)
    status = payload.get("status")
    if status == "refunded":
        return RefundRequest(request_id=f"woo:refund:{order_id}", event_id=f"woo:{order_id}", amount=None)
    if status not in WOO_PAID:
        return Ignored(reason=f"order status {status!r} is not paid")
    billing = payload.get("billing") or {}
    member = _member(payload, member_key=member_key, customer_id=payload.get("customer_id"), email=billing.get("email"))
    if member is None:
        return Ignored(reason=f"the order has no customer {member_key}")
    amount = _money(payload.get("total")) or 0.0
    when = (
        _when(payload.get("date_paid_gmt") or payload.get("date_created_gmt"), naive_is_utc=True)
        or _when(payload.get("date_paid") or payload.get("date_created"), naive_is_utc=False)
        or now
    )
    items = _line_items(payload.get("line_items"), price="total")
    return _purchase(platform="woocommerce", order=payload, member=member, amount=amount, when=when, items=items)
