"""Bringing a brand's stored campaigns and challenges to given specs: validate everything, then write.

:func:`challenges.service.apply_definitions` is the entry point; this module holds its steps, each small
enough to read on its own. Nothing is written until the whole resulting program is valid.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from challenges import definitions
from challenges.config import (
    CampaignSpec,
    ChallengeSpec,
    build_campaign,
    build_challenge,
    check_requirements,
    decode,
    parse_when,
)
from challenges.diffs import diff_fields, to_plain
from engine.errors import DefinitionError

if TYPE_CHECKING:
    from datetime import datetime
    from typing import Any

    from sqlalchemy.ext.asyncio import AsyncSession

    from challenges.definitions import StoredCampaign, StoredChallenge
    from challenges.models import Campaign
    from engine.tenants import Brand


@dataclass(slots=True)
class Application:
    """One application of campaign and challenge specs to a brand's stored definitions."""

    session: AsyncSession
    brand: Brand
    now: datetime
    replace: bool
    stored_campaigns: dict[str, StoredCampaign]
    stored_challenges: dict[str, StoredChallenge]
    changes: list[str] = field(default_factory=list)

    @classmethod
    async def load(cls, session: AsyncSession, *, brand: Brand, now: datetime, replace: bool) -> Application:
        """Read the brand's definitions (archived ones too: a re-used key restores its row)."""
        campaigns = await definitions.stored_campaigns(session, brand_id=brand.id, include_archived=True)
        challenges = await definitions.stored_challenges(session, brand_id=brand.id, include_archived=True)
        return cls(
            session=session,
            brand=brand,
            now=now,
            replace=replace,
            stored_campaigns={c.key: c for c in campaigns},
            stored_challenges={c.key: c for c in challenges},
        )

    # --- validation ---------------------------------------------------------------------------------

    def validate(self, campaigns: list[CampaignSpec] | None, challenges: list[ChallengeSpec] | None) -> None:
        """Check every spec and the program that would result (raises :class:`DefinitionError`)."""
        tz = self.brand.tz
        compiled = {
            spec.key: build_campaign(spec, tz=tz, path=f"$.campaigns[{index}]")
            for index, spec in enumerate(campaigns or [])
        }
        final_campaigns = set(compiled)
        if campaigns is None or not self.replace:
            final_campaigns |= {k for k, c in self.stored_campaigns.items() if c.archived_at is None}
        for index, spec in enumerate(challenges or []):
            campaign = self._campaign_for(spec, index, compiled, final_campaigns)
            build_challenge(spec, campaign=campaign, tz=tz, path=f"$.challenges[{index}]")
        if challenges is None or not self.replace:
            self._check_kept_challenges({spec.key for spec in challenges or []}, final_campaigns)
        self._check_requirements(challenges)

    def _check_requirements(self, challenges: list[ChallengeSpec] | None) -> None:
        """The prerequisites of the program that would result: every required challenge kept, no cycle."""
        given = [(spec, f"$.challenges[{index}]") for index, spec in enumerate(challenges or [])]
        named = {spec.key for spec, _path in given}
        kept: list[tuple[ChallengeSpec, str]] = []
        if challenges is None or not self.replace:
            kept = [
                (decode(row.spec, ChallengeSpec, path="$"), f"$.stored[{key!r}]")
                for key, row in self.stored_challenges.items()
                if row.archived_at is None and key not in named
            ]
        check_requirements([*given, *kept])

    def _campaign_for(
        self, spec: ChallengeSpec, index: int, compiled: dict[str, Campaign], final_campaigns: set[str]
    ) -> Campaign:
        campaign = compiled.get(spec.campaign)
        if campaign is None and spec.campaign in final_campaigns:
            stored = self.stored_campaigns[spec.campaign]
            campaign = build_campaign(decode(stored.spec, CampaignSpec, path="$"), tz=self.brand.tz)
        if campaign is None:
            raise DefinitionError(
                f"challenge {spec.key!r} names campaign {spec.campaign!r}, which the program does not have",
                field=f"$.challenges[{index}].campaign",
            )
        return campaign

    def _check_kept_challenges(self, named: set[str], final_campaigns: set[str]) -> None:
        campaign_key_of = {c.id: c.key for c in self.stored_campaigns.values()}
        for key, kept in self.stored_challenges.items():
            if kept.archived_at is not None or key in named:
                continue
            campaign_key = campaign_key_of[kept.campaign_id]
            if campaign_key not in final_campaigns:
                raise DefinitionError(
                    f"campaign {campaign_key!r} would be removed, but challenge {key!r} still uses it",
                    field="$.campaigns",
                )

    # --- campaigns ----------------------------------------------------------------------------------

    async def write_campaigns(self, campaigns: list[CampaignSpec] | None) -> dict[str, int]:
        """Create, update and (when replacing) archive campaigns; returns every campaign's id by key."""
        session, brand_id, now = self.session, self.brand.id, self.now
        campaign_ids = {k: c.id for k, c in self.stored_campaigns.items()}
        for spec in campaigns or []:
            plain = to_plain(spec)
            existing = self.stored_campaigns.get(spec.key)
            if existing is None:
                campaign_ids[spec.key] = await definitions.insert_campaign(
                    session, brand_id=brand_id, key=spec.key, spec=plain, now=now
                )
                self.changes.append(f"campaign {spec.key}: created")
            elif existing.archived_at is not None or existing.spec != plain:
                await definitions.update_campaign(
                    session, brand_id=brand_id, campaign_id=existing.id, spec=plain, now=now
                )
                restored = ["restored"] if existing.archived_at is not None else []
                self.changes.append(f"campaign {spec.key}: " + ", ".join(restored + diff_fields(existing.spec, plain)))
        if campaigns is not None and self.replace:
            await self._archive_campaigns({spec.key for spec in campaigns})
        return campaign_ids

    async def _archive_campaigns(self, named: set[str]) -> None:
        gone = [c for k, c in self.stored_campaigns.items() if c.archived_at is None and k not in named]
        await definitions.archive_campaigns(
            self.session, brand_id=self.brand.id, ids=[c.id for c in gone], now=self.now
        )
        self.changes.extend(f"campaign {c.key}: archived (opt-ins kept)" for c in gone)

    # --- challenges ---------------------------------------------------------------------------------

    async def write_challenges(self, challenges: list[ChallengeSpec] | None, campaign_ids: dict[str, int]) -> None:
        """Create, update and (when replacing) archive challenges, in program order."""
        updated: list[tuple[str, list[str]]] = []
        next_position = max((c.position for c in self.stored_challenges.values()), default=-1) + 1
        for index, spec in enumerate(challenges or []):
            row = self.stored_challenges.get(spec.key)
            if row is None:
                await self._insert_challenge(
                    spec, campaign_ids[spec.campaign], index if self.replace else next_position
                )
                next_position += 1
                continue
            position = index if self.replace else row.position
            notes = await self._update_challenge(spec, row, campaign_ids[spec.campaign], position)
            if notes is not None:
                updated.append((spec.key, notes))
        for key, notes in updated:
            restart = any(n.startswith("progress restarts") for n in notes)
            self.changes.append(f"challenge {key}: {', '.join(notes)}{'' if restart else ' (progress kept)'}")
        if challenges is not None and self.replace:
            await self._archive_challenges({spec.key for spec in challenges})

    async def _archive_challenges(self, named: set[str]) -> None:
        gone = [c for k, c in self.stored_challenges.items() if c.archived_at is None and k not in named]
        await definitions.archive_challenges(
            self.session, brand_id=self.brand.id, ids=[c.id for c in gone], now=self.now
        )
        self.changes.extend(f"challenge {c.key}: archived (progress kept)" for c in gone)

    async def _insert_challenge(self, spec: ChallengeSpec, campaign_id: int, position: int) -> None:
        await definitions.insert_challenge(
            self.session,
            brand_id=self.brand.id,
            key=spec.key,
            campaign_id=campaign_id,
            spec=to_plain(spec),
            position=position,
            now=self.now,
        )
        note = f", backfill from {spec.backfill_from}" if spec.backfill_from else ""
        self.changes.append(f"challenge {spec.key}: created{note}")

    async def _update_challenge(
        self, spec: ChallengeSpec, row: StoredChallenge, campaign_id: int, position: int
    ) -> list[str] | None:
        """Write a changed (or moved, or restored) challenge; returns its notes, ``None`` when no change is told."""
        plain = to_plain(spec)
        if row.archived_at is None and row.spec == plain and row.position == position:
            return None
        await definitions.update_challenge(
            self.session,
            brand_id=self.brand.id,
            challenge_id=row.id,
            campaign_id=campaign_id,
            spec=plain,
            position=position,
            now=self.now,
        )
        if row.spec == plain and row.archived_at is None:
            return None  # only its place in the program moved
        return self._notes(spec, row, plain)

    def _notes(self, spec: ChallengeSpec, row: StoredChallenge, plain: dict[str, Any]) -> list[str]:
        notes = ["restored"] if row.archived_at is not None else []
        notes += diff_fields(row.spec, plain)
        if row.spec.get("rule", {}).get("type") != plain["rule"]["type"]:
            notes.append("progress restarts (new rule type)")
        if spec.backfill_from and (
            row.backfilled_from is None
            or parse_when(spec.backfill_from, self.brand.tz, field="") != row.backfilled_from
        ):
            notes.append(f"backfill from {spec.backfill_from}")
        return notes
