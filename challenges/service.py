"""Managing definitions: apply (whole sections or one resource), archive, pause, export; member opt-ins.

Every change runs inside the caller's transaction, is validated before anything is written, bumps the
brand's config version (so every worker's cache reloads) and returns human-readable changes. A changed
challenge keeps its row, so members' progress survives edits; a removed one is archived, never deleted.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

import msgspec

from challenges import definitions
from challenges.applying import Application
from challenges.config import (
    CampaignSpec,
    ChallengeSpec,
    build_campaign,
    decode,
)
from challenges.diffs import diff_fields
from challenges.enrolments import enrol
from challenges.models import CampaignState, CampaignStatus
from challenges.rules import campaign_state
from engine import member_locks
from engine.earning import EarningRuleSpec, rule_to_spec
from engine.earning import build_rule as build_earning_rule
from engine.errors import Conflict, DefinitionError, NotFound
from engine.predicates import matches as predicate_matches
from engine.rules_store import delete_earning_rules, earning_rule_specs, put_earning_rule
from engine.tenants import bump_config_version

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from engine.db import Database
    from engine.ids import BrandId
    from engine.tenants import Brand


class OptIn(msgspec.Struct, frozen=True, kw_only=True):
    """A member's opt-in to a campaign."""

    campaign: str
    member: str
    opted_in_at: datetime
    created: bool
    required: bool
    """Whether the campaign needs an opt-in at all (an automatic one counts every eligible member anyway)."""


async def apply_definitions(
    session: AsyncSession,
    *,
    brand: Brand,
    campaigns: list[CampaignSpec] | None,
    challenges: list[ChallengeSpec] | None,
    now: datetime,
    replace: bool = True,
) -> list[str]:
    """Bring the brand's campaigns and challenges to the given specs; returns what changed.

    A list that is ``None`` leaves that kind alone. With ``replace`` a given list is the whole set: what it
    does not name is archived (progress kept). Without it only the named resources are created or updated.

    Raises:
        DefinitionError: an invalid spec, a challenge naming an unknown campaign, or a removed campaign still
            used by a remaining challenge; nothing is written.
    """
    application = await Application.load(session, brand=brand, now=now, replace=replace)
    application.validate(campaigns, challenges)
    campaign_ids = await application.write_campaigns(campaigns)
    await application.write_challenges(challenges, campaign_ids)
    if application.changes:
        await bump_config_version(session, brand.id)
    return application.changes


