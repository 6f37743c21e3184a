"""Pure rule tables: each rule type, the challenge-level limits, recurrence and the DST cases. No database."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from challenges.advance import advance, fold_streak, percent, streak_now
from challenges.models import Campaign, CampaignState, Progress, Reason, Streak, StreakCarry
from challenges.rules import (
    campaign_state,
    count_event,
    evaluate,
    fresh_progress,
    replay,
    screen,
)
from engine.effects import ChallengeCompleted, Notification, PointsAwarded, ProgressAdvanced
from engine.periods import instance_bounds, instance_of
from tests.unit.challenges.helpers import ROME, at, challenge, ev

LATE_ENOUGH = at("2027-01-01T00:00")


def fold(rule_or_challenge, events, *, received=None, member=None, opted_in_at=None, prior=False):
    target = rule_or_challenge if not isinstance(rule_or_challenge, dict) else challenge(rule_or_challenge)
    pairs = [(e, received or e.occurred_at) for e in events]  # on time unless told otherwise
    return replay(target, pairs, tz=ROME, member=member or {}, opted_in_at=opted_in_at, prior=prior)


def reasons(result):
    return [o.reason.value for _id, o in result.outcomes]


# --- one table per rule type ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("events", "expected_reasons", "value"),
    [
        ([ev("purchase", "2026-11-02T10:00")], ["counted"], 1),
        ([ev("purchase", f"2026-11-0{d}T10:00") for d in (2, 3, 4)], ["counted", "counted", "completed"], 3),
        (
            [ev("purchase", f"2026-11-0{d}T10:00") for d in (2, 3, 4, 5)],
            ["counted", "counted", "completed", "already_completed"],
            3,
        ),
        ([ev("visit", "2026-11-02T10:00"), ev("purchase", "2026-11-02T11:00")], ["no_match", "counted"], 1),
    ],
)
def test_count(events, expected_reasons, value):
    result = fold({"type": "count", "event_type": "purchase", "target": 3}, events)
    assert reasons(result) == expected_reasons
    assert result.progress[""].value == value


@pytest.mark.parametrize(
    ("amounts", "expected_reasons", "value"),
    [
        ([120, 80], ["counted", "completed"], 200),
        ([150.5, "12", True, None], ["counted", "not_a_number", "not_a_number", "missing_property"], 150.5),
        ([-5, 0, 199.99], ["not_a_number", "not_a_number", "counted"], 199.99),
    ],
)
def test_sum(amounts, expected_reasons, value):
    events = [
        ev("purchase", f"2026-11-02T1{i}:00", **({} if a is None else {"amount": a})) for i, a in enumerate(amounts)
    ]
    result = fold({"type": "sum", "event_type": "purchase", "property": "amount", "target": 200}, events)
    assert reasons(result) == expected_reasons
    assert result.progress[""].value == pytest.approx(value)


@pytest.mark.parametrize(
    ("values", "expected_reasons", "seen"),
    [
        (
            ["milano", "roma", "milano", "torino"],
            ["counted", "counted", "already_seen", "completed"],
            ("milano", "roma", "torino"),
        ),
        ([1, "1", None], ["counted", "already_seen", "missing_property"], ("1",)),
    ],
)
def test_distinct(values, expected_reasons, seen):
    events = [ev("visit", f"2026-11-02T1{i}:00", **({} if v is None else {"store": v})) for i, v in enumerate(values)]
    result = fold({"type": "distinct", "event_type": "visit", "property": "store", "target": 3}, events)
    assert reasons(result) == expected_reasons
    assert result.progress[""].seen == seen
    assert result.progress[""].value == len(seen)


SEQUENCE = {
    "type": "sequence",
    "steps": [
        {"event_type": "review", "filter": {"field": "properties.stars", "gte": 4}},
        {"event_type": "referral"},
        {"event_type": "visit"},
    ],
}


@pytest.mark.parametrize(
    ("events", "expected_reasons", "done"),
    [
        (
            [
                ev("review", "2026-11-02T10:00", stars=5),
                ev("referral", "2026-11-03T10:00"),
                ev("visit", "2026-11-04T10:00"),
            ],
            ["counted", "counted", "completed"],
            (0, 1, 2),
        ),
        (
            [
                ev("visit", "2026-11-02T10:00"),
                ev("referral", "2026-11-02T11:00"),
                ev("review", "2026-11-02T12:00", stars=3),
            ],
            ["out_of_order", "out_of_order", "no_match"],
            (),
        ),
        (
            [
                ev("review", "2026-11-03T10:00", stars=4),
                ev("review", "2026-11-03T11:00", stars=5),
                ev("referral", "2026-11-02T10:00"),
            ],
            ["counted", "already_seen", "out_of_order"],
            (0,),
        ),
    ],
)
def test_sequence(events, expected_reasons, done):
    result = fold(SEQUENCE, events)
    assert reasons(result) == expected_reasons
    assert result.progress.get("", Progress()).done == done


def test_all_of_any_order_one_step_per_event():
    rule = {"type": "all_of", "steps": [{"event_type": "visit"}, {"event_type": "visit"}, {"event_type": "survey"}]}
    events = [
        ev("survey", "2026-11-02T10:00"),
        ev("visit", "2026-11-02T11:00"),
        ev("survey", "2026-11-02T12:00"),
        ev("visit", "2026-11-02T13:00"),
    ]
    result = fold(rule, events)
    assert reasons(result) == ["counted", "counted", "already_seen", "completed"]
    assert result.progress[""].done == (0, 1, 2)


@pytest.mark.parametrize(
    ("prior", "expected"),
    [(False, ["completed", "already_completed"]), (True, ["not_first", "not_first"])],
)
def test_first(prior, expected):
    events = [ev("review", "2026-11-02T10:00"), ev("review", "2026-11-03T10:00")]
    result = fold({"type": "first", "event_type": "review"}, events, prior=prior)
    assert reasons(result) == expected


def test_first_is_lost_to_an_event_before_the_window():
    target = challenge({"type": "first", "event_type": "review"}, campaign={"starts_at": "2026-11-01"})
    result = fold(target, [ev("review", "2026-10-15T10:00"), ev("review", "2026-11-02T10:00")])
    assert reasons(result) == ["before_window", "not_first"]


# --- streaks --------------------------------------------------------------------------------------------


def _streak(days, **rule):
    spec = {"type": "streak", "event_type": "visit", "target": 30, **rule}
    return fold(spec, [ev("visit", d) for d in days])


@pytest.mark.parametrize(
    ("days", "rule", "current", "longest", "freezes"),
    [
        # DST starts in Europe/Rome on 2026-03-29 (a 23-hour day): three local days in a row stay a streak
        # although the first two events are only 23 hours apart.
        (["2026-03-28T23:30", "2026-03-29T23:30", "2026-03-30T00:30"], {}, 3, 3, 0),
        # DST ends on 2026-10-25 (a 25-hour day): two events 24h40m apart on the same local day are one day.
        (["2026-10-25T00:10", "2026-10-25T23:50"], {}, 1, 1, 0),
        # ... and the next local day continues it although it starts 25 hours after the previous one.
        (["2026-10-24T23:59", "2026-10-25T23:59", "2026-10-26T00:01"], {}, 3, 3, 0),
        # a missed day breaks; longest remembers
        (["2026-11-01T09:00", "2026-11-02T09:00", "2026-11-04T09:00"], {}, 1, 2, 0),
        # grace of one missed day per gap
        (["2026-11-01T09:00", "2026-11-03T09:00", "2026-11-05T09:00"], {"grace": 1}, 3, 3, 0),
        # a freeze covers one missed day, once
        (["2026-11-01T09:00", "2026-11-03T09:00", "2026-11-05T09:00"], {"freezes": 1}, 1, 2, 0),
        # freezes are earned back every 2 active days in a row, up to the maximum held: day 3 uses the
        # freeze and reaches 2 (one back), day 6 uses it again and reaches 4 (one back again)
        (
            ["2026-11-01T09:00", "2026-11-03T09:00", "2026-11-04T09:00", "2026-11-06T09:00"],
            {"freezes": 1, "earn_freeze_every": 2},
            4,
            4,
            1,
        ),
        # weeks: ISO weeks 45, 46, 48 of 2026 (47 missed) with one grace week
        (["2026-11-02T09:00", "2026-11-15T22:00", "2026-11-23T08:00"], {"period": "week", "grace": 1}, 3, 3, 0),
        (["2026-11-02T09:00", "2026-11-15T22:00", "2026-11-23T08:00"], {"period": "week"}, 1, 2, 0),
        # late event filling the gap afterwards (order does not matter)
        (["2026-11-01T09:00", "2026-11-03T09:00", "2026-11-02T21:00"], {}, 3, 3, 0),
    ],
)
def test_streak(days, rule, current, longest, freezes):
    progress = _streak(days, **rule).progress[""]
    assert (progress.value, progress.longest, progress.freezes) == (current, longest, freezes)


def test_streak_same_day_counts_once():
    result = _streak(["2026-11-01T09:00", "2026-11-01T21:00"])
    assert reasons(result) == ["counted", "same_period"]


def test_streak_completes_and_keeps_tracking():
    spec = {"type": "streak", "event_type": "visit", "target": 2}
    result = fold(spec, [ev("visit", d) for d in ("2026-11-01T09:00", "2026-11-02T09:00", "2026-11-03T09:00")])
    assert reasons(result) == ["counted", "completed", "already_completed"]
    assert result.progress[""].value == 3
    assert result.progress[""].longest == 3


def test_streak_history_is_compacted_without_changing_figures():
    days = [(date(2026, 1, 1) + timedelta(days=i)).isoformat() + "T12:00" for i in range(150)]
    progress = _streak(days, target=1000).progress[""]
    assert progress.value == 150
    assert progress.longest == 150
    assert len(progress.periods) < 100
    assert progress.carry is not None


@pytest.mark.parametrize(
    ("today", "grace", "expected"),
    [(date(2026, 11, 3), 0, 2), (date(2026, 11, 4), 0, 0), (date(2026, 11, 4), 1, 2), (date(2026, 11, 5), 1, 0)],
)
def test_streak_now(today, grace, expected):
    progress = _streak(["2026-11-01T09:00", "2026-11-02T09:00"], grace=grace).progress[""]
    rule = Streak(
        match=challenge({"type": "count", "event_type": "visit", "target": 1}).rule.match, target=5, grace=grace
    )
    assert streak_now(progress, rule, today=today) == expected


def test_fold_streak_is_order_independent():
    rule = Streak(match=challenge({"type": "count", "event_type": "v", "target": 1}).rule.match, target=9, freezes=1)

    days = [date(2026, 11, d) for d in (1, 2, 4, 5, 8)]
    assert fold_streak(StreakCarry(freezes=1), days, rule) == StreakCarry(
        current=1, longest=4, freezes=0, last=date(2026, 11, 8)
    )


# --- windows, lateness, eligibility, opt-in, status ----------------------------------------------------

WINDOW = {"starts_at": "2026-11-01", "ends_at": "2026-12-01"}


@pytest.mark.parametrize(
    ("local", "reason"),
    [
        ("2026-10-31T23:59:59", "before_window"),
        ("2026-11-01T00:00", "counted"),  # exactly at the start: counts (local midnight, Europe/Rome)
        ("2026-11-30T23:59:59", "counted"),
        ("2026-12-01T00:00", "after_window"),  # exactly at the end: the end is exclusive
    ],
)
def test_window_edges(local, reason):
    target = challenge({"type": "count", "event_type": "visit", "target": 5}, campaign=WINDOW)
    assert reasons(fold(target, [ev("visit", local)])) == [reason]


@pytest.mark.parametrize(
    ("occurred", "received", "reason"),
    [
        ("2026-11-10T10:00", "2026-11-11T09:59", "counted"),
        ("2026-11-10T10:00", "2026-11-11T10:00", "counted"),
        ("2026-11-10T10:00", "2026-11-11T10:01", "too_late"),
        ("2026-11-30T22:00", "2026-12-01T08:00", "counted"),  # after the end, but occurred inside and in time
    ],
)
def test_lateness(occurred, received, reason):
    target = challenge({"type": "count", "event_type": "visit", "target": 5}, campaign=WINDOW, max_lateness="1d")
    assert reasons(fold(target, [ev("visit", occurred)], received=at(received))) == [reason]


def test_eligibility_and_opt_in():
    target = challenge(
        {"type": "count", "event_type": "visit", "target": 5},
        campaign={"eligibility": {"field": "member.tier", "in": ["gold", "silver"]}, "opt_in": True},
    )
    event = ev("visit", "2026-11-10T10:00")
    assert reasons(fold(target, [event], member={"tier": "bronze"}, opted_in_at=at("2026-11-01T00:00"))) == [
        "not_eligible"
    ]
    assert reasons(fold(target, [event], member={"tier": "gold"})) == ["not_opted_in"]
    assert reasons(fold(target, [event], member={"tier": "gold"}, opted_in_at=at("2026-11-11T00:00"))) == [
        "not_opted_in"
    ]
    assert reasons(fold(target, [event], member={"tier": "gold"}, opted_in_at=at("2026-11-10T10:00"))) == ["counted"]


@pytest.mark.parametrize(
    ("status", "reason"), [("draft", Reason.DRAFT), ("paused", Reason.PAUSED), ("live", Reason.COUNTED)]
)
def test_status_is_honoured_live(status, reason):
    target = challenge({"type": "count", "event_type": "visit", "target": 5}, campaign={"status": status})
    outcome = evaluate(target, None, ev("visit", "2026-11-10T10:00"), tz=ROME, member={}, received_at=LATE_ENOUGH)
    assert outcome.reason is reason


def test_events_received_before_the_challenge_went_live_need_a_backfill():
    import msgspec

    target = msgspec.structs.replace(
        challenge({"type": "count", "event_type": "visit", "target": 5}), live_since=at("2026-11-10T00:00")
    )
    early = ev("visit", "2026-11-05T10:00")
    assert reasons(fold(target, [early], received=at("2026-11-05T10:00"))) == ["not_live_yet"]
    backfilled = msgspec.structs.replace(target, backfill_from=at("2026-11-01T00:00"))
    assert reasons(fold(backfilled, [early], received=at("2026-11-05T10:00"))) == ["counted"]


@pytest.mark.parametrize(
    ("now", "status", "state"),
    [
        ("2026-10-31T23:59", "live", CampaignState.SCHEDULED),
        ("2026-11-01T00:00", "live", CampaignState.ACTIVE),
        ("2026-11-15T00:00", "paused", CampaignState.PAUSED),
        ("2026-12-01T00:00", "live", CampaignState.ENDED),
        ("2026-12-01T00:00", "paused", CampaignState.ENDED),
        ("2026-11-15T00:00", "draft", CampaignState.DRAFT),
    ],
)
def test_campaign_state(now, status, state):
    campaign = Campaign(
        id=1, key="c", title="C", starts_at=at("2026-11-01T00:00"), ends_at=at("2026-12-01T00:00"), status=status
    )
    assert campaign_state(campaign, at(now)) is state


# --- limits: interval, daily cap, multipliers, recurrence, cap -------------------------------------------


def test_min_interval():
    target = challenge({"type": "count", "event_type": "visit", "target": 5}, min_interval="1h")
    events = [ev("visit", "2026-11-02T10:00"), ev("visit", "2026-11-02T10:59"), ev("visit", "2026-11-02T11:00")]
    assert reasons(fold(target, events)) == ["counted", "too_soon", "counted"]


def test_daily_cap_and_multiplier():
    target = challenge(
        {"type": "sum", "event_type": "purchase", "property": "amount", "target": 100},
        daily_cap=30,
        multipliers=[{"starts_at": "2026-11-07T00:00:00+01:00", "ends_at": "2026-11-09T00:00:00+01:00", "factor": 2}],
    )
    events = [
        ev("purchase", "2026-11-06T10:00", amount=20),
        ev("purchase", "2026-11-06T11:00", amount=20),  # cut to 10 by the cap
        ev("purchase", "2026-11-06T12:00", amount=5),  # nothing left today
        ev("purchase", "2026-11-07T10:00", amount=10),  # doubled: 20
        ev("purchase", "2026-11-08T23:30", amount=4),  # doubled: 8
    ]
    result = fold(target, events)
    assert reasons(result) == ["counted", "counted", "daily_cap", "counted", "counted"]
    assert result.progress[""].value == pytest.approx(58)


def test_weekly_recurrence_across_a_week_boundary():
    target = challenge({"type": "count", "event_type": "visit", "target": 2}, recurrence="weekly")
    events = [
        ev("visit", "2026-11-22T10:00"),  # Sunday of ISO week 47
        ev("visit", "2026-11-22T23:59"),  # still week 47: completes it
        ev("visit", "2026-11-23T00:00"),  # Monday: week 48 starts afresh
    ]
    result = fold(target, events)
    assert reasons(result) == ["counted", "completed", "counted"]
    assert {k: (p.value, p.completed) for k, p in result.progress.items()} == {
        "2026-W47": (2, True),
        "2026-W48": (1, False),
    }


def test_completion_cap_over_instances():
    target = challenge({"type": "count", "event_type": "visit", "target": 1}, recurrence="daily", max_completions=2)
    events = [ev("visit", f"2026-11-0{d}T10:00") for d in (2, 3, 4)]
    assert reasons(fold(target, events)) == ["completed", "completed", "cap_reached"]


@pytest.mark.parametrize(
    ("recurrence", "local", "instance", "start", "end"),
    [
        ("none", "2026-11-22T10:00", "", None, None),
        ("daily", "2026-03-29T12:00", "2026-03-29", "2026-03-29T00:00", "2026-03-30T00:00"),
        ("weekly", "2026-11-22T23:59", "2026-W47", "2026-11-16T00:00", "2026-11-23T00:00"),
        ("monthly", "2026-10-31T23:30", "2026-10", "2026-10-01T00:00", "2026-11-01T00:00"),
    ],
)
def test_instances(recurrence, local, instance, start, end):
    assert instance_of(recurrence, at(local), ROME) == instance
    assert instance_bounds(recurrence, at(local), ROME) == ((at(start), at(end)) if start else (None, None))


def test_rewards_on_completion():
    target = challenge(
        {"type": "count", "event_type": "review", "target": 1}, reward={"points": 300, "badge": "critic"}
    )
    ((_id, outcome),) = fold(target, [ev("review", "2026-11-02T10:00")]).outcomes
    kinds = [type(e) for e in outcome.effects]
    assert kinds == [ProgressAdvanced, ChallengeCompleted, PointsAwarded, Notification]
    completed, points, note = outcome.effects[1], outcome.effects[2], outcome.effects[3]
    assert (completed.challenge, completed.badge, completed.completed_at) == ("x", "critic", at("2026-11-02T10:00"))
    assert (points.points, points.source, points.key) == (300, "challenge", "x")
    assert (note.topic, note.data["points"], note.data["badge"], note.data["campaign"]) == (
        "challenge.completed",
        300,
        "critic",
        "c",
    )


def test_advance_is_the_rule_alone():
    rule = challenge({"type": "count", "event_type": "visit", "target": 2}).rule
    progress = Progress(challenge="x", kind="count")
    progress, effects = advance(progress, ev("visit", "2026-11-02T10:00"), rule, tz=ROME)
    assert (progress.value, [type(e) for e in effects]) == (1, [ProgressAdvanced])
    progress, effects = advance(progress, ev("visit", "2026-11-02T11:00"), rule, tz=ROME)
    assert (progress.value, progress.completed, [type(e) for e in effects]) == (
        2,
        True,
        [ProgressAdvanced, ChallengeCompleted],
    )
    same, effects = advance(progress, ev("visit", "2026-11-02T12:00"), rule, tz=ROME)
    assert (same, effects) == (progress, [])


def test_a_changed_rule_type_starts_afresh():
    counted = fold({"type": "count", "event_type": "visit", "target": 5}, [ev("visit", "2026-11-02T10:00")]).progress[
        ""
    ]
    target = challenge({"type": "distinct", "event_type": "visit", "property": "store", "target": 2})
    outcome = evaluate(
        target, counted, ev("visit", "2026-11-02T11:00", store="a"), tz=ROME, member={}, received_at=LATE_ENOUGH
    )
    assert (outcome.progress.kind, outcome.progress.value, outcome.progress.counted) == ("distinct", 1, 1)


@pytest.mark.parametrize(
    ("value", "target", "expected"), [(0, 3, 0), (1, 3, 33), (2.999, 3, 99), (3, 3, 100), (5, 3, 100)]
)
def test_percent(value, target, expected):
    assert percent(value, target) == expected


@pytest.mark.parametrize(
    ("rule", "fields", "events"),
    [
        (
            {"type": "count", "event_type": "purchase", "target": 3},
            {"daily_cap": 2, "recurrence": "weekly", "max_completions": 1},
            [ev("purchase", f"2026-11-0{d}T1{h}:00") for d in (2, 3, 9) for h in (0, 1, 2)],
        ),
        (
            {"type": "sum", "event_type": "purchase", "property": "amount", "target": 100},
            {"min_interval": "1h", "daily_cap": 70},
            [ev("purchase", f"2026-11-02T1{h}:00", amount=a) for h, a in ((0, 50), (0, 5), (1, "x"), (2, 60), (3, 9))],
        ),
        (
            {"type": "streak", "event_type": "visit", "target": 3},
            {},
            [ev("visit", f"2026-11-0{d}T10:00") for d in (2, 2, 3, 5, 6, 7, 8)],
        ),
        (
            {"type": "distinct", "event_type": "visit", "property": "store", "target": 2},
            {},
            [ev("visit", "2026-11-02T10:00", store=s) for s in ("a", "a", None, "b", "c")],
        ),
        (SEQUENCE, {}, [ev(t, f"2026-11-0{d}T10:00", stars=5) for d, t in enumerate(("visit", "review", "review"), 2)]),
        (
            {"type": "all_of", "steps": [{"event_type": "visit"}, {"event_type": "review"}]},
            {},
            [ev(t, "2026-11-02T10:00") for t in ("visit", "visit", "review")],
        ),
    ],
)
def test_outcomes_without_explanations_are_the_same_outcomes(rule, fields, events):
    target = challenge(rule, reward={"points": 10}, **fields)

    def run(explain):
        progress, outcomes, completions = {}, [], 0
        for event in events:
            if screen(target, event, tz=ROME, member={}, received_at=event.occurred_at):
                continue
            instance = instance_of(target.recurrence, event.occurred_at, ROME)
            before = fresh_progress(progress.get(instance), target, instance)
            outcome = count_event(target, before, event, tz=ROME, member={}, completions=completions, explain=explain)
            completions += outcome.completed
            progress[instance] = outcome.progress
            outcomes.append(outcome)
        return progress, outcomes

    explained, quiet = run(True), run(False)
    assert quiet[0] == explained[0]
    assert [(o.progress, o.effects, o.reason) for o in quiet[1]] == [
        (o.progress, o.effects, o.reason) for o in explained[1]
    ]
    assert {o.detail for o in quiet[1] if o.reason is not Reason.NO_MATCH} <= {
        "",
        "every step this event fits is already done",
        "the first matching event",
        "the member had an earlier matching event",
    }
    assert all(o.detail for o in explained[1])
