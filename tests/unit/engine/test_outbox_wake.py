"""The webhook deliverer is woken after a commit only when the unit wrote something for it to deliver."""

from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import pytest

from engine import publishing
from engine.effects import Notification, PointsAwarded, ProgressAdvanced
from engine.outbox import OutboxProcessor

AT = datetime(2026, 12, 6, 10, tzinfo=UTC)


class Deliverer:
    db = None

    def __init__(self) -> None:
        self.woken = 0

    def notify(self) -> None:
        self.woken += 1


def unit(listened: frozenset[str], *effects: Any) -> SimpleNamespace:
    event = SimpleNamespace(id="e1", member="anna", type="purchase", occurred_at=AT)
    return SimpleNamespace(
        events=[SimpleNamespace(event=event, effects=list(effects), member_id=1)],
        brand=SimpleNamespace(id=1),
        now=AT,
        stash={"publishing.listened": listened},  # what the brand's endpoints listen to, as the step read it
    )


@pytest.mark.parametrize(
    ("listened", "effects", "rows", "woken"),
    [
        (frozenset(), [PointsAwarded(points=10, source="rule", key="buy")], 0, 0),  # nobody listens: no round
        (frozenset({"points.awarded"}), [PointsAwarded(points=10, source="rule", key="buy")], 1, 1),
        (frozenset({"points.awarded"}), [ProgressAdvanced(challenge="c", progress=1, target=3)], 0, 0),
        (frozenset({"challenge.progressed"}), [ProgressAdvanced(challenge="c", progress=1, target=3)], 1, 1),
        (frozenset(), [Notification(topic="badge.awarded", data={})], 0, 1),  # a notification is always a row
    ],
)
async def test_the_deliverer_is_woken_only_for_rows_written(listened, effects, rows, woken):
    uow = unit(listened, *effects)
    assert len(await publishing.derived_rows(uow)) == rows  # what the pipeline writes to the outbox
    deliverer = Deliverer()
    await OutboxProcessor(deliverer).after_commit(uow)  # type: ignore[arg-type]
    assert deliverer.woken == woken
