"""Badges over HTTP: definitions, shelves, grants and revocations (secret key); Open Badges and art (public).

The public URLs need no key: verifiers, wallets and ``<img>`` tags fetch them. The package's processor and
the award service other domains call are wired in ``web/wiring.py``; the demo badges are in ``web/demo``.
"""

from __future__ import annotations

import hashlib
from typing import Annotated, Any

import msgspec
from litestar import Controller, Response, delete, get, post, put
from litestar.di import Provide
from litestar.openapi import ResponseSpec
from litestar.params import FromPath, HeaderParameter, JSONBody, QueryParameter

from badges import config as badges_config
from badges import openbadges as ob
from badges import repository as badges_repo
from badges import service as badges_service
from badges.art import MAX_PNG, MIN_PNG, SIZE, badge_image
from badges.criteria import narrative
from badges.models import (
    BadgeDef,
    BadgeSpec,
    MemberBadges,
    badge_to_spec,
    build_badge,
)
from badges.openbadges import Urls
from badges.service import award_out
from engine import audit
from engine import members as members_repo
from engine.errors import NotFound, ValidationError
from engine.ids import MemberId
from engine.tenants import Brand, get_brand
from web.deps import PrincipalDep, Services, ServicesDep, provide_secret_principal
from web.openapi import answers
from web.schemas.badges import BadgeOut, GrantIn, GrantOut, RevokeIn, RevokeOut

LD_JSON = "application/ld+json"
_SVG_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; img-src data:; sandbox",
    "X-Content-Type-Options": "nosniff",
}
IfNoneMatch = Annotated[str | None, HeaderParameter(name="if-none-match", required=False)]
LevelQuery = Annotated[str, QueryParameter(max_length=32, description="Level key (generated art per level).")]
#: What the public documents and images answer, for the OpenAPI document.
_LD_DOC = answers(200, dict[str, Any], "A JSON-LD document", media_type=LD_JSON)
_LD_REVOKED = answers(410, dict[str, Any], "The award was revoked: `revoked: true` and the reason", media_type=LD_JSON)
_NOT_MODIFIED = {304: ResponseSpec(data_container=None, description="Not modified (`If-None-Match`)")}


def _image(media_type: str) -> dict[int, ResponseSpec]:
    return {**answers(200, bytes, "The image", media_type=media_type), **_NOT_MODIFIED}


def _urls(services: Services) -> Urls:
    return Urls(services.settings.public_url)


def _badge_out(badge: BadgeDef, *, brand: Brand, urls: Urls, holders: int, members: int) -> BadgeOut:
    first = badge.levels[0].key if badge.levels else ""
    spec = badge_to_spec(badge)
    return BadgeOut(
        key=badge.key,
        name=badge.name,
        description=badge.description,
        criteria=narrative(badge),
        category=badge.category,
        icon=badge.icon,
        color=badge.color,
        hidden=badge.hidden,
        repeatable=badge.repeatable,
        levels=spec.levels,
        rule=spec.rule,
        points=badge.points,
        active=badge.active,
        uploaded_image=badge.has_image,
        image=urls.image(brand.slug, badge.key, first, ext="svg"),
        image_png=urls.image(brand.slug, badge.key, first),
        badge_class=urls.badge_class_v2(brand.slug, badge.key),
        holders=holders,
        rarity=round(100.0 * holders / members, 1) if members else 0.0,
    )


