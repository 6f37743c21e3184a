"""Pure rules of rewards: definitions, availability, limit windows, codes, CSV pools."""

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import msgspec
import pytest

from engine.errors import DefinitionError, ValidationError
from rewards.models import MemberLimit, RewardSpec, build_reward
from rewards.rules import crossed_low, eligible, generate_code, limit_window, parse_codes, unavailable_reason

ROME = ZoneInfo("Europe/Rome")


def spec(**fields):
    return msgspec.convert({"key": "r", "name": {"en": "R"}, "cost": 10, "type": "product", **fields}, RewardSpec)


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"type": "discount"}, "$.discount"),
        ({"discount": {"kind": "fixed", "value": 5}}, "$.discount"),
        ({"type": "discount", "discount": {"kind": "percent", "value": 120}}, "$.discount.value"),
        ({"type": "voucher"}, "$.codes"),
        ({"type": "voucher", "codes": {"source": "pattern", "pattern": "AB-##"}}, "$.codes.pattern"),
        ({"starts_at": "2026-12-01T00:00:00Z", "ends_at": "2026-11-01T00:00:00Z"}, "$.ends_at"),
        ({"eligibility": {"field": "member.tier", "eqq": "gold"}}, "$.eligibility.eqq"),
    ],
)
def test_bad_definitions_name_the_field(fields, field):
    with pytest.raises(DefinitionError) as caught:
        build_reward(spec(**fields))
    assert caught.value.field == field


def test_unknown_fields_and_bad_costs_are_refused_by_the_schema():
    with pytest.raises(msgspec.ValidationError):
        spec(price=3)
    with pytest.raises(msgspec.ValidationError):
        spec(cost=0)


@pytest.mark.parametrize(
    ("fields", "now", "reason"),
    [
        ({}, datetime(2026, 11, 20, tzinfo=UTC), ""),
        ({"paused": True}, datetime(2026, 11, 20, tzinfo=UTC), "paused"),
        ({"starts_at": "2026-12-01T00:00:00Z"}, datetime(2026, 11, 20, tzinfo=UTC), "not_started"),
        ({"ends_at": "2026-11-20T00:00:00Z"}, datetime(2026, 11, 20, tzinfo=UTC), "ended"),
        ({"ends_at": "2026-11-20T00:00:00Z"}, datetime(2026, 11, 19, 23, 59, tzinfo=UTC), ""),
    ],
)
def test_availability(fields, now, reason):
    assert unavailable_reason(build_reward(spec(**fields)), now) == reason


def test_eligibility_reads_member_attributes():
    reward = build_reward(spec(eligibility={"field": "member.tier", "in": ["gold", "platinum"]}))
    assert eligible(reward, {"tier": "gold"})
    assert not eligible(reward, {"tier": "silver"})
    assert eligible(build_reward(spec()), {})


@pytest.mark.parametrize(
    ("period", "start", "end"),
    [
        ("ever", None, None),
        ("day", datetime(2026, 3, 28, 23, 0, tzinfo=UTC), datetime(2026, 3, 29, 22, 0, tzinfo=UTC)),  # a 23-hour day
        ("month", datetime(2026, 2, 28, 23, 0, tzinfo=UTC), datetime(2026, 3, 31, 22, 0, tzinfo=UTC)),
        ("year", datetime(2025, 12, 31, 23, 0, tzinfo=UTC), datetime(2026, 12, 31, 23, 0, tzinfo=UTC)),
    ],
)
def test_limit_windows_are_local(period, start, end):
    now = datetime(2026, 3, 29, 12, 0, tzinfo=UTC)
    assert limit_window(MemberLimit(count=1, period=period), now, ROME) == (start, end)


def test_generated_codes_follow_the_pattern():
    codes = {generate_code("QL-XXXX-####") for _ in range(200)}
    assert len(codes) == 200
    for code in codes:
        assert code[:3] == "QL-" and code[7] == "-" and code[8:].isdigit()
        assert not set(code[3:7]) & set("01OIL")


def test_csv_pools_skip_header_blanks_and_repeats():
    assert parse_codes('code\nA1,extra\n\n"B2"\nA1\n  C3  \n') == ["A1", "B2", "C3"]
    assert parse_codes("X9\nY8") == ["X9", "Y8"]
    with pytest.raises(ValidationError):
        parse_codes("x" * 65)


@pytest.mark.parametrize(
    ("before", "after", "threshold", "crossed"),
    [(3, 2, 2, True), (2, 1, 2, False), (5, 4, None, False), (1, 0, 0, True), (None, 0, 0, False)],
)
def test_low_stock_crossing_fires_once(before, after, threshold, crossed):
    assert crossed_low(before, after, threshold) is crossed
