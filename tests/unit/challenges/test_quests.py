"""Quests: N-of-M composition (``all_of`` with ``required``) and prerequisites, as pure folds.

Table tests of the folds, validation of the prerequisite graph, and a property test that the pipeline's
live loop (``challenges.processor._advance``) and the replay with prerequisites agree.
"""

from __future__ import annotations

from datetime import timedelta

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from challenges.config import ChallengeSpec, check_requirements, compile_program, decode, parse_challenges
from challenges.models import Progress, Reason
from challenges.prerequisites import replay_program
from challenges.processor import ActiveProgram, _advance, _Member
from challenges.rules import replay
from engine.errors import DefinitionError
from engine.ids import MemberId
from engine.pipeline import EventContext
from tests.unit.challenges.helpers import ROME, at, challenge, ev

FIVE_TASKS = {
    "type": "all_of",
    "required": 3,
    "steps": [{"event_type": t} for t in ("visit", "review", "purchase", "share", "refer")],
}


def _fold(target, kinds, member=None):
    events = [ev(kind, f"2026-11-0{1 + i // 10}T{10 + i % 10}:00") for i, kind in enumerate(kinds)]
    return replay(target, [(e, e.occurred_at) for e in events], tz=ROME, member=member or {})


@pytest.mark.parametrize(
    ("kinds", "value", "completed"),
    [
        (["visit"], 1, False),
        (["visit", "visit", "review"], 2, False),  # one step is done once
        (["visit", "review", "purchase"], 3, True),  # any 3 of the 5
        (["refer", "share", "visit"], 3, True),
        (["visit", "other", "review", "review", "refer", "share"], 3, True),  # the 4th step comes after completion
    ],
)
def test_n_of_m_completes_with_the_required_number_of_distinct_steps(kinds, value, completed):
    folded = _fold(challenge(FIVE_TASKS), kinds)
    progress = folded.progress[""]
    assert (progress.value, progress.completed) == (value, completed)
    assert challenge(FIVE_TASKS).target == 3
    assert sum(o.completed for _i, o in folded.outcomes) == (1 if completed else 0)


def test_all_of_without_required_still_needs_every_step():
    rule = {**FIVE_TASKS, "required": None}
    assert challenge(rule).target == 5
    assert not _fold(challenge(rule), ["visit", "review", "purchase"]).progress[""].completed


@pytest.mark.parametrize(
    ("required", "field"),
    [(6, "$.rule.required"), (0, "$.rule.required"), (21, "$.rule.required")],
)
def test_required_must_fit_the_steps(required, field):
    with pytest.raises(DefinitionError) as caught:
        challenge({**FIVE_TASKS, "required": required})
    assert caught.value.field == field


# --- prerequisites ------------------------------------------------------------------------------------

STARTER = {
    "key": "starter",
    "campaign": "c",
    "title": "Starter",
    "rule": {"type": "count", "event_type": "visit", "target": 2},
}
LOVER = {
    "key": "lover",
    "campaign": "c",
    "title": "Lover",
    "rule": {"type": "count", "event_type": "visit", "target": 2},
    "requires": {"challenges": ["starter"]},
}
GOLD_ONLY = {
    "key": "gold",
    "campaign": "c",
    "title": "Gold quest",
    "rule": {"type": "count", "event_type": "review", "target": 1},
    "requires": {"tiers": ["gold", "platinum"]},
}
CAMPAIGN = {"key": "c", "title": "Campaign"}


def _program(*specs):
    from challenges.config import CampaignSpec

    campaigns = decode([CAMPAIGN], list[CampaignSpec], path="$.campaigns")
    compiled = compile_program(campaigns, decode(list(specs), list[ChallengeSpec], path="$.challenges"), tz=ROME)
    return {c.key: c for c in compiled}


def _events(kinds):
    return [(e, e.occurred_at) for e in (ev(k, f"2026-11-02T{10 + i:02d}:00") for i, k in enumerate(kinds))]


@pytest.mark.parametrize(
    ("kinds", "reasons", "lover_value"),
    [
        (["visit"], ["locked"], 0),
        # the visit that completes the starter does not count for the lover yet
        (["visit", "visit"], ["locked", "locked"], 0),
        (["visit", "visit", "visit"], ["locked", "locked", "counted"], 1),
        (["visit", "visit", "visit", "visit"], ["locked", "locked", "counted", "completed"], 2),
    ],
)
def test_a_challenge_opens_with_the_event_after_its_prerequisite_completes(kinds, reasons, lover_value):
    program = _program(STARTER, LOVER)
    folded = replay_program(program["lover"], program, _events(kinds), tz=ROME, member={})
    assert [o.reason.value for _i, o in folded.outcomes] == reasons
    assert folded.progress.get("", Progress()).value == lover_value
    assert "opens once 'starter' is completed" in folded.outcomes[0][1].detail