async def export_definitions(
    session: AsyncSession, *, brand_id: BrandId
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The brand's live campaigns and challenges as plain specs, in program order."""
    campaigns = await definitions.stored_campaigns(session, brand_id=brand_id)
    challenges = await definitions.stored_challenges(session, brand_id=brand_id)
    return [dict(c.spec) for c in campaigns], [dict(c.spec) for c in challenges]


async def get_campaign_spec(session: AsyncSession, *, brand_id: BrandId, key: str) -> CampaignSpec:
    """One live campaign's spec.

    Raises:
        NotFound: no such campaign (or it is archived).
    """
    for campaign in await definitions.stored_campaigns(session, brand_id=brand_id):
        if campaign.key == key:
            return decode(campaign.spec, CampaignSpec, path="$")
    raise NotFound(f"no campaign {key!r}", field="key")


async def get_challenge_spec(session: AsyncSession, *, brand_id: BrandId, key: str) -> ChallengeSpec:
    """One live challenge's spec.

    Raises:
        NotFound: no such challenge (or it is archived).
    """
    for challenge in await definitions.stored_challenges(session, brand_id=brand_id):
        if challenge.key == key:
            return decode(challenge.spec, ChallengeSpec, path="$")
    raise NotFound(f"no challenge {key!r}", field="key")


async def archive_campaign(session: AsyncSession, *, brand: Brand, key: str, now: datetime) -> list[str]:
    """Archive one campaign.

    Raises:
        NotFound: no such campaign.
        Conflict: live challenges still belong to it.
    """
    await get_campaign_spec(session, brand_id=brand.id, key=key)
    users = [
        c.key
        for c in await definitions.stored_challenges(session, brand_id=brand.id)
        if decode(c.spec, ChallengeSpec, path="$").campaign == key
    ]
    if users:
        raise Conflict(f"campaign {key!r} still has challenges: {', '.join(users)}; remove them first", field="key")
    stored = {c.key: c for c in await definitions.stored_campaigns(session, brand_id=brand.id)}
    await definitions.archive_campaigns(session, brand_id=brand.id, ids=[stored[key].id], now=now)
    await bump_config_version(session, brand.id)
    return [f"campaign {key}: archived (opt-ins kept)"]


async def archive_challenge(session: AsyncSession, *, brand: Brand, key: str, now: datetime) -> list[str]:
    """Archive one challenge (members' progress is kept if it comes back).

    Raises:
        NotFound: no such challenge.
        Conflict: another live challenge requires it.
    """
    stored = await definitions.stored_challenges(session, brand_id=brand.id)
    dependants = [
        c.key
        for c in stored
        if (spec := decode(c.spec, ChallengeSpec, path="$")).requires and key in spec.requires.challenges
    ]
    if dependants:
        raise Conflict(f"challenge {key!r} is required by {', '.join(dependants)}; change them first", field="key")
    for challenge in stored:
        if challenge.key == key:
            await definitions.archive_challenges(session, brand_id=brand.id, ids=[challenge.id], now=now)
            await bump_config_version(session, brand.id)
            return [f"challenge {key}: archived (progress kept)"]
    raise NotFound(f"no challenge {key!r}", field="key")


async def set_campaign_status(
    session: AsyncSession, *, brand: Brand, key: str, status: CampaignStatus, now: datetime
) -> list[str]:
    """Pause, resume (``live``) or return a campaign to draft.

    Raises:
        NotFound: no such campaign.
    """
    spec = await get_campaign_spec(session, brand_id=brand.id, key=key)
    if spec.status == status:
        return []
    return await apply_definitions(
        session,
        brand=brand,
        campaigns=[msgspec.structs.replace(spec, status=status)],
        challenges=None,
        now=now,
        replace=False,
    )


async def opt_in(db: Database, *, brand: Brand, external_id: str, campaign_key: str, now: datetime) -> OptIn:
    """Opt a member in to a campaign (created on the spot if unknown); a repeat keeps the first time.

    Raises:
        NotFound: no such campaign, or it is a draft.
        Conflict: the campaign has ended, or the member is not eligible.
    """
    async with db.write() as session:
        stored = {c.key: c for c in await definitions.stored_campaigns(session, brand_id=brand.id)}
        row = stored.get(campaign_key)
        campaign = build_campaign(decode(row.spec, CampaignSpec, path="$"), tz=brand.tz) if row else None
        if row is None or campaign is None or campaign.status == "draft":
            raise NotFound(f"no campaign {campaign_key!r}", field="campaign")
        if campaign_state(campaign, now) is CampaignState.ENDED:
            raise Conflict(f"campaign {campaign_key!r} has ended", field="campaign")
        found = await member_locks.ensure_and_lock(
            session, db=db, brand_id=brand.id, external_ids=[external_id], now=now
        )
        member = found[external_id]
        if not predicate_matches(campaign.eligibility, properties={}, member=member.predicate_view):
            raise Conflict(f"member {external_id!r} is not eligible for campaign {campaign_key!r}", field="member")
        opted_in_at, created = await enrol(session, brand_id=brand.id, campaign_id=row.id, member_id=member.id, now=now)
    return OptIn(
        campaign=campaign_key, member=external_id, opted_in_at=opted_in_at, created=created, required=campaign.opt_in
    )


def parse_earning_rules(data: Any, *, path: str = "$.earning_rules") -> list[EarningRuleSpec]:
    """Decode and validate the earning rules of a program document (keys unique, each builds).

    Raises:
        DefinitionError: the first mistake, by path.
    """
    specs = decode(data, list[EarningRuleSpec], path=path)
    seen: set[str] = set()
    for index, spec in enumerate(specs):
        if spec.key in seen:
            raise DefinitionError(f"earning rule {spec.key!r} appears twice", field=f"{path}[{index}].key")
        seen.add(spec.key)
        build_earning_rule(spec, path=f"{path}[{index}]")
    return specs


async def apply_earning_rules(
    session: AsyncSession, *, brand: Brand, specs: list[EarningRuleSpec], now: datetime
) -> list[str]:
    """Make the brand's earning rules exactly ``specs``; returns what changed (points earned stay)."""
    stored = await earning_rule_specs(session, brand_id=brand.id)
    changes: list[str] = []
    for index, spec in enumerate(specs):
        plain: dict[str, Any] = msgspec.to_builtins(
            rule_to_spec(build_earning_rule(spec, path=f"$.earning_rules[{index}]"))
        )
        before = stored.get(spec.key)
        if before == plain:
            continue
        await put_earning_rule(session, brand_id=brand.id, key=spec.key, spec=plain, exists=before is not None, now=now)
        if before is None:
            changes.append(f"earning rule {spec.key}: created")
        else:
            changes.append(f"earning rule {spec.key}: " + ", ".join(diff_fields(before, plain)))
    gone = sorted(set(stored) - {spec.key for spec in specs})
    await delete_earning_rules(session, brand_id=brand.id, keys=gone)
    changes.extend(f"earning rule {key}: deleted (points already earned stay)" for key in gone)
    if changes:
        await bump_config_version(session, brand.id)
    return changes


async def export_earning_rules(session: AsyncSession, *, brand_id: BrandId) -> list[dict[str, Any]]:
    """The brand's earning rules as plain specs, defaults left out."""
    return [
        without_defaults(decode(spec, EarningRuleSpec, path="$"))
        for spec in (await earning_rule_specs(session, brand_id=brand_id)).values()
    ]


def without_defaults(value: msgspec.Struct) -> dict[str, Any]:
    """The plain form of a struct without the fields that equal their defaults (for a concise export)."""
    result: dict[str, Any] = {}
    for field in msgspec.structs.fields(value):
        item = getattr(value, field.name)
        if field.default is not msgspec.NODEFAULT and item == field.default:
            continue
        if field.default_factory is not msgspec.NODEFAULT and item == field.default_factory():
            continue
        result[field.encode_name] = msgspec.to_builtins(item)
    return result
