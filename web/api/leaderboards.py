"""Leaderboards over HTTP: definitions (secret key), reads (secret or publishable key), display preferences.

The runtime they call (``services.leaderboards``) is built by ``web/wiring.py``.
"""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Response, delete, get, put
from litestar.di import Provide
from litestar.params import FromPath, JSONBody, QueryParameter

from engine.errors import ValidationError
from engine.tenants import KeyKind
from leaderboards.config import board_to_spec
from leaderboards.models import (
    BoardPage,
    BoardSpec,
    BoardSummary,
    Preference,
)
from web.api.board_reads import INT_BOUNDS, TEXT_BOUNDS
from web.deps import PrincipalDep, ServicesDep, provide_secret_principal
from web.openapi import answers


def _bounded(name: str, description: str) -> Any:
    """The query parameter ``name`` with the lean read's bounds (:data:`web.api.board_reads.INT_BOUNDS`)."""
    low, high = INT_BOUNDS[name]
    return QueryParameter(ge=low, le=high, description=description)


class LeaderboardsController(Controller):
    """Boards: list and read with either key; define with the secret key."""

    path = "/v1/leaderboards"
    tags = ["leaderboards"]  # noqa: RUF012
    dependencies = {"principal": Provide(provide_secret_principal)}  # noqa: RUF012

    @get("/", summary="List boards")
    async def list_boards(self, services: ServicesDep, caller: PrincipalDep) -> list[BoardSummary]:
        """The brand's boards; a publishable key sees only public ones."""
        lb = services.leaderboards
        boards = await lb.boards(caller.brand)
        return lb.summaries(boards, public=caller.kind is KeyKind.PUBLISHABLE)

    @get("/{key:str}", summary="Read a board")  # plain reads are answered by web.api.board_reads' lane
    async def read_board(
        self,
        key: FromPath[str],
        services: ServicesDep,
        caller: PrincipalDep,
        period: Annotated[
            str,
            QueryParameter(
                max_length=TEXT_BOUNDS["period"],
                description="`current` or a period id: 2026-11-22, 2026-W47, 2026-11, all, window.",
            ),
        ] = "current",
        limit: Annotated[int, _bounded("limit", "Entries of the top page.")] = 10,
        offset: Annotated[int, _bounded("offset", "Start of the top page.")] = 0,
        around: Annotated[
            str | None,
            QueryParameter(
                max_length=TEXT_BOUNDS["around"], description="A member's external id: their rank and ±k neighbours."
            ),
        ] = None,
        k: Annotated[int, _bounded("k", "Neighbours on each side of `around`.")] = 5,
        members: Annotated[
            str | None,
            QueryParameter(
                max_length=TEXT_BOUNDS["members"],
                description="Comma-separated external ids (friends), at most 100 and 5,000 characters.",
            ),
        ] = None,
        scope_value: Annotated[
            str | None,
            QueryParameter(
                name="scope",
                max_length=TEXT_BOUNDS["scope"],
                description="The scope value of a per-attribute board (a store).",
            ),
        ] = None,
    ) -> BoardPage:
        """Top entries with ranks, and the `around` member's standing and neighbourhood, and friends' ranks."""
        friends = [m.strip() for m in members.split(",") if m.strip()] if members else []
        return await services.leaderboards.read(
            caller.brand,
            key,
            period=period,
            scope=scope_value,
            offset=offset,
            limit=limit,
            around=around,
            k=k,
            members=friends,
            public=caller.kind is KeyKind.PUBLISHABLE,
        )

    @get("/{key:str}/definition", summary="A board's definition")
    async def definition(self, key: FromPath[str], services: ServicesDep, principal: PrincipalDep) -> BoardSpec:
        """The board as stored (secret key)."""
        board = await services.leaderboards.board(principal.brand, key, public=False)
        return board_to_spec(board)

    @put("/{key:str}", summary="Create or replace a board", responses=answers(201, BoardSpec, "The board was created"))
    async def put_board(
        self, key: FromPath[str], data: JSONBody[BoardSpec], services: ServicesDep, principal: PrincipalDep
    ) -> Response[BoardSpec]:
        """Validated before it is stored: a mistake answers 422 naming its path and nothing changes."""
        if data.key != key:
            raise ValidationError(f"the body's key {data.key!r} differs from the path's {key!r}", field="$.key")
        board, outcome = await services.leaderboards.put_board(principal.brand, data)
        return Response(board_to_spec(board), status_code=201 if outcome == "created" else 200)

    @delete("/{key:str}", summary="Delete a board")
    async def delete_board(self, key: FromPath[str], services: ServicesDep, principal: PrincipalDep) -> None:
        """Removes the board with its totals, archives and Redis keys (points already paid stay)."""
        await services.leaderboards.delete_board(principal.brand, key)


class PreferencesController(Controller):
    """How a member appears on boards (secret key: the brand's app sets it for its member)."""

    path = "/v1/leaderboard-preferences"
    tags = ["leaderboards"]  # noqa: RUF012
    dependencies = {"principal": Provide(provide_secret_principal)}  # noqa: RUF012

    @get("/{external_id:str}", summary="A member's board preference")
    async def get_preference(
        self, external_id: FromPath[str], services: ServicesDep, principal: PrincipalDep
    ) -> Preference:
        """Opt-out, display choice and pseudonym."""
        return await services.leaderboards.get_preference(principal.brand, external_id)

    @put("/{external_id:str}", summary="Set a member's board preference")
    async def set_preference(
        self, external_id: FromPath[str], data: JSONBody[Preference], services: ServicesDep, principal: PrincipalDep
    ) -> Preference:
        """Opting out takes the member off every public board at once; opting in puts them back."""
        return await services.leaderboards.set_preference(principal.brand, external_id, data)


routes: list[Any] = [LeaderboardsController, PreferencesController]
