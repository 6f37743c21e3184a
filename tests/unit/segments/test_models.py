"""Segment clauses, evaluation and the fold of a unit's events (pure)."""

from datetime import UTC, datetime, timedelta

import msgspec
import pytest

from engine.predicates import SEGMENTS_KEY, matches, parse_predicate, predicate_to_data, segments_used
from segments.models import Clause, SegmentDef, advance, explain, member_of, needed_clauses

NOW = datetime(2026, 11, 20, 10, tzinfo=UTC)


def clause(**data):
    return msgspec.convert(data, Clause)


@pytest.mark.parametrize(
    ("data", "value", "held"),
    [
        ({"metric": "events", "gte": 3}, 3, True),
        ({"metric": "events", "gte": 3}, 2, False),
        ({"metric": "spend", "property": "amount", "lt": 100}, 99.5, True),
        ({"metric": "attribute", "name": "region", "in": ["north", "east"]}, "east", True),
        ({"metric": "attribute", "name": "region", "ne": "north"}, None, True),
        ({"metric": "tier", "eq": "gold"}, None, False),
    ],
)
def test_clause_comparisons(data, value, held):
    assert clause(**data).test(value) is held


def test_explain_lists_every_clause_and_any_match():
    spend = clause(metric="spend", event_type="purchase", property="amount", days=90, gte=200)
    idle = clause(metric="days_since_last_event", gte=60)
    region = clause(metric="attribute", name="region", eq="north")
    segment = SegmentDef(slug="s", match="any", clauses=[spend, idle, region])
    facts = {spend.key(): 150.0, idle.key(): NOW - timedelta(days=61, hours=1)}
    why = explain(segment, facts, {"region": "south"}, NOW)
    assert [(r.value, r.held) for r in why.clauses] == [(150.0, False), (61, True), ("south", False)]
    assert why.member is True
    assert member_of(SegmentDef(slug="s", clauses=[spend, idle]), facts, {}, NOW) is False
    never = explain(SegmentDef(slug="s", clauses=[idle]), {}, {}, NOW).clauses[0]
    assert (never.value, never.held) == (None, False)  # never came: not lapsed


def test_advance_folds_an_event_into_the_metrics():
    count = clause(metric="events", event_type="purchase", days=7, gte=1)
    spend = clause(metric="spend", event_type="purchase", property="amount", gte=1)
    last = clause(metric="days_since_last_event", lte=1)
    clauses = needed_clauses([SegmentDef(slug="s", clauses=[count, spend, last])])
    facts: dict = {}
    advance(clauses, facts, event_type="purchase", properties={"amount": 30}, occurred_at=NOW, now=NOW)
    advance(clauses, facts, event_type="purchase", properties={"amount": True}, occurred_at=NOW - timedelta(days=8),
            now=NOW)  # fmt: skip
    advance(clauses, facts, event_type="visit", properties={"amount": 5}, occurred_at=NOW, now=NOW)
    assert facts[count.key()] == 1  # the late purchase is outside the 7 days; a visit is another type
    assert facts[spend.key()] == 30  # a boolean is not an amount
    assert facts[last.key()] == NOW


def test_segment_leaf_in_predicates():
    predicate = parse_predicate({"all": [{"segment": "vip"}, {"field": "type", "eq": "purchase"}]})
    assert segments_used(predicate) == {"vip"}
    assert predicate_to_data(predicate) == {"all": [{"segment": "vip"}, {"field": "type", "eq": "purchase"}]}
    assert matches(predicate, event_type="purchase", properties={}, member={SEGMENTS_KEY: frozenset({"vip"})})
    assert not matches(predicate, event_type="purchase", properties={}, member={"@segments": "vip"})
    assert not matches(predicate, event_type="purchase", properties={}, member={})
    with pytest.raises(Exception, match="stand alone"):
        parse_predicate({"segment": "vip", "field": "type", "eq": "x"})
