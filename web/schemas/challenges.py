"""Request and response bodies of the challenges endpoints (campaigns, challenges, their changes)."""

from __future__ import annotations

from datetime import datetime

import msgspec

from challenges import backfill
from challenges.config import CampaignSpec, ChallengeSpec
from challenges.models import CampaignState


class CampaignOut(msgspec.Struct, kw_only=True):
    """A campaign: its definition, its window in UTC, its state now, and its challenges."""

    campaign: CampaignSpec
    state: CampaignState
    starts_at: datetime | None
    ends_at: datetime | None
    challenges: list[str]


class CampaignSaved(msgspec.Struct, kw_only=True):
    """A campaign after a change, with what changed and the program version it made."""

    campaign: CampaignOut
    changes: list[str]
    version: int | None


class ChallengeOut(msgspec.Struct, kw_only=True):
    """A challenge definition and its campaign's state now."""

    challenge: ChallengeSpec
    state: CampaignState


class ChallengeSaved(msgspec.Struct, kw_only=True):
    """A challenge after a change, with what changed, the program version and any backfill run."""

    challenge: ChallengeOut
    changes: list[str]
    version: int | None
    backfills: list[backfill.BackfillReport]
