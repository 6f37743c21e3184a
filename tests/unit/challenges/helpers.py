"""Builders for pure challenge tests: compiled challenges from plain specs, events from local times."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from challenges.config import CampaignSpec, ChallengeSpec, build_campaign, build_challenge, decode
from challenges.models import Challenge
from engine.events import Event

ROME = ZoneInfo("Europe/Rome")
LIVE = datetime(2020, 1, 1, tzinfo=UTC)


def challenge(rule: dict[str, Any], *, campaign: dict[str, Any] | None = None, **fields: Any) -> Challenge:
    """A compiled challenge in a (by default always-open) campaign, read in Europe/Rome."""
    campaign_spec = decode({"key": "c", "title": "Campaign", **(campaign or {})}, CampaignSpec, path="$")
    spec = decode({"key": "x", "campaign": "c", "title": "X", "rule": rule, **fields}, ChallengeSpec, path="$")
    return build_challenge(
        spec,
        campaign=build_campaign(spec=campaign_spec, tz=ROME, campaign_id=1),
        tz=ROME,
        challenge_id=1,
        live_since=LIVE,
    )


def at(local: str) -> datetime:
    """An instant from a Europe/Rome wall-clock time (``2026-03-29T23:30``) or an RFC 3339 string."""
    parsed = datetime.fromisoformat(local)
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=ROME)).astimezone(UTC)


_counter = iter(range(1_000_000))


def ev(type_: str, local: str, **properties: Any) -> Event:
    """An event of ``type_`` at a Europe/Rome wall-clock time."""
    return Event(id=f"e{next(_counter)}", member="m", type=type_, occurred_at=at(local), properties=properties)
