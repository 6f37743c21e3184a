"""What changed between two stored specs, told to a person (``rule.target: 3 → 5``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import msgspec

if TYPE_CHECKING:
    from challenges.config import CampaignSpec, ChallengeSpec


def to_plain(spec: CampaignSpec | ChallengeSpec) -> dict[str, Any]:
    """The stored and exported form of a spec (defaults left out)."""
    result: dict[str, Any] = msgspec.to_builtins(spec)
    return result


def diff_fields(old: Mapping[str, Any], new: Mapping[str, Any], *, prefix: str = "") -> list[str]:
    """Human-readable field changes between two plain specs (``rule.target: 3 → 5``)."""
    changes: list[str] = []
    for name in sorted(set(old) | set(new), key=lambda n: (list(new).index(n) if n in new else 999, n)):
        before, after = old.get(name), new.get(name)
        if before == after:
            continue
        label = f"{prefix}{name}"
        if isinstance(before, Mapping) and isinstance(after, Mapping) and before.get("type") == after.get("type"):
            changes.extend(diff_fields(before, after, prefix=f"{label}."))
        elif _short(before) and _short(after):
            changes.append(f"{label}: {_show(before)} → {_show(after)}")
        else:
            changes.append(f"{label} changed")
    return changes


def _short(value: Any) -> bool:
    return value is None or (isinstance(value, str | int | float | bool) and len(str(value)) <= 60)


def _show(value: Any) -> str:
    return "(none)" if value is None else msgspec.json.encode(value).decode()
