"""Experiments: sticky allocation by hash, and the uplift with its confidence interval against a hand computation."""

import math
import subprocess
import sys
from collections import Counter
from datetime import UTC, datetime

import msgspec
import pytest

from segments.experiments import ArmTotals, mean_var, report, welch
from segments.offers import OfferDef, arm_of, bucket, validate

T0 = datetime(2026, 11, 1, tzinfo=UTC)


def offer(*arms):
    return msgspec.convert(
        {"key": "exp", "kind": "bonus", "points": 10, "event_type": "purchase", "members": ["x"],
         "starts_at": "2026-11-01T00:00:00Z", "ends_at": "2026-12-01T00:00:00Z",
         "experiment": {"arms": list(arms)}},
        OfferDef,
    )  # fmt: skip


def totals(arm, events, *, control=False):
    return ArmTotals(
        arm=arm, control=control, members=len(events), participants=sum(1 for e in events if e), points=0,
        events=sum(events), events_sq=sum(e * e for e in events),
    )  # fmt: skip


def test_allocation_of_ten_thousand_members_is_within_statistical_bounds():
    spec = offer({"key": "control", "percent": 20, "control": True}, {"key": "a", "percent": 30},
                 {"key": "b", "percent": 50})  # fmt: skip
    counts = Counter(arm_of(spec, f"member-{i}").key for i in range(10_000))
    for key, share in (("control", 0.2), ("a", 0.3), ("b", 0.5)):
        sigma = math.sqrt(10_000 * share * (1 - share))
        assert abs(counts[key] - 10_000 * share) < 4 * sigma, counts  # 4σ: a false alarm once in ~16 000 runs


def test_assignment_is_the_same_in_another_process():
    spec = offer({"key": "control", "percent": 50, "control": True}, {"key": "t", "percent": 50})
    here = [arm_of(spec, f"m{i}").key for i in range(200)]
    code = (
        "import msgspec,sys;from segments.offers import OfferDef,arm_of;"
        "spec=msgspec.json.decode(sys.stdin.buffer.read(),type=OfferDef);"
        "print(','.join(arm_of(spec,f'm{i}').key for i in range(200)))"
    )
    run = subprocess.run(
        [sys.executable, "-c", code], input=msgspec.json.encode(spec), capture_output=True, check=True,
        env={"PYTHONHASHSEED": "12345", "PATH": ""},
    )  # fmt: skip
    assert run.stdout.decode().strip().split(",") == here
    assert bucket("exp", "m1") == bucket("exp", "m1") and bucket("exp", "m1") != bucket("other", "m1")


def test_uplift_against_a_hand_computed_example():
    # control 1,2,3,2: mean 2, s² = (1+0+1+0)/3 = 2/3; treated 3,4,5,4: mean 4, s² = 2/3
    # se = sqrt(2/3/4 + 2/3/4) = sqrt(1/3) = 0.57735; 95 % CI = 2 ± 1.96·0.57735 = [0.8684, 3.1316]
    # Welch df = (1/6 + 1/6)² / ((1/6)²/3 · 2) = (1/9) / (1/54) = 6
    control, treated = totals("control", [1, 2, 3, 2], control=True), totals("t", [3, 4, 5, 4])
    uplift = welch(treated, control)
    assert uplift is not None
    assert uplift.difference == pytest.approx(2.0)
    assert (uplift.low, uplift.high) == (pytest.approx(0.86841, abs=1e-4), pytest.approx(3.13159, abs=1e-4))
    assert uplift.relative == pytest.approx(1.0)
    assert uplift.df == pytest.approx(6.0)
    rows = report([control, treated])
    assert [(r.arm, r.members, r.events_per_member, r.uplift is None) for r in rows] == [
        ("control", 4, 2.0, True),
        ("t", 4, 4.0, False),
    ]


def test_no_interval_with_fewer_than_two_members_and_variance_from_sums():
    assert welch(totals("t", [3]), totals("c", [1, 2], control=True)) is None
    assert mean_var(6, 14, 3) == (2.0, 1.0)  # 1,2,3


@pytest.mark.parametrize(
    ("arms", "message"),
    [
        ([{"key": "c", "percent": 50, "control": True}, {"key": "t", "percent": 40}], "add up to 100"),
        ([{"key": "c", "percent": 50}, {"key": "t", "percent": 50}], "exactly one arm"),
        ([{"key": "c", "percent": 50, "control": True}, {"key": "c", "percent": 50}], "must differ"),
    ],
)
def test_bad_experiments_are_refused(arms, message):
    with pytest.raises(Exception, match=message):
        validate(offer(*arms))
