"""Rewards over HTTP: the catalog, code pools, redemptions (with QR images) and the program's liability.

Every endpoint takes the brand's secret key. Refusals are 409 problems: ``insufficient-points``,
``out-of-stock``, ``redemption-limit-reached``, ``reward-not-redeemable``, ``redemption-state``.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, Response, delete, get, post, put
from litestar.di import Provide
from litestar.params import FromPath, JSONBody, QueryParameter

from engine import members as members_repo
from engine.errors import NotFound, ValidationError
from engine.periods import local_midnight
from rewards import repository as rewards_repo
from rewards import service as rewards_service
from rewards.liability import Liability, liability
from rewards.models import CodePoolStatus, Redemption
from web.deps import PrincipalDep, ServicesDep, provide_secret_principal
from web.qr import qr_png, qr_svg
from web.schemas.rewards import (
    CodeCounts,
    CodesIn,
    RedemptionAction,
    RedemptionIn,
    RedemptionOut,
    RedemptionPage,
    RewardIn,
    RewardOut,
)

MAX_CSV_BYTES = 4 * 1024 * 1024


def redemption_out(redemption: Redemption) -> RedemptionOut:
    """A redemption with the links of its QR images (when it has a code)."""
    base = f"/v1/redemptions/{redemption.id}/qr"
    has = redemption.code is not None
    return RedemptionOut(
        redemption=redemption, qr_svg=base + ".svg" if has else None, qr_png=base + ".png" if has else None
    )


async def reward_out(services: ServicesDep, brand_id: int, key: str) -> RewardOut:
    """One reward with stock and code counts."""
    async with services.db.read() as session:
        row = await rewards_repo.reward_row(session, brand_id=brand_id, key=key)  # type: ignore[arg-type]
        total, issued = await rewards_repo.stock_of(session, reward_id=row.id)
        counts = await rewards_repo.code_counts(session, reward_id=row.id)
    reward = rewards_repo.to_reward(row.spec)
    codes = None
    if reward.spec.codes is not None:
        codes = CodeCounts(
            available=counts.get("available", 0), issued=counts.get("issued", 0), void=counts.get("void", 0)
        )
    return RewardOut(
        reward=reward.spec, remaining=None if total is None else total - issued, issued=issued, codes=codes
    )


class RewardsController(Controller):
    """The reward catalog and its code pools."""

    path = "/v1/rewards"
    tags = ("rewards",)
    dependencies = {"principal": Provide(provide_secret_principal)}  # noqa: RUF012

    @get("/", summary="List the reward catalog")
    async def list_rewards(self, services: ServicesDep, principal: PrincipalDep) -> list[RewardOut]:
        """Every reward of the brand (hidden and paused ones too), by key, with stock left."""
        async with services.db.read() as session:
            rows = await rewards_repo.list_rewards(session, brand_id=principal.brand.id)
        return [await reward_out(services, principal.brand.id, reward.key) for _, reward, _ in rows]

    @get("/{key:str}", summary="Read a reward")
    async def read_reward(self, key: FromPath[str], services: ServicesDep, principal: PrincipalDep) -> RewardOut:
        """The reward, its stock left and its code pool counts; 404 when there is no such key."""
        return await reward_out(services, principal.brand.id, key)

    @put("/{key:str}", summary="Create or replace a reward")
    async def put_reward(
        self, key: FromPath[str], data: JSONBody[RewardIn], services: ServicesDep, principal: PrincipalDep
    ) -> RewardOut:
        """Validated first (422 naming the field); a new cost applies to new redemptions only.

        A stock below what is out now answers 409.
        """
        try:
            spec = data.spec(key)
        except msgspec.ValidationError as exc:
            raise ValidationError(str(exc), field="key") from exc
        async with services.db.write() as session:
            await rewards_service.put_reward(session, brand_id=principal.brand.id, spec=spec, now=services.clock.now())
        return await reward_out(services, principal.brand.id, key)

    @delete("/{key:str}", summary="Delete a reward never redeemed", status_code=204)
    async def delete_reward(self, key: FromPath[str], services: ServicesDep, principal: PrincipalDep) -> None:
        """Remove the reward with its stock and codes; one with redemptions answers 409 (pause or hide it)."""
        async with services.db.write() as session:
            await rewards_repo.delete_reward(session, brand_id=principal.brand.id, key=key)

    @get("/{key:str}/codes", summary="Count a reward's codes")
    async def count_codes(self, key: FromPath[str], services: ServicesDep, principal: PrincipalDep) -> CodeCounts:
        """Codes available, issued and void in the reward's pool."""
        async with services.db.read() as session:
            row = await rewards_repo.reward_row(session, brand_id=principal.brand.id, key=key)
            counts = await rewards_repo.code_counts(session, reward_id=row.id)
        return CodeCounts(
            available=counts.get("available", 0), issued=counts.get("issued", 0), void=counts.get("void", 0)
        )

    @post("/{key:str}/codes", summary="Upload codes to a reward's pool", status_code=201)
    async def upload_codes(
        self,
        key: FromPath[str],
        request: Request[Any, Any, Any],
        services: ServicesDep,
        principal: PrincipalDep,
    ) -> CodePoolStatus:
        """Add codes: ``text/csv`` or JSON; answers how many were added, repeated, and are available now.

        CSV: the first column (a ``code`` header, blanks and repeats skipped). JSON: a list of codes,
        ``{"codes": [...]}``, or ``{"generate": 500}`` to fill the pool from the reward's pattern.
        """
        body = await request.body()
        if len(body) > MAX_CSV_BYTES:
            raise ValidationError("the upload is larger than 4 MiB", field="$")
        now = services.clock.now()
        brand_id = principal.brand.id
        media = request.headers.get("content-type", "").split(";")[0].strip().lower()
        async with services.db.write() as session:
            if media in ("text/csv", "text/plain"):
                return await rewards_service.import_codes(
                    session, brand_id=brand_id, reward_key=key, csv_text=body.decode("utf-8-sig"), now=now
                )
            data = _codes_json(body)
            if data.generate is not None:
                return await rewards_service.generate_codes(
                    session, brand_id=brand_id, reward_key=key, count=data.generate, now=now
                )
            csv_text = "\n".join(code.replace(",", "").strip() for code in data.codes)
            return await rewards_service.import_codes(
                session, brand_id=brand_id, reward_key=key, csv_text=csv_text, now=now
            )


