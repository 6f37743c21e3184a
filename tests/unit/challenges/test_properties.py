"""Property tests of the pure challenge folds: the rule alone against a full replay, and the streak shortcut.

Derandomized (the same examples on every run, so CI is deterministic) and kept small enough to stay fast.
"""

from __future__ import annotations

from datetime import date, timedelta

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from challenges.advance import advance, fold_streak
from challenges.models import Progress, Reason, Streak, StreakCarry, rule_kind
from challenges.rules import replay
from tests.unit.challenges.helpers import ROME, at, challenge, ev

PROPERTIES = settings(max_examples=60, deadline=None, derandomize=True, database=None)

#: One rule of every type, over the event types and properties the strategy below makes.
RULES = {
    "count": {"type": "count", "event_type": "visit", "target": 4},
    "count_filtered": {
        "type": "count",
        "event_type": "visit",
        "target": 2,
        "filter": {"field": "properties.store", "in": ["a", "b"]},
    },
    "sum": {"type": "sum", "event_type": "purchase", "property": "amount", "target": 60},
    "streak": {"type": "streak", "event_type": "visit", "target": 3},
    "streak_weekly": {"type": "streak", "event_type": "visit", "target": 2, "period": "week", "grace": 1},
    "distinct": {"type": "distinct", "event_type": "visit", "property": "store", "target": 3},
    "sequence": {"type": "sequence", "steps": [{"event_type": "visit"}, {"event_type": "purchase"}]},
    "all_of": {"type": "all_of", "steps": [{"event_type": "review"}, {"event_type": "visit"}]},
    "first": {"type": "first", "event_type": "review"},
}

_START = at("2026-03-26T08:00")  # a few days before DST starts in Europe/Rome (2026-03-29)


_EVENT = st.tuples(
    st.integers(min_value=1, max_value=60 * 40),  # minutes since the previous event
    st.sampled_from(["visit", "visit", "visit", "purchase", "review", "other"]),
    st.sampled_from(["a", "b", "c", "d", None]),  # the store property, if any
    st.sampled_from([5, 20, 40, None]),  # the amount property, if any
)


@st.composite
def _events(draw: st.DrawFn) -> list:
    """Events of a member in occurrence order, minutes to days apart, across the DST change."""
    events, instant = [], _START
    for gap, kind, store, amount in draw(st.lists(_EVENT, min_size=1, max_size=40)):
        instant += timedelta(minutes=gap)
        properties = {name: value for name, value in (("store", store), ("amount", amount)) if value is not None}
        events.append(msgspec.structs.replace(ev(kind, "2026-01-01T00:00", **properties), occurred_at=instant))
    return events


@pytest.mark.parametrize("name", sorted(RULES))
@PROPERTIES
@given(events=_events())
def test_the_rule_alone_and_the_replay_agree_for_every_rule_type(name, events):
    """With no window, limits or rewards, a challenge's replay is its rule folded event by event."""
    target = challenge(RULES[name])
    alone = Progress(challenge=target.key, instance="", kind=rule_kind(target.rule))
    completions = []
    for event in events:
        alone, effects = advance(alone, event, target.rule, tz=ROME)
        completions.extend(event.id for e in effects if type(e).__name__ == "ChallengeCompleted")
    replayed = replay(target, [(e, e.occurred_at) for e in events], tz=ROME, member={})
    folded = replayed.progress.get("", Progress(challenge=target.key, instance="", kind=rule_kind(target.rule)))
    assert folded == alone
    assert [i for i, o in replayed.outcomes if o.reason is Reason.COMPLETED] == completions


@PROPERTIES
@given(
    period=st.sampled_from(["day", "day", "week"]),
    grace=st.sampled_from([0, 0, 1, 2]),
    freezes=st.sampled_from([0, 1, 3]),
    earn_freeze_every=st.sampled_from([0, 3, 5]),
    steps=st.lists(st.integers(min_value=0, max_value=5), min_size=20, max_size=260),
    swaps=st.lists(st.integers(min_value=1, max_value=259), max_size=5),
)
def test_streak_figures_equal_a_fold_of_every_active_period_from_scratch(
    period, grace, freezes, earn_freeze_every, steps, swaps
):
    """Each counted event extends the stored figures by one step; the result must be the full fold's, in or out of order."""
    if not freezes:
        earn_freeze_every = 0  # earning freezes needs room to hold them
    gaps = [1, 1, 1, 2, 3, 5] if period == "day" else [1, 3, 7, 9, 16]
    days, day = [], date(2026, 1, 5)
    for step in steps:  # long enough to fold old periods into the carry
        day += timedelta(days=gaps[step % len(gaps)])
        days.append(day)
    for i in swaps:  # some late events, arriving after later ones
        i = i % (len(days) - 1) + 1
        days[i - 1], days[i] = days[i], days[i - 1]
    rule_fields = {"grace": grace, "freezes": freezes, "earn_freeze_every": earn_freeze_every, "period": period}
    spec = {"type": "streak", "event_type": "visit", "target": 30, **rule_fields}
    result = replay(
        challenge(spec),
        [(e, e.occurred_at) for e in (ev("visit", f"{d.isoformat()}T12:00") for d in days)],
        tz=ROME,
        member={},
    )
    progress = result.progress[""]
    rule = Streak(match=challenge(spec).rule.match, target=30, **rule_fields)
    # every event's period counts (a completed streak keeps its figures up to date) unless it was too old
    counted = [d for (_id, o), d in zip(result.outcomes, days, strict=True) if o.reason is not Reason.TOO_OLD]
    periods = sorted({d if rule.period == "day" else d - timedelta(days=d.weekday()) for d in counted})
    expected = fold_streak(StreakCarry(freezes=rule.freezes), periods, rule)
    assert (progress.value, progress.longest, progress.freezes, progress.streak_last) == (
        expected.current,
        expected.longest,
        expected.freezes,
        expected.last,
    )