class BadgesController(Controller):
    """Badge definitions of the brand (secret key)."""

    path = "/v1/badges"
    tags = ("badges",)
    dependencies = {"principal": Provide(provide_secret_principal)}  # noqa: RUF012

    @get("/", summary="List badges")
    async def list_badges(self, services: ServicesDep, principal: PrincipalDep) -> list[BadgeOut]:
        """Every badge of the brand, with holders and rarity."""
        brand = principal.brand
        async with services.db.read() as session:
            badges = await badges_repo.load_badges(session, brand.id)
            holders, members = await badges_repo.holders(session, brand_id=brand.id)
        urls = _urls(services)
        return [_badge_out(b, brand=brand, urls=urls, holders=holders.get(b.key, 0), members=members) for b in badges]

    @get("/{key:str}", summary="Get a badge")
    async def get_badge(self, key: FromPath[str], services: ServicesDep, principal: PrincipalDep) -> BadgeOut:
        """One badge; 404 when the brand has none called ``key``."""
        brand = principal.brand
        async with services.db.read() as session:
            badge = await badges_repo.get_badge(session, brand_id=brand.id, key=key)
            holders, members = await badges_repo.holders(session, brand_id=brand.id)
        return _badge_out(badge, brand=brand, urls=_urls(services), holders=holders.get(key, 0), members=members)

    @put("/{key:str}", summary="Create or replace a badge", responses=answers(201, BadgeOut, "The badge was created"))
    async def put_badge(
        self, key: FromPath[str], data: JSONBody[BadgeSpec], services: ServicesDep, principal: PrincipalDep
    ) -> Response[BadgeOut]:
        """Validated before it is stored (a mistake answers 422 naming its path; nothing changes). 201 when new."""
        if data.key != key:
            raise ValidationError(f"the body's key {data.key!r} differs from the path's {key!r}", field="$.key")
        badge = build_badge(data, path="$")
        brand = principal.brand
        async with services.db.write() as session:
            outcome = await badges_config.save_badge(session, brand_id=brand.id, badge=badge, now=services.clock.now())
        async with services.db.read() as session:
            stored = await badges_repo.get_badge(session, brand_id=brand.id, key=key)
            holders, members = await badges_repo.holders(session, brand_id=brand.id)
        out = _badge_out(stored, brand=brand, urls=_urls(services), holders=holders.get(key, 0), members=members)
        return Response(out, status_code=201 if outcome == "created" else 200)

    @delete("/{key:str}", summary="Delete a badge nobody holds")
    async def delete_badge(self, key: FromPath[str], services: ServicesDep, principal: PrincipalDep) -> None:
        """409 when it was ever awarded (its public assertions refer to it): set ``active: false`` instead."""
        async with services.db.write() as session:
            await badges_config.remove_badge(session, brand_id=principal.brand.id, key=key)


class MemberBadgesController(Controller):
    """A member's badges: the shelf, manual grants and revocations (secret key)."""

    path = "/v1/members"
    tags = ("badges",)
    dependencies = {"principal": Provide(provide_secret_principal)}  # noqa: RUF012

    @get("/{external_id:str}/badges", summary="A member's badges")
    async def shelf(self, external_id: FromPath[str], services: ServicesDep, principal: PrincipalDep) -> MemberBadges:
        """Earned (dates, level, ×N, award links), in progress (to the next level), locked unless hidden.

        Each badge carries its rarity: the percent of the brand's members holding it.
        """
        brand = principal.brand
        async with services.db.read() as session:
            member = await members_repo.get_member(session, brand_id=brand.id, external_id=external_id)
            return await badges_service.member_shelf(
                session,
                brand=brand,
                member_id=member.id,
                external_id=member.external_id,
                urls=_urls(services),
                locale=member.locale,
            )

    @post(
        "/{external_id:str}/badges/{key:str}/grant",
        summary="Grant a badge with a reason",
        status_code=201,
        responses=answers(200, GrantOut, "The member holds the badge already"),
    )
    async def grant(
        self,
        external_id: FromPath[str],
        key: FromPath[str],
        data: JSONBody[GrantIn],
        services: ServicesDep,
        principal: PrincipalDep,
    ) -> Response[GrantOut]:
        """201 with the new (or reinstated) award; 200 with the existing one when the member holds it already."""
        brand = principal.brand
        now = services.clock.now()
        urls = _urls(services)
        async with services.db.write() as session:
            member = await members_repo.get_member(session, brand_id=brand.id, external_id=external_id)
            outcome = await badges_service.grant(
                session,
                brand=brand,
                member_id=member.id,
                badge_key=key,
                reason=data.reason,
                source="manual",
                source_ref=data.ref,
                now=now,
                urls=urls,
                level=data.level,
            )
            if outcome.created or outcome.reinstated:
                await audit.record(
                    session, brand_id=brand.id, actor=audit.key_actor(principal.prefix), action="badge.granted",
                    at=now, target=f"member #{member.id}", details={"badge": key, "reason": data.reason},
                )  # fmt: skip
        out = GrantOut(
            awarded=outcome.created,
            reinstated=outcome.reinstated,
            award=award_out(outcome.award, urls) if outcome.award is not None else None,
        )
        return Response(out, status_code=201 if outcome.created or outcome.reinstated else 200)

    @post("/{external_id:str}/badges/{key:str}/revoke", summary="Revoke a badge with a reason", status_code=200)
    async def revoke(
        self,
        external_id: FromPath[str],
        key: FromPath[str],
        data: JSONBody[RevokeIn],
        services: ServicesDep,
        principal: PrincipalDep,
    ) -> RevokeOut:
        """Revoke the member's live awards of the badge (or one level or award).

        Their public assertions then answer 410 with ``revoked: true``. 404 when nothing live is left to revoke.
        """
        brand = principal.brand
        urls = _urls(services)
        async with services.db.write() as session:
            member = await members_repo.get_member(session, brand_id=brand.id, external_id=external_id)
            revoked = await badges_service.revoke(
                session,
                brand=brand,
                member_id=MemberId(member.id),
                badge_key=key,
                reason=data.reason,
                now=services.clock.now(),
                urls=urls,
                level=data.level,
                award=data.award,
            )
            await audit.record(
                session, brand_id=brand.id, actor=audit.key_actor(principal.prefix), action="badge.revoked",
                at=services.clock.now(), target=f"member #{member.id}",
                details={"badge": key, "reason": data.reason, "awards": len(revoked)},
            )  # fmt: skip
        return RevokeOut(revoked=[award_out(a, urls) for a in revoked])


