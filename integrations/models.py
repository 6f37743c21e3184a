"""How a brand maps a source's event names to Questline events (pure, no I/O).

The ``sources:`` section of the program document (each entry merged over the source's defaults)::

    sources:
      - source: segment
        events:
          Order Completed: {type: purchase, amount_from: [revenue, total, value]}
          Order Refunded: {retract: true, amount_from: [revenue, total]}
        passthrough: true        # unmapped names arrive under their own name
      - source: cloudevents
        events:
          com.example.order.paid: {type: purchase, amount_from: [total]}
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec

from engine.events import EventType

PropertyName = Annotated[str, msgspec.Meta(min_length=1, max_length=100)]


class EventMap(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """What one source event name becomes."""

    type: EventType | None = None
    """The Questline event type; ``None`` keeps the source's name."""
    amount_from: list[PropertyName] = []
    """Properties tried in order; the first numeric one is copied to ``amount``."""
    retract: bool = False
    """The event asks to retract an earlier purchase (a refund) instead of being an event itself."""
    reference_from: PropertyName = "order_id"
    """For ``retract``: the property naming the original order."""


class SourceMapping(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One source's mapping of event names."""

    events: dict[str, EventMap] = {}
    passthrough: bool = True
    """Unmapped names arrive as events of that type; ``False`` ignores them."""


class SourceSpec(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One entry of the ``sources:`` section."""

    source: Literal["segment", "cloudevents"]
    events: dict[str, EventMap] = {}
    passthrough: bool = True

    def mapping(self) -> SourceMapping:
        """The mapping this entry sets."""
        return SourceMapping(events=self.events, passthrough=self.passthrough)


_REVENUE = ["revenue", "total", "value"]

#: Segment's e-commerce spec (v2) names, mapped to Questline's conventional types.
SEGMENT_DEFAULTS = SourceMapping(
    events={
        "Order Completed": EventMap(type="purchase", amount_from=_REVENUE),
        "Order Refunded": EventMap(retract=True, amount_from=_REVENUE),
        "Product Reviewed": EventMap(type="review"),
        "Signed Up": EventMap(type="signup"),
        "Product Added": EventMap(type="cart_add"),
        "Checkout Started": EventMap(type="checkout"),
    }
)
CLOUDEVENTS_DEFAULTS = SourceMapping()


class Mapped(msgspec.Struct, frozen=True, kw_only=True):
    """The outcome of mapping one source event."""

    type: str | None
    """The Questline type, or ``None`` when the event is ignored."""
    properties: dict[str, Any]
    retract: bool = False
    reference: str | None = None
    """For a retraction: the original order's reference."""
    amount: float | None = None
    """For a retraction: the refunded amount (``None``: the whole event)."""


def merged(custom: SourceMapping | None, defaults: SourceMapping) -> SourceMapping:
    """The brand's mapping over the defaults (the brand's entries win)."""
    if custom is None:
        return defaults
    return SourceMapping(events={**defaults.events, **custom.events}, passthrough=custom.passthrough)


def _first_number(properties: dict[str, Any], names: list[str]) -> float | None:
    for name in names:
        value = properties.get(name)
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                continue
    return None


def map_event(name: str, properties: dict[str, Any], mapping: SourceMapping) -> Mapped:
    """Map a source event name and its properties through ``mapping``."""
    rule = mapping.events.get(name)
    if rule is None:
        return Mapped(type=name if mapping.passthrough else None, properties=properties)
    amount = _first_number(properties, rule.amount_from)
    if rule.retract:
        reference = properties.get(rule.reference_from)
        return Mapped(
            type=None,
            properties=properties,
            retract=True,
            reference=None if reference is None else str(reference),
            amount=amount,
        )
    out = dict(properties)
    if amount is not None and "amount" not in out:
        out["amount"] = amount
    return Mapped(type=rule.type or name, properties=out)
