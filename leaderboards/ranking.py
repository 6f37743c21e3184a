"""Pure leaderboard arithmetic: periods of a board, what an event adds, scores in Redis, ranks, windows, labels.

Nothing here does I/O. The same functions rank a page read from Redis, a closed period being archived,
and the SQL fallback used while Redis is rebuilt, so every path agrees on who is where.

Ordering. Redis keeps one double per member, and "higher is better": the *signed units* ``v`` (the units
for ``desc`` boards, their negation for ``asc`` boards), or for ``first_to_reach`` boards the composite
``v·2^b + (2^b − 1 − tick)`` where ``tick`` counts seconds (minutes for long periods) from the period's
start to the moment the member reached the score. Equal values list in reverse byte order of the member
id, as ``ZRANGE … REV`` does; :func:`place` sorts the same way.
"""

from __future__ import annotations

import hashlib
import math
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from engine.effects import ChallengeCompleted, Effect, PointsAwarded
from engine.errors import ValidationError
from engine.periods import PERIOD_ID_FORMATS, PeriodKind, bounds_of_period_id, in_window, period_span
from engine.predicates import matches
from leaderboards.models import (
    MAX_ABS_SCORE,
    BoardDef,
    ChallengeCompletionsMetric,
    DisplayChoice,
    EventCountMetric,
    MemberInfo,
    PeriodRef,
    Placed,
    PointsFromMetric,
    PointsMetric,
    PropertySumMetric,
)

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from zoneinfo import ZoneInfo

EPOCH = datetime(2020, 1, 1, tzinfo=UTC)
"""Start of the tie-break clock of ``all_time`` boards without a ``starts_at``."""
EXACT = 2**53
"""Doubles hold every integer of magnitude up to 2^53 exactly."""
WINDOW_ID = "window"
_STYLE_ORDER = {"full_name": 0, "initials": 1, "pseudonym": 2}


# --- periods -------------------------------------------------------------------------------------------
# The calendar maths lives in :mod:`engine.periods`; these only add what a board's window changes.


def _window(board: BoardDef) -> PeriodRef:
    return PeriodRef(id=WINDOW_ID, starts_at=board.starts_at, ends_at=board.ends_at)


def period_for(board: BoardDef, instant: datetime, tz: ZoneInfo) -> PeriodRef | None:
    """The period of ``board`` that ``instant`` falls in, or ``None`` outside the board's window."""
    if not in_window(instant, board.starts_at, board.ends_at):
        return None
    return current_period(board, instant, tz)


def current_period(board: BoardDef, now: datetime, tz: ZoneInfo) -> PeriodRef:
    """The period a read of ``current`` means: the one containing ``now`` (the window for campaign boards)."""
    if board.period == "window":
        return _window(board)
    pid, starts_at, ends_at = period_span(PeriodKind(board.period), now, tz)
    return PeriodRef(id=pid, starts_at=starts_at, ends_at=ends_at)


def period_from_id(board: BoardDef, pid: str, tz: ZoneInfo) -> PeriodRef:
    """Parse a period id of ``board`` (``all``, ``2026-11-22``, ``2026-W47``, ``2026-11``, ``window``).

    Raises:
        ValidationError: the id is not a period of this board.
    """
    if board.period == "window":
        if pid != WINDOW_ID:
            raise _bad_period(board, pid, WINDOW_ID)
        return _window(board)
    kind = PeriodKind(board.period)
    try:
        starts_at, ends_at = bounds_of_period_id(kind, pid, tz)
    except ValueError as exc:
        raise _bad_period(board, pid, PERIOD_ID_FORMATS[kind]) from exc
    return PeriodRef(id=pid, starts_at=starts_at, ends_at=ends_at)


def _bad_period(board: BoardDef, pid: str, expected: str) -> ValidationError:
    return ValidationError(
        f"period {pid!r} is not a {board.period} period: use `current` or {expected}", field="period"
    )