def _ld(doc: dict[str, object], *, status: int = 200) -> Response[bytes]:
    return Response(
        content=msgspec.json.encode(doc),
        media_type=LD_JSON,
        status_code=status,
        headers={"Cache-Control": "no-cache"},
    )


def _cached(content: bytes, media_type: str, if_none_match: str | None, *, download: str = "") -> Response[bytes]:
    etag = '"' + hashlib.sha256(content).hexdigest()[:32] + '"'
    headers = {"ETag": etag, "Cache-Control": "public, max-age=600"}
    if media_type == "image/svg+xml":
        headers.update(_SVG_HEADERS)
    if download:
        headers["Content-Disposition"] = f'attachment; filename="{download}"'
    if if_none_match is not None and (
        if_none_match.strip() == "*" or etag in [t.strip() for t in if_none_match.split(",")]
    ):
        return Response(content=b"", status_code=304, headers=headers)
    return Response(content=content, media_type=media_type, headers=headers)


async def _public_badge(
    services: Services, slug: str, key: str, level: str, *, with_image: bool = False
) -> tuple[Brand, BadgeDef]:
    async with services.db.read() as session:
        brand = await get_brand(session, slug)
        badge = await badges_repo.get_badge(session, brand_id=brand.id, key=key, with_image=with_image)
        if not await badges_repo.badge_is_public(session, brand_id=brand.id, badge=badge):
            raise NotFound(f"no badge {key!r}", field="key")
    if level and badge.level(level) is None:
        raise NotFound(f"badge {key!r} has no level {level!r}", field="level")
    return brand, badge


def _issuer(services: Services, brand: Brand) -> ob.IssuerInfo:
    return ob.issuer_info(
        slug=brand.slug, name=brand.name, settings=brand.settings, origin=services.settings.public_url
    )


