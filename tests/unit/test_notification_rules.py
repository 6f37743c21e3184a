"""The pure notification rules: who a message tells, quiet hours, the digest hour, the retry schedule."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import msgspec
import pytest

from notifications.models import (
    RETRY_SCHEDULE,
    BrandControls,
    MemberChoices,
    controls_of,
    next_digest_at,
    quiet_until,
    recipients,
    retry_at,
    wants_email,
)

ROME = ZoneInfo("Europe/Rome")


def test_recipients_per_topic():
    assert recipients("badge.awarded", {"member": "m", "badge": "vip"}) == [("m", "badge_earned")]
    assert recipients("tier.downgraded", {"member": "m"}) == [("m", "tier_changed")]
    assert recipients("referral.qualified", {"referrer": "a", "friend": "b"}) == [
        ("a", "referral_qualified"),
        ("b", "referral_qualified"),
    ]
    assert recipients("points.spent", {"member": "m"}) == []  # not a notification kind
    assert recipients("badge.awarded", {"member": ""}) == []


def test_quiet_hours_overnight_and_same_day():
    night = BrandControls(quiet_start="22:00", quiet_end="08:00")
    at = datetime(2026, 11, 20, 21, 30, tzinfo=UTC)  # 22:30 in Rome
    assert quiet_until(at, ROME, night) == datetime(2026, 11, 21, 8, 0, tzinfo=ROME)
    early = datetime(2026, 11, 21, 5, 0, tzinfo=UTC)  # 06:00 in Rome
    assert quiet_until(early, ROME, night) == datetime(2026, 11, 21, 8, 0, tzinfo=ROME)
    assert quiet_until(datetime(2026, 11, 21, 7, 0, tzinfo=UTC), ROME, night) is None  # 08:00: over
    lunch = BrandControls(quiet_start="12:00", quiet_end="14:00")
    assert quiet_until(datetime(2026, 11, 21, 12, 0, tzinfo=UTC), ROME, lunch) == datetime(
        2026, 11, 21, 14, 0, tzinfo=ROME
    )
    assert quiet_until(datetime(2026, 11, 21, 14, 0, tzinfo=UTC), ROME, lunch) is None
    assert quiet_until(at, ROME, BrandControls()) is None


def test_digest_hour_today_or_tomorrow_across_a_dst_change():
    assert next_digest_at(datetime(2026, 11, 20, 7, 0, tzinfo=UTC), ROME, 9) == datetime(2026, 11, 20, 9, tzinfo=ROME)
    assert next_digest_at(datetime(2026, 11, 20, 8, 0, tzinfo=UTC), ROME, 9) == datetime(2026, 11, 21, 9, tzinfo=ROME)
    spring = next_digest_at(datetime(2026, 3, 28, 12, 0, tzinfo=UTC), ROME, 9)  # clocks go forward on the 29th
    assert spring == datetime(2026, 3, 29, 9, tzinfo=ROME) and spring.utcoffset() == timedelta(hours=2)


def test_retry_schedule_then_give_up():
    now = datetime(2026, 11, 20, tzinfo=UTC)
    assert retry_at(1, now) == now + RETRY_SCHEDULE[0]
    assert retry_at(len(RETRY_SCHEDULE), now) == now + RETRY_SCHEDULE[-1]
    assert retry_at(len(RETRY_SCHEDULE) + 1, now) is None


def test_controls_validation_and_choices():
    with pytest.raises(msgspec.ValidationError):
        msgspec.convert({"quiet_start": "22:00"}, BrandControls)
    with pytest.raises(msgspec.ValidationError):
        msgspec.convert({"enabled": ["spam"]}, BrandControls)
    with pytest.raises(msgspec.ValidationError):
        msgspec.convert({"quiet_start": "25:00", "quiet_end": "08:00"}, BrandControls)
    assert controls_of({"notifications": {"enabled": ["spam"]}}) == BrandControls()  # a bad stored value: defaults
    controls = BrandControls(enabled=["badge_earned"])
    assert wants_email("badge_earned", controls, MemberChoices())
    assert not wants_email("overtaken", controls, MemberChoices())
    assert not wants_email("badge_earned", controls, MemberChoices(email_off=["badge_earned"]))
    assert not wants_email("badge_earned", BrandControls(email=False), MemberChoices())
