"""Definition validation: every mistake is a DefinitionError naming its JSON path. No database."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from challenges.config import compile_program, parse_campaigns, parse_challenges, parse_when, plain
from engine.errors import DefinitionError
from tests.unit.challenges.helpers import ROME

GOOD_CHALLENGE = {
    "key": "x",
    "campaign": "c",
    "title": "X",
    "rule": {"type": "count", "event_type": "visit", "target": 3},
}


def _challenge(**changes):
    return [{**GOOD_CHALLENGE, **changes}]


@pytest.mark.parametrize(
    ("data", "field"),
    [
        (_challenge(rule={"type": "count", "event_type": "visit", "target": "3"}), "$.challenges[0].rule.target"),
        (_challenge(rule={"type": "count", "event_type": "visit", "target": 0}), "$.challenges[0].rule.target"),
        (_challenge(rule={"type": "cont", "event_type": "visit", "target": 3}), "$.challenges[0].rule.type"),
        (_challenge(rule={"type": "count", "event_type": "visit", "target": 3, "targt": 4}), "$.challenges[0].rule"),
        (
            _challenge(
                rule={
                    "type": "count",
                    "event_type": "visit",
                    "target": 3,
                    "filter": {"field": "properties.stars", "gtee": 4},
                }
            ),
            "$.challenges[0].rule.filter.gtee",
        ),
        (
            _challenge(
                rule={
                    "type": "sequence",
                    "steps": [{"event_type": "a"}, {"event_type": "b", "filter": {"field": "stars", "eq": 1}}],
                }
            ),
            "$.challenges[0].rule.steps[1].filter.field",
        ),
        (_challenge(rule={"type": "sequence", "steps": []}), "$.challenges[0].rule.steps"),
        (_challenge(max_completions=3), "$.challenges[0].max_completions"),
        (_challenge(rule={"type": "first", "event_type": "visit"}, recurrence="daily"), "$.challenges[0].recurrence"),
        (
            _challenge(rule={"type": "streak", "event_type": "visit", "target": 3}, daily_cap=2),
            "$.challenges[0].daily_cap",
        ),
        (
            _challenge(rule={"type": "streak", "event_type": "v", "target": 3, "earn_freeze_every": 2}),
            "$.challenges[0].rule.freezes",
        ),
        (_challenge(min_interval="10 minutes"), "$.challenges[0].min_interval"),
        (_challenge(backfill_from="last tuesday"), "$.challenges[0].backfill_from"),
        (_challenge(reward={"points": -1}), "$.challenges[0].reward.points"),
        (_challenge(reward={"badge": "Not A Key"}), "$.challenges[0].reward.badge"),
        (_challenge(recurrence="yearly"), "$.challenges[0].recurrence"),
        ([GOOD_CHALLENGE, GOOD_CHALLENGE], "$.challenges[1].key"),
        ({"key": "x"}, "$.challenges"),
    ],
)
def test_challenge_mistakes_name_their_path(data, field):
    with pytest.raises(DefinitionError) as caught:
        parse_challenges(data)
    assert caught.value.field == field


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ([{"key": "c", "title": "C", "starts_at": "2026-12-01", "ends_at": "2026-11-01"}], "$.campaigns[0].ends_at"),
        ([{"key": "c", "title": "C", "starts_at": "1st of November"}], "$.campaigns[0].starts_at"),
        ([{"key": "c", "title": "C", "eligibility": {"field": "properties.x", "eq": 1}}], "$.campaigns[0].eligibility"),
        ([{"key": "c", "title": "C", "status": "running"}], "$.campaigns[0].status"),
        ([{"key": "C!", "title": "C"}], "$.campaigns[0].key"),
        ([{"key": "c", "title": ""}], "$.campaigns[0].title"),
    ],
)
def test_campaign_mistakes_name_their_path(data, field):
    with pytest.raises(DefinitionError) as caught:
        parse_campaigns(data)
    assert caught.value.field == field


def test_program_needs_the_campaign_a_challenge_names():
    with pytest.raises(DefinitionError) as caught:
        compile_program(parse_campaigns([{"key": "other", "title": "O"}]), parse_challenges(_challenge()), tz=ROME)
    assert caught.value.field == "$.challenges[0].campaign"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-01", datetime(2026, 10, 31, 23, 0, tzinfo=UTC)),  # local midnight, CET
        ("2026-07-01T09:30", datetime(2026, 7, 1, 7, 30, tzinfo=UTC)),  # CEST
        ("2026-11-01T00:00:00Z", datetime(2026, 11, 1, 0, 0, tzinfo=UTC)),
        ("2026-11-01T00:00:00+05:00", datetime(2026, 10, 31, 19, 0, tzinfo=UTC)),
    ],
)
def test_window_instants_are_local_unless_they_carry_an_offset(text, expected):
    assert parse_when(text, ROME, field="$") == expected


def test_yaml_dates_read_like_strings():
    from datetime import timezone

    data = {"a": date(2026, 11, 1), "b": [datetime(2026, 11, 1, 9, 0, tzinfo=timezone(timedelta(hours=1)))]}
    assert plain(data) == {"a": "2026-11-01", "b": ["2026-11-01T09:00:00+01:00"]}


def test_defaults_are_left_out_of_the_stored_form():
    from challenges.diffs import to_plain

    (spec,) = parse_challenges(_challenge())
    assert to_plain(spec) == GOOD_CHALLENGE


def test_the_documented_program_example_is_valid():
    import re
    from pathlib import Path

    import yaml

    text = (Path(__file__).resolve().parents[3] / "docs" / "program.md").read_text()
    example = re.search(r"```yaml\n(format: 1.*?)```", text, re.S).group(1)
    document = yaml.safe_load(example)
    challenges = compile_program(
        parse_campaigns(document["campaigns"]), parse_challenges(document["challenges"]), tz=ROME
    )
    assert {c.kind for c in challenges} == {"count", "sum", "streak", "distinct", "sequence", "all_of", "first"}
