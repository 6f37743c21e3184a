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
from challenges.config import (
    CampaignSpec,
    ChallengeSpec,
    build_campaign,
    build_challenge,
    decode,
    diff_fields,
    parse_when,
    to_plain,
)
from challenges.enrolments import enrol
from challenges.models import Campaign, CampaignState, CampaignStatus
from challenges.rules import campaign_state
from engine import members as members_repo
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
    tz = brand.tz
    stored_campaigns = {
        c.key: c for c in await definitions.stored_campaigns(session, brand_id=brand.id, include_archived=True)
    }
    stored_challenges = {
        c.key: c for c in await definitions.stored_challenges(session, brand_id=brand.id, include_archived=True)
    }
    campaign_key_of = {c.id: c.key for c in stored_campaigns.values()}

    # Validate everything, and the program that would result, before writing anything.
    compiled: dict[str, Campaign] = {}
    for index, campaign_spec in enumerate(campaigns or []):
        compiled[campaign_spec.key] = build_campaign(campaign_spec, tz=tz, path=f"$.campaigns[{index}]")
    final_campaigns = set(compiled)
    if campaigns is None or not replace:
        final_campaigns |= {k for k, c in stored_campaigns.items() if c.archived_at is None}
    for index, spec in enumerate(challenges or []):
        campaign = compiled.get(spec.campaign)
        if campaign is None and spec.campaign in final_campaigns:
            stored = stored_campaigns[spec.campaign]
            campaign = build_campaign(decode(stored.spec, CampaignSpec, path="$"), tz=tz)
        if campaign is None:
            raise DefinitionError(
                f"challenge {spec.key!r} names campaign {spec.campaign!r}, which the program does not have",
                field=f"$.challenges[{index}].campaign",
            )
        build_challenge(spec, campaign=campaign, tz=tz, path=f"$.challenges[{index}]")
    named = {spec.key for spec in challenges or []}
    if challenges is None or not replace:
        for key, kept in stored_challenges.items():
            if kept.archived_at is None and key not in named:
                campaign_key = campaign_key_of[kept.campaign_id]
                if campaign_key not in final_campaigns:
                    raise DefinitionError(
                        f"campaign {campaign_key!r} would be removed, but challenge {key!r} still uses it",
                        field="$.campaigns",
                    )

    changes: list[str] = []
    campaign_ids = {k: c.id for k, c in stored_campaigns.items()}
    for campaign_spec in campaigns or []:
        plain = to_plain(campaign_spec)
        existing = stored_campaigns.get(campaign_spec.key)
        if existing is None:
            campaign_ids[campaign_spec.key] = await definitions.insert_campaign(
                session, brand_id=brand.id, key=campaign_spec.key, spec=plain, now=now
            )
            changes.append(f"campaign {campaign_spec.key}: created")
        elif existing.archived_at is not None or existing.spec != plain:
            await definitions.update_campaign(session, brand_id=brand.id, campaign_id=existing.id, spec=plain, now=now)
            restored = ["restored"] if existing.archived_at is not None else []
            changes.append(f"campaign {campaign_spec.key}: " + ", ".join(restored + diff_fields(existing.spec, plain)))
    if campaigns is not None and replace:
        gone = [c for k, c in stored_campaigns.items() if c.archived_at is None and k not in compiled]
        await definitions.archive_campaigns(session, brand_id=brand.id, ids=[c.id for c in gone], now=now)
        changes.extend(f"campaign {c.key}: archived (opt-ins kept)" for c in gone)

    updated: list[tuple[str, list[str]]] = []
    next_position = max((c.position for c in stored_challenges.values()), default=-1) + 1
    for index, spec in enumerate(challenges or []):
        plain = to_plain(spec)
        row = stored_challenges.get(spec.key)
        position = index if replace else (row.position if row is not None else next_position)
        if row is None:
            await definitions.insert_challenge(
                session,
                brand_id=brand.id,
                key=spec.key,
                campaign_id=campaign_ids[spec.campaign],
                spec=plain,
                position=position,
                now=now,
            )
            next_position += 1
            note = f", backfill from {spec.backfill_from}" if spec.backfill_from else ""
            changes.append(f"challenge {spec.key}: created{note}")
            continue
        if row.archived_at is None and row.spec == plain and row.position == position:
            continue
        await definitions.update_challenge(
            session,
            brand_id=brand.id,
            challenge_id=row.id,
            campaign_id=campaign_ids[spec.campaign],
            spec=plain,
            position=position,
            now=now,
        )
        if row.spec == plain and row.archived_at is None:
            continue  # only its place in the program moved
        notes = ["restored"] if row.archived_at is not None else []
        notes += diff_fields(row.spec, plain)
        if row.spec.get("rule", {}).get("type") != plain["rule"]["type"]:
            notes.append("progress restarts (new rule type)")
        if spec.backfill_from and (
            row.backfilled_from is None or parse_when(spec.backfill_from, tz, field="") != row.backfilled_from
        ):
            notes.append(f"backfill from {spec.backfill_from}")
        updated.append((spec.key, notes))
    for key, notes in updated:
        restart = any(n.startswith("progress restarts") for n in notes)
        changes.append(f"challenge {key}: {', '.join(notes)}{'' if restart else ' (progress kept)'}")
    if challenges is not None and replace:
        gone_challenges = [c for k, c in stored_challenges.items() if c.archived_at is None and k not in named]
        await definitions.archive_challenges(session, brand_id=brand.id, ids=[c.id for c in gone_challenges], now=now)
        changes.extend(f"challenge {c.key}: archived (progress kept)" for c in gone_challenges)
    if changes:
        await bump_config_version(session, brand.id)
    return changes


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
    """
    for challenge in await definitions.stored_challenges(session, brand_id=brand.id):
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
        found = await members_repo.ensure_and_lock(
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