# --- what an event is worth ----------------------------------------------------------------------------


def scope_of(board: BoardDef, member: Mapping[str, Any]) -> str | None:
    """The scope value the member belongs to on ``board`` (``""`` when unscoped; ``None`` = not on it)."""
    if board.scope is None:
        return ""
    value = member.get(board.scope)
    if isinstance(value, bool) or not isinstance(value, str | int) or value == "":
        return None
    text = str(value)
    return text if len(text) <= 100 else None


def to_units(value: float, board: BoardDef) -> int:
    """A score in integer units of ``10^-decimals``, clamped to the exact range."""
    units = round(value * board.scale)
    return max(-MAX_ABS_SCORE, min(MAX_ABS_SCORE, units))


def contribution(
    board: BoardDef,
    *,
    event_type: str,
    properties: Mapping[str, Any],
    member: Mapping[str, Any],
    effects: Sequence[Effect],
) -> int | None:
    """The units one event adds (``increment``) or scores (``best``/``latest``); ``None`` if it does not count."""
    if not board.active:
        return None
    if not matches(board.filter, event_type=event_type, properties=properties, member=member):
        return None
    return metric_units(board, event_type=event_type, properties=properties, effects=effects)


def metric_units(
    board: BoardDef, *, event_type: str, properties: Mapping[str, Any], effects: Sequence[Effect]
) -> int | None:
    """What the board's metric makes of one (matching) event; ``None`` if it gives nothing."""
    match board.metric:
        case PointsMetric():
            return _points_units(board, effects, source=None, key="")
        case PointsFromMetric(source=source, key=key):
            return _points_units(board, effects, source=source, key=key)
        case EventCountMetric(event_type=wanted):
            return board.scale if event_type == wanted else None
        case PropertySumMetric(event_type=wanted, property=name):
            return _property_units(board, properties.get(name)) if event_type == wanted else None
        case ChallengeCompletionsMetric(challenge=challenge):
            done = [
                e for e in effects if isinstance(e, ChallengeCompleted) and (not challenge or e.challenge == challenge)
            ]
            return to_units(len(done), board) if done else None
    return None


def _points_units(board: BoardDef, effects: Sequence[Effect], *, source: str | None, key: str) -> int | None:
    """The points awarded by the unit's effects (from ``source`` and ``key`` when given), in units."""
    awarded = [
        e.points
        for e in effects
        if isinstance(e, PointsAwarded) and (source is None or e.source == source) and (not key or e.key == key)
    ]
    return to_units(sum(awarded), board) if awarded else None


def _property_units(board: BoardDef, value: Any) -> int | None:
    """A numeric event property in units (``None`` for a missing, boolean or non-finite value)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return to_units(value, board)


def better(board: BoardDef, new: int, old: int) -> bool:
    """Whether ``new`` units beat ``old`` on this board's order."""
    return new > old if board.order == "desc" else new < old


def merge(
    board: BoardDef, current: tuple[int, datetime] | None, units: int, at: datetime
) -> tuple[int, datetime] | None:
    """Fold one contribution into a (units, reached_at) total by the board's mode (the SQL upsert does the same).

    Returns ``None`` when nothing changes (an ``increment`` of zero on no total).
    """
    if board.mode == "increment":
        if units == 0:
            return current
        if current is None:
            return units, at
        total = max(-MAX_ABS_SCORE, min(MAX_ABS_SCORE, current[0] + units))
        return total, max(current[1], at)
    if current is None:
        return units, at
    if board.mode == "best":
        if better(board, units, current[0]):
            return units, at
        if units == current[0]:
            return units, min(current[1], at)
        return current
    return (units, at) if at >= current[1] else current


def qualifies(board: BoardDef, units: int) -> bool:
    """Whether a total is high enough to appear (``min_score``)."""
    return board.min_units is None or units >= board.min_units


