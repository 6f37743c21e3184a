"""The domain counters ``web.metrics.count_effects`` moves from a unit's effects (summed, one move per counter)."""

from __future__ import annotations

import uuid

from prometheus_client import REGISTRY

from engine.effects import ChallengeCompleted, PointsAwarded, ProgressAdvanced
from web.metrics import count_effects


def _value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_effects_points_and_completions_are_counted_by_kind():
    brand = f"brand-{uuid.uuid4().hex[:8]}"
    names = {
        "rule": ("questline_points_awarded_total", {"brand": brand, "source": "rule"}),
        "challenge": ("questline_points_awarded_total", {"brand": brand, "source": "challenge"}),
        "deducted": ("questline_points_deducted_total", {"brand": brand}),
        "completions": ("questline_challenge_completions_total", {"brand": brand}),
    }
    kinds = ("points_awarded", "progress_advanced", "challenge_completed")
    before = {key: _value(name, **labels) for key, (name, labels) in names.items()}
    before_kinds = {kind: _value("questline_effects_total", effect=kind) for kind in kinds}

    count_effects(
        brand,
        iter(  # the pipeline passes a generator: one pass only
            [
                PointsAwarded(points=10, source="rule", key="visit"),
                PointsAwarded(points=5, source="rule", key="visit"),
                PointsAwarded(points=-7, source="adjustment", key="manual"),
                PointsAwarded(points=0, source="rule", key="capped"),
                ProgressAdvanced(challenge="three", progress=1, target=3),
                ChallengeCompleted(challenge="three"),
                ChallengeCompleted(challenge="five"),
                PointsAwarded(points=50, source="challenge", key="three"),
            ]
        ),
    )

    moved = {key: _value(name, **labels) - before[key] for key, (name, labels) in names.items()}
    assert moved["rule"] == 15
    assert moved["challenge"] == 50
    assert moved["deducted"] == 7
    assert moved["completions"] == 2
    by_kind = {kind: _value("questline_effects_total", effect=kind) - before_kinds[kind] for kind in kinds}
    assert by_kind == {"points_awarded": 5, "progress_advanced": 1, "challenge_completed": 2}
