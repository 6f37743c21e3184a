"""The wallet card's content, read from the other domains for the wallet package, and the pass refresh job.

A member's card shows their points available, tier, rank on the brand's main board (the one the Apple settings
name, else the first active board) and their open challenges' progress; labels are in the member's language.
"""

from __future__ import annotations

import logging

from litestar import Response

from engine import members as members_repo
from engine.errors import QuestlineError
from engine.ids import MemberId
from engine.members import Member
from engine.tenants import Brand
from wallet.models import CardLabels, CardState, ChallengeLine
from wallet.passkit import PassKit
from wallet.service import Wallets
from web.deps import Services
from web.i18n import Translator
from web.pages import views

log = logging.getLogger("questline")
#: Open challenges a card lists (the first one on the front).
CARD_CHALLENGES = 5


def wallets_of(services: Services) -> Wallets:
    """The wallet services on this process's database, secret, clock and pusher."""
    return Wallets(
        db=services.db,
        secret=services.settings.secret,
        web_service_url=services.settings.passkit_url,
        clock=services.clock,
        pusher=services.wallet_pusher,
    )


def passkit_of(services: Services) -> PassKit:
    """Apple's PassKit web service on this process's services."""
    return PassKit(wallets=wallets_of(services), reader=MemberCards(services))


def labels(t: Translator) -> CardLabels:
    """The card's labels in ``t``'s language."""
    return CardLabels(
        points=t("Points"),
        tier=t("Tier"),
        rank=t("Rank"),
        challenge=t("Challenge"),
        member=t("Member"),
        challenges=t("Challenges in progress"),
        points_changed=t.gettext("Your balance is now %@"),
        rank_changed=t.gettext("Your rank is now %@"),
        tier_changed=t.gettext("Your tier is now %@"),
        description=t("Loyalty card"),
    )


async def card_state(services: Services, brand: Brand, member: Member, *, board: str | None = None) -> CardState:
    """What the member's card shows now."""
    t = Translator(member.locale or "en")
    now = services.clock.now()
    balance = await views.balance(services, brand, member.id)
    cards = await views.member_challenges(services, brand, member, now=now, t=t)
    open_cards = sorted(
        (c for c in cards if c.state == "active" and not c.completed), key=lambda c: (-c.percent, c.key)
    )
    rank, rank_of, board_title = await _rank(services, brand, member, board)
    tier = member.tier if member.tier is not None else member.attributes.get("tier")
    return CardState(
        member_code=member.external_id,
        name=member.display_name or member.external_id,
        points=balance,
        tier=str(tier).capitalize() if tier else None,
        rank=rank,
        rank_of=rank_of,
        board=board_title,
        challenges=tuple(
            ChallengeLine(key=c.key, title=c.title, value=c.value, target=c.target, unit=c.unit)
            for c in open_cards[:CARD_CHALLENGES]
        ),
        labels=labels(t),
    )


async def _rank(
    services: Services, brand: Brand, member: Member, board: str | None
) -> tuple[int | None, int | None, str | None]:
    boards = [b for b in await views.leaderboards(services).boards(brand) if b.active]
    chosen = next((b for b in boards if b.key == board), None) if board else None
    chosen = chosen or (boards[0] if boards else None)
    if chosen is None:
        return None, None, None
    try:
        page = await views.board_page(services, brand, chosen.key, limit=1, member=member, public=False)
    except QuestlineError:  # e.g. a board kept per store for a member without a store
        return None, None, chosen.title
    if page.me is None or not page.me.rank:
        return None, page.total, chosen.title
    return page.me.rank, page.total, chosen.title


class MemberCards:
    """The :class:`wallet.service.CardReader` of this process: members' cards by id."""

    def __init__(self, services: Services) -> None:
        self._services = services

    async def __call__(self, brand: Brand, member_id: MemberId) -> CardState | None:
        """The member's card, or ``None`` when the member no longer exists."""
        async with self._services.db.read() as session:
            found = await members_repo.members_by_id(session, brand_id=brand.id, ids=[member_id])
        member = found.get(member_id)
        if member is None:
            return None
        status = await wallets_of(self._services).status(brand.id)
        board = status.apple.board if status.apple is not None else None
        return await card_state(self._services, brand, member, board=board)


async def refresh_passes(services: Services) -> None:
    """Refresh the passes devices registered for and push the changed ones (APNs); the ``wallet`` job runs it."""
    await passkit_of(services).refresh_all()


PKPASS = "application/vnd.apple.pkpass"


def pkpass_response(data: bytes, updated_s: int) -> Response[bytes]:
    """A ``.pkpass`` download with its ``Last-Modified``."""
    from email.utils import formatdate

    return Response(
        content=data,
        media_type=PKPASS,
        headers={
            "Last-Modified": formatdate(updated_s, usegmt=True),
            "Content-Disposition": 'attachment; filename="card.pkpass"',
            "Cache-Control": "no-store",
        },
    )