@pytest.mark.parametrize(
    ("tier", "reason"),
    [("gold", Reason.COMPLETED), ("platinum", Reason.COMPLETED), ("silver", Reason.LOCKED), (None, Reason.LOCKED)],
)
def test_a_tier_prerequisite_reads_the_members_tier(tier, reason):
    program = _program(GOLD_ONLY)
    member = {} if tier is None else {"tier": tier}
    folded = replay_program(program["gold"], program, _events(["review"]), tz=ROME, member=member)
    outcome = folded.outcomes[0][1]
    assert outcome.reason is reason
    if reason is Reason.LOCKED:
        assert "tier 'gold' or 'platinum'" in outcome.detail


def test_a_member_condition_is_a_generic_prerequisite():
    spec = {**GOLD_ONLY, "requires": {"member": {"field": "member.segments", "contains": "lapsed-vip"}}}
    program = _program(spec)
    inside = replay_program(program["gold"], program, _events(["review"]), tz=ROME, member={"segments": ["lapsed-vip"]})
    outside = replay_program(program["gold"], program, _events(["review"]), tz=ROME, member={"segments": []})
    assert inside.outcomes[0][1].completed
    assert outside.outcomes[0][1].reason is Reason.LOCKED


@pytest.mark.parametrize(
    ("specs", "field", "message"),
    [
        ([LOVER], "$.challenges[0].requires.challenges[0]", "which the program does not have"),
        (
            [{**STARTER, "requires": {"challenges": ["lover"]}}, LOVER],
            "$.challenges[0].requires.challenges",
            "cycle: starter → lover → starter",
        ),
        ([{**STARTER, "requires": {"challenges": ["starter"]}}], "$.challenges[0].requires.challenges[0]", "itself"),
        (
            [{**GOLD_ONLY, "requires": {"member": {"field": "properties.x", "eq": 1}}}],
            "$.challenges[0].requires.member",
            "member attributes only",
        ),
    ],
)
def test_bad_prerequisites_are_named_by_path(specs, field, message):
    with pytest.raises(DefinitionError) as caught:
        _check_program(specs)
    assert caught.value.field == field
    assert message in str(caught.value)


def test_a_longer_cycle_is_found():
    a = {**STARTER, "key": "a", "requires": {"challenges": ["c"]}}
    b = {**STARTER, "key": "b", "requires": {"challenges": ["a"]}}
    c = {**STARTER, "key": "c", "requires": {"challenges": ["b"]}}
    with pytest.raises(DefinitionError, match="cycle: a → c → b → a"):
        _check_program([a, b, c])


def _check_program(specs):
    parsed = parse_challenges(specs, tz=ROME)
    check_requirements((spec, f"$.challenges[{index}]") for index, spec in enumerate(parsed))


# --- the live loop equals the replay --------------------------------------------------------------------

COMPOSED = (
    {"key": "starter", "rule": {"type": "count", "event_type": "visit", "target": 2}},
    {"key": "pick3", "rule": FIVE_TASKS, "requires": {"challenges": ["starter"]}},
    {
        "key": "finale",
        "rule": {
            "type": "all_of",
            "required": 2,
            "steps": [{"event_type": "visit"}, {"event_type": "review"}, {"event_type": "share"}],
        },
        "requires": {"challenges": ["pick3", "starter"]},
        "recurrence": "daily",
        "max_completions": 3,
    },
    {"key": "gold", "rule": {"type": "count", "event_type": "review", "target": 2}, "requires": {"tiers": ["gold"]}},
)
_KIND = st.sampled_from(["visit", "visit", "review", "purchase", "share", "refer", "other"])


@settings(max_examples=60, deadline=None, derandomize=True, database=None)
@given(
    steps=st.lists(st.tuples(st.integers(min_value=1, max_value=60 * 20), _KIND), min_size=1, max_size=40),
    tier=st.sampled_from(["gold", "silver"]),
)
def test_the_live_loop_and_the_replay_with_prerequisites_agree(steps, tier):
    program = _program(*({"campaign": "c", "title": s["key"], **s} for s in COMPOSED))
    live = ActiveProgram.of(list(program.values()))
    instant, events = at("2026-11-02T08:00"), []
    for gap, kind in steps:
        instant += timedelta(minutes=gap)
        events.append(msgspec.structs.replace(ev(kind, "2026-01-01T00:00"), occurred_at=instant))
    member_id, view = MemberId(1), {"tier": tier}
    members = {member_id: _Member.of(None)}
    now = instant + timedelta(minutes=1)
    for index, event in enumerate(events):  # one event per unit of work, as they arrive
        ctx = EventContext(index=index, event=event, member_id=member_id, member=view)
        plans = live.by_type.get(event.type)
        if plans:
            _advance([(ctx, plans)], members, dirty=set(), completed=[], now=now, tz=ROME, opted={})
    state = members[member_id]
    pairs = [(e, now) for e in events]
    for key, target in program.items():
        folded = replay_program(target, program, pairs, tz=ROME, member=view)
        expected = {
            instance: msgspec.structs.replace(p, challenge="", instance="") for instance, p in folded.progress.items()
        }
        assert state.decoded.get(key, {}) == expected, key
        assert state.completions.get(key, 0) == sum(o.completed for _i, o in folded.outcomes), key