def is_listed(board: BoardDef, *, units: int, member_id: int, hidden: set[int]) -> bool:
    """Whether a total appears on the board (above the minimum, not opted out of a public board)."""
    return qualifies(board, units) and not (board.visibility == "public" and member_id in hidden)


# --- scores in Redis -----------------------------------------------------------------------------------


def tie_clock(board: BoardDef, period: PeriodRef) -> tuple[datetime, int, int]:
    """The tie-break clock of a ``first_to_reach`` board: (origin, seconds per tick, bits)."""
    match board.period:
        case "daily":
            return period.starts_at or EPOCH, 1, 17
        case "weekly":
            return period.starts_at or EPOCH, 1, 20
        case "monthly":
            return period.starts_at or EPOCH, 1, 22
        case "window":
            assert board.starts_at is not None
            assert board.ends_at is not None
            length = int((board.ends_at - board.starts_at).total_seconds())
            if length < 2**26:
                return board.starts_at, 1, max(length.bit_length(), 1)
            return board.starts_at, 60, max((length // 60 + 1).bit_length(), 1)
        case _:
            return board.starts_at or EPOCH, 60, 27


def signed(board: BoardDef, units: int) -> int:
    """Units turned so that higher is better."""
    return units if board.order == "desc" else -units


def redis_score(board: BoardDef, period: PeriodRef, units: int, reached_at: datetime) -> float:
    """The double stored in Redis for a member's total (see the module docstring)."""
    value = signed(board, units)
    if board.ties != "first_to_reach":
        return float(value)
    origin, step, bits = tie_clock(board, period)
    span = 1 << bits
    if abs(value) >= EXACT >> bits:
        # Beyond the precision budget the tie-break is dropped so the score itself stays exact.
        return float(value * span)
    tick = int((reached_at - origin).total_seconds() // step)
    tick = min(max(tick, 0), span - 1)
    return float(value * span + (span - 1 - tick))


def units_from_score(board: BoardDef, period: PeriodRef, score: float) -> int:
    """The units a Redis score stands for (the inverse of :func:`redis_score`)."""
    value = int(score)
    if board.ties == "first_to_reach":
        _origin, _step, bits = tie_clock(board, period)
        value = math.floor(score / (1 << bits))
    return value if board.order == "desc" else -value


def display_score(board: BoardDef, units: int) -> float:
    """Units as the score a person reads."""
    return units / board.scale if board.decimals else float(units)


def member_token(member_id: int) -> bytes:
    """The Redis member for a member id."""
    return str(member_id).encode()


# --- ranks ---------------------------------------------------------------------------------------------


def _order_key(item: tuple[int, float]) -> tuple[float, bytes]:
    return item[1], member_token(item[0])


def place(board: BoardDef, period: PeriodRef, scored: Sequence[tuple[int, float]]) -> list[Placed]:
    """Rank (member id, Redis score) pairs the way a Redis read would: best first, ties by policy."""
    ordered = sorted(scored, key=_order_key, reverse=True)
    placed: list[Placed] = []
    previous: int | None = None
    rank = 0
    for position, (member_id, score) in enumerate(ordered):
        units = units_from_score(board, period, score)
        if board.ties == "first_to_reach":
            rank = position + 1
        elif units != previous:
            rank = position + 1 if board.ties == "competition" else rank + 1
        previous = units
        placed.append(Placed(member_id=member_id, position=position, rank=rank, units=units))
    return placed


def rank_window(
    board: BoardDef,
    *,
    start: int,
    before: int | None,
    window: Sequence[tuple[int, int]],
    known: Mapping[int, int],
) -> list[Placed] | int:
    """Rank consecutive (member id, units) entries read from position ``start``.

    ``before`` is the units of the entry at ``start - 1`` (``None`` at the top) and ``known`` maps units
    to a rank already known (from a count in Redis). Returns the placed entries, or — when the ranks
    cannot follow from what is given — the units whose rank must be counted first.
    """
    if not window:
        return []
    units = [u for _member_id, u in window]
    ranks = _anchor_ranks(board, start=start, before=before, units=units, known=known)
    if board.ties == "competition":
        for index in range(1, len(units)):
            if ranks[index] is None and units[index] == units[index - 1]:
                ranks[index] = ranks[index - 1]
    else:
        _spread_dense(units, ranks)
    placed: list[Placed] = []
    for index, ((member_id, value), rank) in enumerate(zip(window, ranks, strict=True)):
        if rank is None:
            return value
        placed.append(Placed(member_id=member_id, position=start + index, rank=rank, units=value))
    return placed


def _anchor_ranks(
    board: BoardDef, *, start: int, before: int | None, units: Sequence[int], known: Mapping[int, int]
) -> list[int | None]:
    """The ranks that follow from a position alone (or from ``known``); ``None`` where they do not."""
    ranks: list[int | None] = []
    for index, value in enumerate(units):
        position = start + index
        previous = units[index - 1] if index else before
        if (
            board.ties == "first_to_reach"
            or position == 0
            or (board.ties == "competition" and previous is not None and previous != value)
        ):
            ranks.append(position + 1)
        else:
            ranks.append(known.get(value))
    return ranks


def _spread_dense(units: Sequence[int], ranks: list[int | None]) -> None:
    """Fill dense ranks from any anchor: they step by one between distinct scores, both ways."""
    for index in range(1, len(units)):
        anchor = ranks[index - 1]
        if ranks[index] is None and anchor is not None:
            ranks[index] = anchor + (0 if units[index] == units[index - 1] else 1)
    for index in range(len(units) - 2, -1, -1):
        anchor = ranks[index + 1]
        if ranks[index] is None and anchor is not None:
            ranks[index] = anchor - (0 if units[index] == units[index + 1] else 1)


def around_bounds(position: int, k: int, total: int) -> tuple[int, int]:
    """The inclusive positions of a member's ±``k`` window, kept ``2k + 1`` long at the top and bottom edges."""
    if total <= 0:
        return 0, -1
    size = min(2 * k + 1, total)
    start = max(0, min(position - k, total - size))
    return start, start + size - 1


def percentile(rank: int, total: int) -> float:
    """Share of the board (in %) ranked at or below ``rank``: 100 for the top, 100/N for the last."""
    if total <= 0:
        return 0.0
    return round(100.0 * (total - rank + 1) / total, 2)


# --- names ---------------------------------------------------------------------------------------------


def pseudonym_for(brand_id: int, member_id: int) -> str:
    """A stable generated pseudonym that reveals nothing about the member."""
    digest = hashlib.blake2s(f"{brand_id}:{member_id}".encode(), digest_size=3).hexdigest()
    return f"Player {digest.upper()}"


def initials(name: str) -> str:
    """``Giulia Rossi`` → ``G. R.``."""
    parts = [p for p in name.replace("-", " ").split() if p]
    return " ".join(f"{p[0].upper()}." for p in parts[:3])


def label(
    *,
    policy: str,
    choice: DisplayChoice,
    display_name: str,
    pseudonym: str,
    brand_id: int,
    member_id: int,
) -> str:
    """How a member is shown on a board: the more private of the board's policy and the member's choice."""
    style = policy
    if choice and _STYLE_ORDER[choice] > _STYLE_ORDER[style]:
        style = choice
    if style == "full_name" and display_name:
        return display_name
    if style in ("full_name", "initials") and display_name.strip():
        return initials(display_name)
    return pseudonym or pseudonym_for(brand_id, member_id)


def member_label(board: BoardDef, info: MemberInfo, *, brand_id: int) -> str:
    """The label ``board`` shows for a member (the more private of its policy and the member's choice)."""
    return label(
        policy=board.display,
        choice=info.display,
        display_name=info.display_name,
        pseudonym=info.pseudonym,
        brand_id=brand_id,
        member_id=info.member_id,
    )