def _codes_json(body: bytes) -> CodesIn:
    try:
        raw = msgspec.json.decode(body)
        return msgspec.convert({"codes": raw} if isinstance(raw, list) else raw, CodesIn)
    except msgspec.ValidationError as exc:
        raise ValidationError(f"codes: {exc}", field="$") from exc
    except msgspec.DecodeError as exc:
        raise ValidationError('send text/csv, a JSON list of codes, or {"generate": n}', field="$") from exc


class RedemptionsController(Controller):
    """Members redeem rewards; redemptions are used at the till or cancelled (points refunded)."""

    path = "/v1"
    tags = ("rewards",)
    dependencies = {"principal": Provide(provide_secret_principal)}  # noqa: RUF012

    @post("/members/{external_id:str}/redemptions", summary="Redeem a reward for a member", status_code=201)
    async def redeem(
        self,
        external_id: FromPath[str],
        data: JSONBody[RedemptionIn],
        request: Request[Any, Any, Any],
        services: ServicesDep,
        principal: PrincipalDep,
    ) -> Response[RedemptionOut]:
        """Spend the reward's cost, take one from its stock and assign a code, in one transaction.

        The idempotency key (body field or ``Idempotency-Key`` header) is required: a retry with the same key
        answers the first redemption with 200. Refusals are 409 problems (``insufficient-points``,
        ``out-of-stock``, ``redemption-limit-reached``, ``reward-not-redeemable``) and change nothing.
        """
        key = data.idempotency_key or request.headers.get("idempotency-key", "").strip()
        if not key or len(key) > 255:
            raise ValidationError("give an idempotency key (1–255 characters)", field="$.idempotency_key")
        brand = principal.brand
        async with services.db.write() as session:
            member = await members_repo.get_member(session, brand_id=brand.id, external_id=external_id)
            outcome = await rewards_service.redeem(
                session, brand, member=member, reward_key=data.reward, idempotency_key=key, now=services.clock.now(),
                segments=services.segments,
            )  # fmt: skip
        services.outbox.notify()
        return Response(redemption_out(outcome.redemption), status_code=201 if outcome.created else 200)

    @get("/members/{external_id:str}/redemptions", summary="A member's redemptions")
    async def member_redemptions(
        self,
        external_id: FromPath[str],
        services: ServicesDep,
        principal: PrincipalDep,
        limit: Annotated[int, QueryParameter(ge=1, le=200, description="Redemptions per page.")] = 50,
        before: Annotated[int | None, QueryParameter(ge=1, description="Cursor from `next_before`.")] = None,
    ) -> RedemptionPage:
        """The member's redemptions, newest first."""
        async with services.db.read() as session:
            member = await members_repo.get_member(session, brand_id=principal.brand.id, external_id=external_id)
            rows = await rewards_repo.list_redemptions(
                session, brand_id=principal.brand.id, member_id=member.id, limit=limit + 1, before=before
            )
        more = len(rows) > limit
        rows = rows[:limit]
        return RedemptionPage(redemptions=[r for _, r in rows], next_before=rows[-1][0] if more and rows else None)

    @get("/redemptions/{redemption_id:str}", summary="Read a redemption")
    async def read_redemption(
        self, redemption_id: FromPath[str], services: ServicesDep, principal: PrincipalDep
    ) -> RedemptionOut:
        """The redemption with its code and the links of its QR images."""
        async with services.db.read() as session:
            found = await rewards_repo.get_redemption(session, brand_id=principal.brand.id, public_id=redemption_id)
        return redemption_out(found)

    @get(
        "/redemptions/{redemption_id:str}/qr.svg",
        summary="The redemption's code as an SVG QR code",
        media_type="image/svg+xml",
    )
    async def qr_svg_image(
        self, redemption_id: FromPath[str], services: ServicesDep, principal: PrincipalDep
    ) -> Response[bytes]:
        """An SVG QR code of the code, for the till; 404 when the redemption has no code."""
        code = await _code_of(services, principal, redemption_id)
        return Response(qr_svg(code, title=code), media_type="image/svg+xml", headers={"Cache-Control": "no-store"})

    @get(
        "/redemptions/{redemption_id:str}/qr.png",
        summary="The redemption's code as a PNG QR code",
        media_type="image/png",
    )
    async def qr_png_image(
        self, redemption_id: FromPath[str], services: ServicesDep, principal: PrincipalDep
    ) -> Response[bytes]:
        """A PNG QR code of the code, for the till; 404 when the redemption has no code."""
        code = await _code_of(services, principal, redemption_id)
        return Response(qr_png(code), media_type="image/png", headers={"Cache-Control": "no-store"})

    @post("/redemptions/{redemption_id:str}/use", summary="Mark a redemption used", status_code=200)
    async def use(self, redemption_id: FromPath[str], services: ServicesDep, principal: PrincipalDep) -> RedemptionOut:
        """At the till: an ``issued`` redemption becomes ``used``; any other state answers 409."""
        async with services.db.write() as session:
            outcome = await rewards_service.use(
                session, principal.brand, redemption_id=redemption_id, now=services.clock.now()
            )
        services.outbox.notify()
        return redemption_out(outcome.redemption)

    @post(
        "/redemptions/{redemption_id:str}/cancel", summary="Cancel a redemption and refund its points", status_code=200
    )
    async def cancel(
        self,
        redemption_id: FromPath[str],
        services: ServicesDep,
        principal: PrincipalDep,
        data: JSONBody[RedemptionAction | None] = None,
    ) -> RedemptionOut:
        """Refund the points, give back the stock and a pool code; only an ``issued`` one (else 409).

        The points come back as lots keeping their expiry (already-expired ones arrive expired).
        """
        async with services.db.write() as session:
            outcome = await rewards_service.cancel(
                session,
                principal.brand,
                redemption_id=redemption_id,
                now=services.clock.now(),
                reason=data.reason if data is not None else "",
            )
        services.outbox.notify()
        return redemption_out(outcome.redemption)

    @get("/liability", summary="The program's points liability")
    async def program_liability(
        self,
        services: ServicesDep,
        principal: PrincipalDep,
        start: Annotated[
            datetime | None, QueryParameter(name="from", description="Start of the period (default: 30 days ago).")
        ] = None,
        end: Annotated[
            datetime | None, QueryParameter(name="to", description="End of the period (default: the end of today).")
        ] = None,
    ) -> Liability:
        """Outstanding points now, expected expiries per month, and the flows of ``[from, to)``.

        Outstanding available and pending points are exact now; over the period: points earned, redeemed,
        expired and cancelled, with the redemption rate.
        """
        now = services.clock.now()
        tz = principal.brand.tz
        end = _aware(end) or local_midnight(now.astimezone(tz).date() + timedelta(days=1), tz)
        start = _aware(start) or end - timedelta(days=30)
        if end <= start:
            raise ValidationError("`to` must come after `from`", field="to")
        async with services.db.read() as session:
            return await liability(session, principal.brand, start=start, end=end, now=now)


def _aware(value: datetime | None) -> datetime | None:
    if value is None or value.tzinfo is not None:
        return value
    raise ValidationError("give dates with a timezone (e.g. 2026-12-01T00:00:00Z)", field="from")


async def _code_of(services: ServicesDep, principal: PrincipalDep, redemption_id: str) -> str:
    async with services.db.read() as session:
        found = await rewards_repo.get_redemption(session, brand_id=principal.brand.id, public_id=redemption_id)
    if found.code is None:
        raise NotFound("this redemption has no code", field="redemption")
    return found.code


routes = [RewardsController, RedemptionsController]
