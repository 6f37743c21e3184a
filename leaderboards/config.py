"""Board definitions as configuration: validation, and the ``leaderboards`` section of the program document.

``build_board`` turns a wire :class:`BoardSpec` into a :class:`BoardDef` or raises a ``DefinitionError``
naming the path of the mistake; nothing invalid is ever stored. ``parse_section``, ``apply_section`` and
``export_section`` are what the whole-program document (``web/program.py``) calls for this package.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import msgspec

from engine.errors import DefinitionError
from engine.predicates import parse_predicate, predicate_to_data
from engine.texts import check_text, text_in, translations
from leaderboards.models import BoardDef, BoardSpec

if TYPE_CHECKING:
    from datetime import datetime

    from sqlalchemy.ext.asyncio import AsyncSession

    from engine.ids import BrandId

MAX_BOARDS = 200


def build_board(spec: BoardSpec, *, board_id: int = 0, path: str = "$") -> BoardDef:
    """Validate a spec and compile its filter.

    Raises:
        DefinitionError: an inconsistent window, reward ranks or filter (``field`` is its path).
    """
    if spec.period == "window" and (spec.starts_at is None or spec.ends_at is None):
        raise DefinitionError("a `window` board needs `starts_at` and `ends_at`", field=f"{path}.starts_at")
    if spec.starts_at is not None and spec.ends_at is not None and spec.ends_at <= spec.starts_at:
        raise DefinitionError("`ends_at` must come after `starts_at`", field=f"{path}.ends_at")
    if spec.min_score is not None and abs(spec.min_score) > 1e12:
        raise DefinitionError("`min_score` is out of range (±1e12)", field=f"{path}.min_score")
    for index, reward in enumerate(spec.rewards):
        where = f"{path}.rewards[{index}]"
        if reward.to_rank < reward.from_rank:
            raise DefinitionError("`to_rank` must not be below `from_rank`", field=f"{where}.to_rank")
        if not reward.points and not reward.badge:
            raise DefinitionError("a reward gives `points`, a `badge` or both", field=f"{where}.points")
    predicate = parse_predicate(spec.filter, path=f"{path}.filter") if spec.filter is not None else None
    check_text(spec.title, field=f"{path}.title", required=True)
    return BoardDef(
        id=board_id,
        key=spec.key,
        title=text_in(spec.title),
        metric=spec.metric,
        period=spec.period,
        starts_at=spec.starts_at,
        ends_at=spec.ends_at,
        scope=spec.scope,
        order=spec.order,
        mode=spec.mode,
        ties=spec.ties,
        min_score=spec.min_score,
        filter=predicate,
        visibility=spec.visibility,
        display=spec.display,
        decimals=spec.decimals,
        rewards=tuple(spec.rewards),
        retention_days=spec.retention_days,
        grace_minutes=spec.grace_minutes,
        active=spec.active,
        description=text_in(spec.description),
        texts=translations(title=spec.title, description=spec.description),
    )


def board_to_spec(board: BoardDef) -> BoardSpec:
    """The plain form of a board, for storage and display."""
    return BoardSpec(
        key=board.key,
        title=board.texts.given("title", board.title),
        metric=board.metric,
        period=board.period,
        starts_at=board.starts_at,
        ends_at=board.ends_at,
        scope=board.scope,
        order=board.order,
        mode=board.mode,
        ties=board.ties,
        min_score=board.min_score,
        filter=predicate_to_data(board.filter) if board.filter is not None else None,
        visibility=board.visibility,
        display=board.display,
        decimals=board.decimals,
        rewards=list(board.rewards),
        retention_days=board.retention_days,
        grace_minutes=board.grace_minutes,
        active=board.active,
        description=board.texts.given("description", board.description),
    )


def decode_spec(data: Any, *, path: str) -> BoardSpec:
    """Plain data (JSON or YAML) → :class:`BoardSpec`.

    Raises:
        DefinitionError: the data does not fit the schema (``field`` is the path of the mistake).
    """
    try:
        return msgspec.convert(data, BoardSpec, strict=False)
    except msgspec.ValidationError as exc:
        message = str(exc)
        where = path
        marker = " - at `$"
        if marker in message:
            message, _, rest = message.partition(marker)
            where = path + rest.rstrip("`")
        raise DefinitionError(f"{message} (at {where})", field=where) from exc


def parse_section(data: Any, *, path: str) -> list[BoardDef]:
    """Validate the ``leaderboards`` section of a program document: a list of board specs.

    Raises:
        DefinitionError: not a list, a bad board, or a key used twice (``field`` names the path).
    """
    if data is None:
        return []
    if not isinstance(data, list):
        raise DefinitionError("`leaderboards` is a list of boards", field=path)
    if len(data) > MAX_BOARDS:
        raise DefinitionError(f"at most {MAX_BOARDS} boards per brand", field=path)
    boards: list[BoardDef] = []
    seen: set[str] = set()
    for index, item in enumerate(data):
        where = f"{path}[{index}]"
        board = build_board(decode_spec(item, path=where), path=where)
        if board.key in seen:
            raise DefinitionError(f"board key {board.key!r} appears twice", field=f"{where}.key")
        seen.add(board.key)
        boards.append(board)
    return boards


async def apply_section(session: AsyncSession, *, brand_id: BrandId, defs: list[BoardDef], now: datetime) -> list[str]:
    """Create or update each board inside the caller's transaction; returns what changed, in words."""
    from leaderboards import repository

    changes: list[str] = []
    for board in defs:
        outcome = await repository.save_board(session, brand_id=brand_id, spec=board_to_spec(board), now=now)
        if outcome != "unchanged":
            changes.append(f"leaderboard {board.key}: {outcome}")
    if changes:
        from engine.tenants import bump_config_version

        await bump_config_version(session, brand_id)
    return changes


async def export_section(session: AsyncSession, *, brand_id: BrandId) -> list[dict[str, Any]]:
    """The brand's boards as plain data, in the form :func:`parse_section` reads."""
    from leaderboards import repository

    boards = await repository.load_boards(session, brand_id=brand_id)
    return [msgspec.to_builtins(board_to_spec(b)) for b in boards]