class OpenBadgesController(Controller):
    """Public Open Badges 2.0 (hosted) and 3.0 documents of the brands' awards; no key needed."""

    path = "/ob"
    tags = ("open badges",)

    @get("/v2/issuers/{brand:str}", summary="OB 2.0 issuer profile", responses=_LD_DOC)
    async def issuer_v2(self, brand: FromPath[str], services: ServicesDep) -> Response[bytes]:
        """The brand as an Open Badges issuer (JSON-LD)."""
        async with services.db.read() as session:
            found = await get_brand(session, brand)
        return _ld(ob.issuer_v2(_urls(services), _issuer(services, found)))

    @get("/v2/badgeclasses/{brand:str}/{key:str}", summary="OB 2.0 BadgeClass", responses=_LD_DOC)
    async def badge_class_v2(self, brand: FromPath[str], key: FromPath[str], services: ServicesDep) -> Response[bytes]:
        """A badge as an Open Badges BadgeClass (JSON-LD)."""
        found, badge = await _public_badge(services, brand, key, "")
        return _ld(ob.badge_class_v2(_urls(services), _issuer(services, found), badge))

    @get(
        "/v2/badgeclasses/{brand:str}/{key:str}/{level:str}",
        summary="OB 2.0 BadgeClass of one level",
        responses=_LD_DOC,
    )
    async def level_class_v2(
        self, brand: FromPath[str], key: FromPath[str], level: FromPath[str], services: ServicesDep
    ) -> Response[bytes]:
        """One level of a badge as an Open Badges BadgeClass (JSON-LD)."""
        found, badge = await _public_badge(services, brand, key, level)
        return _ld(ob.badge_class_v2(_urls(services), _issuer(services, found), badge, badge.level(level)))

    @get("/v2/assertions/{uid:str}", summary="OB 2.0 hosted assertion", responses={**_LD_DOC, **_LD_REVOKED})
    async def assertion_v2(self, uid: FromPath[str], services: ServicesDep) -> Response[bytes]:
        """The hosted assertion of an award; a revoked award answers 410 with ``revoked: true`` and the reason."""
        async with services.db.read() as session:
            hosted = await badges_service.hosted_award(session, uid, origin=services.settings.public_url)
        doc = ob.assertion_v2(_urls(services), hosted.issuer, hosted.badge, hosted.award)
        return _ld(doc, status=410 if hosted.award.revoked else 200)

    @get(
        "/v2/assertions/{uid:str}/baked.png",
        summary="Baked PNG of an award",
        responses={**_image("image/png"), **_LD_REVOKED},
    )
    async def baked_png(
        self, uid: FromPath[str], services: ServicesDep, if_none_match: IfNoneMatch = None
    ) -> Response[bytes]:
        """The badge image with the assertion in an ``iTXt`` chunk ``openbadges``; 410 JSON when revoked."""
        return await _baked(services, uid, "png", if_none_match)

    @get(
        "/v2/assertions/{uid:str}/baked.svg",
        summary="Baked SVG of an award",
        responses={**_image("image/svg+xml"), **_LD_REVOKED},
    )
    async def baked_svg(
        self, uid: FromPath[str], services: ServicesDep, if_none_match: IfNoneMatch = None
    ) -> Response[bytes]:
        """The badge image with an ``<openbadges:assertion>`` element; 410 JSON when revoked."""
        return await _baked(services, uid, "svg", if_none_match)

    @get("/v3/issuers/{brand:str}", summary="OB 3.0 issuer profile", responses=_LD_DOC)
    async def issuer_v3(self, brand: FromPath[str], services: ServicesDep) -> Response[bytes]:
        """The brand as an Open Badges 3.0 Profile."""
        async with services.db.read() as session:
            found = await get_brand(session, brand)
        doc = {"@context": [ob.VC2_CONTEXT, ob.OB3_CONTEXT], **ob.profile_v3(_urls(services), _issuer(services, found))}
        return _ld(doc)

    @get("/v3/achievements/{brand:str}/{key:str}", summary="OB 3.0 achievement", responses=_LD_DOC)
    async def achievement_v3(self, brand: FromPath[str], key: FromPath[str], services: ServicesDep) -> Response[bytes]:
        """A badge as an Open Badges 3.0 Achievement."""
        found, badge = await _public_badge(services, brand, key, "")
        doc = ob.achievement_v3(_urls(services), _issuer(services, found), badge)
        return _ld({"@context": [ob.VC2_CONTEXT, ob.OB3_CONTEXT], **doc})

    @get(
        "/v3/achievements/{brand:str}/{key:str}/{level:str}",
        summary="OB 3.0 achievement of one level",
        responses=_LD_DOC,
    )
    async def level_achievement_v3(
        self, brand: FromPath[str], key: FromPath[str], level: FromPath[str], services: ServicesDep
    ) -> Response[bytes]:
        """One level of a badge as an Open Badges 3.0 Achievement."""
        found, badge = await _public_badge(services, brand, key, level)
        doc = ob.achievement_v3(_urls(services), _issuer(services, found), badge, badge.level(level))
        return _ld({"@context": [ob.VC2_CONTEXT, ob.OB3_CONTEXT], **doc})

    @get("/v3/credentials/{uid:str}", summary="OB 3.0 OpenBadgeCredential", responses={**_LD_DOC, **_LD_REVOKED})
    async def credential_v3(self, uid: FromPath[str], services: ServicesDep) -> Response[bytes]:
        """The award as an (unsigned) OpenBadgeCredential; a revoked award answers 410 with ``revoked: true``."""
        async with services.db.read() as session:
            hosted = await badges_service.hosted_award(session, uid, origin=services.settings.public_url)
        urls = _urls(services)
        if hosted.award.revoked:
            return _ld(ob.revoked_credential_v3(urls, hosted.award), status=410)
        subject = ob.subject_id(services.settings.secret, brand_id=hosted.brand.id, member_id=hosted.award.member_id)
        return _ld(ob.credential_v3(urls, hosted.issuer, hosted.badge, hosted.award, subject=subject))


