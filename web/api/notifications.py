"""Notifications API: a member's in-app feed and marking it read (secret key)."""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, get, post
from litestar.di import Provide
from litestar.params import FromPath, JSONBody, QueryParameter

from engine import members as members_repo
from notifications import feed
from web.deps import PrincipalDep, ServicesDep, provide_secret_principal
from web.notify_mail import line
from web.schemas.notifications import MarkReadIn, MarkReadOut, NotificationOut, NotificationsOut


class NotificationsController(Controller):
    """What the brand's app shows in its own notification centre."""

    path = "/v1/members/{external_id:str}/notifications"
    tags = ("notifications",)
    dependencies = {"principal": Provide(provide_secret_principal)}  # noqa: RUF012

    @get("/", summary="A member's notifications")
    async def list_notifications(
        self,
        external_id: FromPath[str],
        services: ServicesDep,
        principal: PrincipalDep,
        limit: Annotated[int, QueryParameter(ge=1, le=100)] = 20,
        before: Annotated[int | None, QueryParameter(ge=1)] = None,
    ) -> NotificationsOut:
        """Newest first, with the unread count; ``before`` pages to older ones."""
        brand = principal.brand
        async with services.db.read() as session:
            member = await members_repo.get_member(session, brand_id=brand.id, external_id=external_id)
            found = await feed.items(session, brand_id=brand.id, member_id=member.id, limit=limit + 1, before=before)
            unread = await feed.unread(session, brand_id=brand.id, member_id=member.id)
        lang = member.locale if member.locale in ("en", "it") else "en"
        page = found[:limit]
        return NotificationsOut(
            member=member.external_id,
            unread=unread,
            items=[
                NotificationOut(
                    id=i.id,
                    kind=i.kind,
                    data=i.data,
                    text=line(i.kind, i.data, lang=lang),
                    created_at=i.created_at,
                    read=i.read,
                )
                for i in page
            ],
            next_before=page[-1].id if len(found) > limit else None,
        )

    @post("/read", summary="Mark a member's notifications read", status_code=200)
    async def mark_read(
        self, external_id: FromPath[str], data: JSONBody[MarkReadIn], services: ServicesDep, principal: PrincipalDep
    ) -> MarkReadOut:
        """Mark ``ids`` (or, with ``ids: null``, every unread one) read; ids of other members change nothing."""
        brand = principal.brand
        async with services.db.write() as session:
            member = await members_repo.get_member(session, brand_id=brand.id, external_id=external_id)
            marked = await feed.mark_read(
                session, brand_id=brand.id, member_id=member.id, now=services.clock.now(),
                ids=list(data.ids) if data.ids is not None else None,
            )  # fmt: skip
            unread = await feed.unread(session, brand_id=brand.id, member_id=member.id)
        return MarkReadOut(marked=marked, unread=unread)
