"""Pure rules of rewards: availability, eligibility, member limit windows, code patterns, CSV pools."""

from __future__ import annotations

import csv
import io
import secrets
from datetime import date
from typing import TYPE_CHECKING, Any

from engine.errors import ValidationError
from engine.periods import PeriodKind, local_day, local_midnight, period_bounds
from engine.predicates import matches

if TYPE_CHECKING:
    from collections.abc import Mapping
    from datetime import datetime
    from zoneinfo import ZoneInfo

    from rewards.models import MemberLimit, Reward

DIGITS = "0123456789"
#: Letters and digits without look-alikes (no 0/O, 1/I/L) for codes read aloud at a till.
ALPHANUMERIC = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
MAX_CODES = 100_000
MAX_CODE_LENGTH = 64
_PERIODS = {"day": PeriodKind.DAILY, "week": PeriodKind.WEEKLY, "month": PeriodKind.MONTHLY}


def unavailable_reason(reward: Reward, now: datetime) -> str:
    """Why the reward cannot be redeemed at ``now`` by anyone, or ``""``."""
    spec = reward.spec
    if spec.paused:
        return "paused"
    if spec.starts_at is not None and now < spec.starts_at:
        return "not_started"
    if spec.ends_at is not None and now >= spec.ends_at:
        return "ended"
    return ""


def eligible(reward: Reward, member: Mapping[str, Any]) -> bool:
    """Whether the member's attributes satisfy the reward's eligibility."""
    return matches(reward.eligibility, properties={}, member=member)


def limit_window(limit: MemberLimit, now: datetime, tz: ZoneInfo) -> tuple[datetime | None, datetime | None]:
    """The UTC ``[start, end)`` of the limit's period containing ``now`` (open bounds for ``ever``)."""
    if limit.period == "ever":
        return None, None
    if limit.period == "year":
        year = local_day(now, tz).year
        return local_midnight(date(year, 1, 1), tz), local_midnight(date(year + 1, 1, 1), tz)
    return period_bounds(_PERIODS[limit.period], now, tz)


def generate_code(pattern: str) -> str:
    """A code from ``pattern``: ``#`` a random digit, ``X`` a random letter or digit, the rest as written."""
    return "".join(
        secrets.choice(DIGITS) if c == "#" else secrets.choice(ALPHANUMERIC) if c == "X" else c for c in pattern
    )


def parse_codes(text: str) -> list[str]:
    """The codes of a CSV upload: the first column of each row, a ``code`` header skipped, blanks and repeats dropped.

    Raises:
        ValidationError: a code is too long or the file holds too many.
    """
    codes: dict[str, None] = {}
    for line, row in enumerate(csv.reader(io.StringIO(text)), start=1):
        if not row:
            continue
        code = row[0].strip()
        if not code or (line == 1 and code.lower() == "code"):
            continue
        if len(code) > MAX_CODE_LENGTH:
            raise ValidationError(f"line {line}: a code is at most {MAX_CODE_LENGTH} characters", field="codes")
        codes[code] = None
        if len(codes) > MAX_CODES:
            raise ValidationError(f"at most {MAX_CODES} codes per upload", field="codes")
    return list(codes)


def crossed_low(before: int | None, after: int | None, threshold: int | None) -> bool:
    """Whether a count went from above ``threshold`` to at or below it (a low-stock alert, once per crossing)."""
    if threshold is None or before is None or after is None:
        return False
    return before > threshold >= after