async def _baked(services: Services, uid: str, kind: str, if_none_match: str | None) -> Response[bytes]:
    async with services.db.read() as session:
        hosted = await badges_service.hosted_award(session, uid, origin=services.settings.public_url, with_image=True)
    urls = _urls(services)
    assertion = ob.assertion_v2(urls, hosted.issuer, hosted.badge, hosted.award)
    if hosted.award.revoked:
        return _ld(assertion, status=410)
    image = badge_image(
        hosted.badge,
        brand_slug=hosted.brand.slug,
        brand_settings=hosted.brand.settings,
        level=hosted.award.level,
        kind=kind,
    )
    text = ob.to_json(assertion)
    name = f"{hosted.badge.key}{'-' + hosted.award.level if hosted.award.level else ''}-{uid[:8]}.{kind}"
    if kind == "png":
        return _cached(ob.bake_png(image, text), "image/png", if_none_match, download=name)
    baked = ob.bake_svg(image.decode(), assertion=text, verify=urls.assertion_v2(uid))
    return _cached(baked.encode(), "image/svg+xml", if_none_match, download=name)


class BadgeArtController(Controller):
    """Badge images, uploaded or generated (public, cacheable)."""

    path = "/art"
    tags = ("badges",)

    @get("/{brand:str}/{key:str}/image.svg", summary="Badge image (SVG)", responses=_image("image/svg+xml"))
    async def svg(
        self,
        brand: FromPath[str],
        key: FromPath[str],
        services: ServicesDep,
        level: LevelQuery = "",
        if_none_match: IfNoneMatch = None,
    ) -> Response[bytes]:
        """The uploaded SVG, or generated art (shape and ribbon by level, the brand's colour, icon or initials)."""
        found, badge = await _public_badge(services, brand, key, level, with_image=True)
        content = badge_image(badge, brand_slug=found.slug, brand_settings=found.settings, level=level, kind="svg")
        return _cached(content, "image/svg+xml", if_none_match)

    @get("/{brand:str}/{key:str}/image.png", summary="Badge image (PNG)", responses=_image("image/png"))
    async def png(
        self,
        brand: FromPath[str],
        key: FromPath[str],
        services: ServicesDep,
        level: LevelQuery = "",
        size: Annotated[int, QueryParameter(ge=MIN_PNG, le=MAX_PNG, description="Pixels per side.")] = SIZE,
        if_none_match: IfNoneMatch = None,
    ) -> Response[bytes]:
        """The uploaded PNG, or the generated art rendered at ``size`` pixels."""
        found, badge = await _public_badge(services, brand, key, level, with_image=True)
        content = badge_image(
            badge, brand_slug=found.slug, brand_settings=found.settings, level=level, kind="png", size=size
        )
        return _cached(content, "image/png", if_none_match)


routes: list[Any] = [BadgesController, MemberBadgesController, OpenBadgesController, BadgeArtController]
