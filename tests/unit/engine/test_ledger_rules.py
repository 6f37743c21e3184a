"""Pure ledger rules: FEFO allocation, settlement, replay, expiry dates in the brand's timezone."""

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from engine.errors import ValidationError
from engine.expiry import (
    Calendar,
    Inactivity,
    NoExpiry,
    Rolling,
    add_months,
    due_notices,
    expires_at,
    inactivity_deadline,
    parse_policy,
    policy_of,
)
from engine.ledger import Entry, Lot, allocate, replay, settle

ROME = ZoneInfo("Europe/Rome")
NOW = datetime(2026, 6, 1, tzinfo=UTC)


def lot(id_, remaining, *, expires=None, available=None, held=False, released=False):
    return Lot(
        id=id_,
        points=remaining,
        remaining=remaining,
        available_at=available or NOW - timedelta(days=1),
        expires_at=expires,
        held=held,
        released=released,
    )


def test_allocation_is_first_expiring_first_with_ties_by_id():
    soon = NOW + timedelta(days=1)
    lots = [
        lot(1, 10),
        lot(2, 10, expires=soon + timedelta(days=1)),
        lot(3, 10, expires=soon),
        lot(4, 10, expires=soon),
    ]
    assert allocate(lots, 25, NOW) == ([(3, 10), (4, 10), (2, 5)], 0)
    assert allocate(lots, 45, NOW) == ([(3, 10), (4, 10), (2, 10), (1, 10)], 5)


def test_pending_and_expired_lots_are_not_spendable():
    lots = [lot(1, 10, available=NOW + timedelta(minutes=1)), lot(2, 10, expires=NOW), lot(3, 7)]
    assert allocate(lots, 10, NOW) == ([(3, 7)], 3)


def test_settlement_releases_then_expires():
    lots = [
        lot(1, 10, held=True, available=NOW),
        lot(2, 5, held=True, available=NOW + timedelta(days=1)),
        lot(3, 8, expires=NOW),
        lot(4, 9, held=True, available=NOW + timedelta(days=2), expires=NOW),
        lot(5, 0, expires=NOW),
    ]
    plan = settle(lots, NOW)
    assert plan.releases == [(1, 10)]
    assert plan.expiries == [(3, 8, False), (4, 9, True)]
    assert settle(lots, NOW, expire_all=True).expiries == [(1, 10, False), (2, 5, True), (3, 8, False), (4, 9, True)]


def test_replay_folds_entries_into_the_balance():
    entries = [
        Entry(id=1, kind="earn", points=100),
        Entry(id=2, kind="earn", points=50, held=True),
        Entry(id=3, kind="spend", points=-60),
        Entry(id=4, kind="earn", points=20, source="refund"),
        Entry(id=5, kind="earn", points=30, held=True),
        Entry(id=6, kind="release", points=0, lot_id=5),
        Entry(id=7, kind="writeoff", points=5),
    ]
    balance = replay(entries, [(1, 60), (4, 0)])
    assert (balance.available, balance.pending, balance.lifetime_earned, balance.lifetime_spent) == (90, 50, 180, 35)


@pytest.mark.parametrize(
    ("rule", "earned", "expected"),
    [
        (NoExpiry(), datetime(2026, 1, 31, 10, tzinfo=UTC), None),
        (Inactivity(months=12), datetime(2026, 1, 31, 10, tzinfo=UTC), None),
        (Rolling(months=1), datetime(2026, 1, 31, 10, tzinfo=UTC), datetime(2026, 2, 28, 10, tzinfo=UTC)),
        (Rolling(months=12), datetime(2026, 3, 1, 9, tzinfo=UTC), datetime(2027, 3, 1, 9, tzinfo=UTC)),
        # 10:00 in Rome in winter is 10:00 in Rome in summer: one hour less in UTC.
        (Rolling(months=2), datetime(2026, 2, 20, 9, tzinfo=UTC), datetime(2026, 4, 20, 8, tzinfo=UTC)),
        (Calendar(count=1, unit="month"), datetime(2026, 2, 10, tzinfo=UTC), datetime(2026, 3, 31, 22, tzinfo=UTC)),
        (Calendar(count=0, unit="month"), datetime(2026, 10, 10, tzinfo=UTC), datetime(2026, 10, 31, 23, tzinfo=UTC)),
        (Calendar(count=1, unit="year"), datetime(2026, 6, 1, tzinfo=UTC), datetime(2027, 12, 31, 23, tzinfo=UTC)),
        # Earned on New Year's Eve at 23:30 UTC: already 2027 in Rome.
        (
            Calendar(count=0, unit="year"),
            datetime(2026, 12, 31, 23, 30, tzinfo=UTC),
            datetime(2027, 12, 31, 23, tzinfo=UTC),
        ),
    ],
)
def test_expiry_dates_in_the_brand_timezone(rule, earned, expected):
    assert expires_at(rule, earned, ROME) == expected


def test_add_months_backwards_and_inactivity_deadline():
    assert add_months(datetime(2026, 3, 31, 10, tzinfo=UTC), -1, ROME) == datetime(2026, 2, 28, 11, tzinfo=UTC)
    last = datetime(2026, 1, 10, tzinfo=UTC)
    assert inactivity_deadline(Inactivity(months=6), last, ROME) == datetime(2026, 7, 9, 23, tzinfo=UTC)
    assert inactivity_deadline(Rolling(months=6), last, ROME) is None
    assert inactivity_deadline(Inactivity(months=6), None, ROME) is None


def test_notices_due_at_thresholds():
    expiry = NOW + timedelta(days=10)
    assert due_notices(expiry, NOW, [30, 7]) == [30]
    assert due_notices(expiry, NOW + timedelta(days=3), [30, 7]) == [7, 30]
    assert due_notices(expiry, expiry, [30, 7]) == []


def test_policies_from_settings_and_validation():
    assert policy_of({}).expiry == NoExpiry()
    policy = policy_of({"points": {"expiry": {"kind": "rolling", "months": 18}, "notice_days": [14]}})
    assert (policy.expiry, policy.notice_days) == (Rolling(months=18), [14])
    with pytest.raises(ValidationError):
        parse_policy({"expiry": {"kind": "rolling"}})
    with pytest.raises(ValidationError):
        parse_policy({"expiry": {"kind": "forever"}})
