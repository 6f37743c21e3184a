"""Referrals API: the policy, a member's referral link, the funnel, the review queue (secret key)."""

from __future__ import annotations

import msgspec
from litestar import Controller, get, post, put
from litestar.di import Provide
from litestar.params import FromPath, JSONBody

from engine import members as members_repo
from engine.errors import NotFound
from engine.tenants import KeyCache
from referrals import service as referrals
from referrals.service import Funnel, Referral, ReferralPolicy
from web.deps import PrincipalDep, ServicesDep, provide_secret_principal
from web.openapi import problems
from web.pages.join import join_url
from web.schemas.referrals import ReferralLinkOut, ReferralPolicyIn, ReviewIn


class ReferralsController(Controller):
    """The brand's referral program."""

    path = "/v1/referrals"
    tags = ("referrals",)
    dependencies = {"principal": Provide(provide_secret_principal)}  # noqa: RUF012

    @put("/policy", summary="Set the referral policy")
    async def set_policy(
        self, data: JSONBody[ReferralPolicyIn], services: ServicesDep, principal: PrincipalDep
    ) -> ReferralPolicyIn:
        """What qualifies a referred friend (event type and filter) and the points both get; the monthly cap."""
        policy = referrals.check_policy(msgspec.to_builtins(data))
        async with services.db.write() as session:
            await referrals.save_policy(session, brand_id=principal.brand.id, policy=policy)
        KeyCache.clear_all()  # the brand (and its settings) is cached with its keys
        return data

    @get("/policy", summary="Read the referral policy", responses=problems(404))
    async def get_policy(self, principal: PrincipalDep) -> ReferralPolicy:
        """The policy in force (404 when referrals are off)."""
        policy = referrals.policy_of(principal.brand.settings)
        if policy is None:
            raise NotFound("referrals are off for this brand", field="policy")
        return policy

    @get("/members/{external_id:str}", summary="A member's referral code and link")
    async def link(self, external_id: FromPath[str], services: ServicesDep, principal: PrincipalDep) -> ReferralLinkOut:
        """The code (created on first use) and the join link that carries it."""
        brand = principal.brand
        async with services.db.write() as session:
            member = await members_repo.get_member(session, brand_id=brand.id, external_id=external_id)
            code = await referrals.code_for(session, brand_id=brand.id, member_id=member.id, now=services.clock.now())
        return ReferralLinkOut(member=member.external_id, code=code, url=join_url(services, brand, ref=code))

    @get("/funnel", summary="The referral funnel")
    async def funnel(self, services: ServicesDep, principal: PrincipalDep) -> Funnel:
        """Invited (members with a link), joined, qualified, paid, held, rejected."""
        async with services.db.read() as session:
            return await referrals.funnel(session, brand_id=principal.brand.id)

    @get("/held", summary="Referrals held for review")
    async def held(self, services: ServicesDep, principal: PrincipalDep) -> list[Referral]:
        """Suspicious referrals waiting for a decision, oldest first."""
        async with services.db.read() as session:
            return await referrals.held(session, brand_id=principal.brand.id)

    @post("/held/{referral_id:int}", summary="Approve or reject a held referral", status_code=200)
    async def review(
        self, referral_id: FromPath[int], data: JSONBody[ReviewIn], services: ServicesDep, principal: PrincipalDep
    ) -> dict[str, bool]:
        """Approve (both are paid, exactly once) or reject; 404 when it is not held (any more)."""
        async with services.db.write() as session:
            done = await referrals.review(
                session, principal.brand, referral_id=referral_id, approve=data.approve, now=services.clock.now()
            )
        if not done:
            raise NotFound("no held referral with this id", field="referral_id")
        return {"approved": data.approve}
