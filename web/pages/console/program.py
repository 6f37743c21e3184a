"""Console campaign and challenge editor: pages and saves (forms: campaign_forms.py; the document: program_page.py).

Forms build the same plain definitions a program document holds and validate them with the challenges
package (``parse_campaigns``/``parse_challenges``, then ``apply_definitions``), so the console can never
store what the API would refuse. A ``DefinitionError`` names a JSON path; :func:`field_for` maps it to
the form input it concerns, where the message is shown.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any, cast

from litestar import Controller, Request, get, post
from litestar.enums import RequestEncodingType
from litestar.params import Body, FromPath
from litestar.response import Redirect, Template

from challenges import definitions as challenges_repo
from challenges import service as challenges_service
from challenges import versions as challenge_versions
from challenges.config import CampaignSpec, decode
from challenges.models import CampaignState, CampaignStatus
from challenges.rules import campaign_state
from engine.errors import DefinitionError, ValidationError
from engine.texts import text_in
from web import program
from web.pages import stats
from web.pages.console.base import CONSOLE_DEPENDENCIES, CONSOLE_EXCEPTION_HANDLERS, ConsoleViewerDep, done, render
from web.pages.console.campaign_forms import (
    STATUSES,
    CampaignRow,
    FormError,
    campaign_data,
    campaign_form,
    challenge_data,
    challenge_form,
    field_for,
    form_page,
    message_of,
    save_definitions,
)

FormData = Annotated[dict[str, str], Body(media_type=RequestEncodingType.URL_ENCODED)]


class CampaignsController(Controller):
    """Campaigns and their challenges, edited through forms."""

    path = "/console/campaigns"
    include_in_schema = False
    dependencies = CONSOLE_DEPENDENCIES
    exception_handlers = CONSOLE_EXCEPTION_HANDLERS

    async def _rows(self, viewer: ConsoleViewerDep) -> list[CampaignRow]:
        brand = viewer.brand
        async with viewer.services.db.read() as session:
            campaigns = await challenges_repo.stored_campaigns(session, brand_id=brand.id)
            compiled = await challenges_repo.load_compiled(session, brand_id=brand.id, tz=brand.tz)
        done_counts = await stats.completions(viewer.services.db, brand_id=brand.id, since=None)
        counts = {c.key: int(c.value) for c in done_counts}
        rows: list[CampaignRow] = []
        for stored in campaigns:
            mine = [c for c in compiled if c.campaign.key == stored.key]
            spec = decode(stored.spec, CampaignSpec, path="$")
            state = campaign_state(mine[0].campaign, viewer.now).value if mine else _state_of(spec, viewer)
            rows.append(
                CampaignRow(
                    key=stored.key,
                    title=text_in(spec.title),
                    state=state,
                    starts_at=mine[0].campaign.starts_at if mine else None,
                    ends_at=mine[0].campaign.ends_at if mine else None,
                    opt_in=spec.opt_in,
                    challenges=[
                        {
                            "key": c.key,
                            "title": c.title,
                            "type": type(c.rule).__struct_config__.tag,
                            "target": c.target,
                            "recurrence": c.recurrence,
                            "reward": c.reward,
                            "completions": counts.get(c.key, 0),
                        }
                        for c in mine
                    ],
                )
            )
        order = {
            s.value: i
            for i, s in enumerate(
                (
                    CampaignState.ACTIVE,
                    CampaignState.SCHEDULED,
                    CampaignState.PAUSED,
                    CampaignState.DRAFT,
                    CampaignState.ENDED,
                )
            )
        }
        return sorted(rows, key=lambda r: (order.get(r.state, 9), r.title.lower()))

    @get("/")
    async def campaigns(self, request: Request[Any, Any, Any], viewer: ConsoleViewerDep) -> Template:
        """Every campaign with its state and challenges."""
        rows = await self._rows(viewer)
        return render(viewer, "console/campaigns.html.jinja2", active="campaigns", request=request, rows=rows)

    @get("/new")
    async def new(self, request: Request[Any, Any, Any], viewer: ConsoleViewerDep) -> Template:
        """The form for a new campaign and its first challenge."""
        start = (viewer.now.astimezone(viewer.brand.tz) + timedelta(days=1)).replace(hour=0, minute=0)
        form = {
            "c_status": "live",
            "c_starts_at": start.strftime("%Y-%m-%dT%H:%M"),
            "c_ends_at": (start + timedelta(days=30)).strftime("%Y-%m-%dT%H:%M"),
            "ch_type": "count",
            "ch_target": "3",
            "ch_recurrence": "none",
            "ch_reward_points": "100",
        }
        return await form_page(viewer, request, template="console/campaign_new.html.jinja2", form=form)

    @post("/")
    async def create(
        self, request: Request[Any, Any, Any], viewer: ConsoleViewerDep, data: FormData
    ) -> Template | Redirect:
        """Create a campaign with its first challenge; mistakes come back inline, nothing is stored."""
        t = viewer.t
        errors: dict[str, str] = {}
        try:
            campaign = campaign_data(data, t=t)
            challenge = challenge_data(data, campaign=campaign["key"], t=t)
            async with viewer.services.db.read() as session:
                existing = {
                    c.key
                    for c in await challenges_repo.stored_campaigns(
                        session, brand_id=viewer.brand.id, include_archived=True
                    )
                }
                taken = {
                    c.key
                    for c in await challenges_repo.stored_challenges(
                        session, brand_id=viewer.brand.id, include_archived=True
                    )
                }
            if campaign["key"] in existing:
                raise FormError("c_key", t("This key is already used; choose another."))
            if challenge["key"] in taken:
                raise FormError("ch_key", t("This key is already used; choose another."))
            await save_definitions(viewer, campaign=campaign, challenge=challenge)
        except FormError as exc:
            errors[exc.field] = exc.message
        except (DefinitionError, ValidationError) as exc:
            errors[field_for(exc.field) or "form"] = message_of(exc, t)
        if errors:
            return await form_page(
                viewer,
                request,
                template="console/campaign_new.html.jinja2",
                form=data,
                errors=errors,
                status_code=422,
            )
        return done("/console/campaigns", "created")

    async def _edit_page(
        self, viewer: ConsoleViewerDep, request: Request[Any, Any, Any], key: str, **extra: Any
    ) -> Template:
        async with viewer.services.db.read() as session:
            spec = await challenges_service.get_campaign_spec(session, brand_id=viewer.brand.id, key=key)
        rows = [r for r in await self._rows(viewer) if r.key == key]
        extra.setdefault("form", campaign_form(spec, viewer))
        return await form_page(
            viewer,
            request,
            template="console/campaign_edit.html.jinja2",
            campaign=rows[0] if rows else None,
            key=key,
            **extra,
        )

    @get("/{key:str}")
    async def edit(self, request: Request[Any, Any, Any], viewer: ConsoleViewerDep, key: FromPath[str]) -> Template:
        """A campaign's settings and its challenges."""
        return await self._edit_page(viewer, request, key)

    @post("/{key:str}")
    async def update(
        self, request: Request[Any, Any, Any], viewer: ConsoleViewerDep, key: FromPath[str], data: FormData
    ) -> Template | Redirect:
        """Save a campaign's settings (members' progress is kept)."""
        errors: dict[str, str] = {}
        try:
            campaign = campaign_data({**data, "c_key": key}, t=viewer.t)
            await save_definitions(viewer, campaign=campaign, challenge=None)
        except FormError as exc:
            errors[exc.field] = exc.message
        except (DefinitionError, ValidationError) as exc:
            errors[field_for(exc.field) or "form"] = message_of(exc, viewer.t)
        if errors:
            return await self._edit_page(
                viewer, request, key, form={**data, "c_key": key}, errors=errors, status_code=422
            )
        return done(f"/console/campaigns/{key}", "saved")

    @post("/{key:str}/status")
    async def status(self, viewer: ConsoleViewerDep, key: FromPath[str], data: FormData) -> Redirect:
        """Pause, resume or return a campaign to draft."""
        status = data.get("status", "")
        if status not in STATUSES:
            raise ValidationError("status is live, draft or paused", field="status")
        chosen = cast("CampaignStatus", status)
        async with viewer.services.db.write() as session:
            await challenge_versions.lock_program(session, db=viewer.services.db, brand_id=viewer.brand.id)
            changes = await challenges_service.set_campaign_status(
                session,
                brand=viewer.brand,
                key=key,
                status=chosen,
                now=viewer.now,
            )
            await program.record_change(session, brand=viewer.brand, changes=changes, source="console", now=viewer.now)
        return done(f"/console/campaigns/{key}", "saved")

    @get("/{key:str}/challenges/new")
    async def new_challenge(
        self, request: Request[Any, Any, Any], viewer: ConsoleViewerDep, key: FromPath[str]
    ) -> Template:
        """The form for one more challenge in a campaign."""
        async with viewer.services.db.read() as session:
            await challenges_service.get_campaign_spec(session, brand_id=viewer.brand.id, key=key)
        form = {"ch_type": "count", "ch_target": "3", "ch_recurrence": "none", "ch_reward_points": "50"}
        return await form_page(
            viewer, request, template="console/challenge_form.html.jinja2", form=form, campaign_key=key, editing=None
        )

    @post("/{key:str}/challenges")
    async def add_challenge(
        self, request: Request[Any, Any, Any], viewer: ConsoleViewerDep, key: FromPath[str], data: FormData
    ) -> Template | Redirect:
        """Add a challenge to a campaign."""
        return await _save_challenge(viewer, request, campaign_key=key, data=data, editing=None)


async def _save_challenge(
    viewer: ConsoleViewerDep,
    request: Request[Any, Any, Any],
    *,
    campaign_key: str,
    data: dict[str, str],
    editing: str | None,
) -> Template | Redirect:
    t = viewer.t
    errors: dict[str, str] = {}
    form = {**data, "ch_key": editing} if editing else data
    try:
        challenge = challenge_data(form, campaign=campaign_key, t=t)
        if editing is None:
            async with viewer.services.db.read() as session:
                taken = {
                    c.key
                    for c in await challenges_repo.stored_challenges(
                        session, brand_id=viewer.brand.id, include_archived=True
                    )
                }
            if challenge["key"] in taken:
                raise FormError("ch_key", t("This key is already used; choose another."))
        await save_definitions(viewer, campaign=None, challenge=challenge)
    except FormError as exc:
        errors[exc.field] = exc.message
    except (DefinitionError, ValidationError) as exc:
        errors[field_for(exc.field) or "form"] = message_of(exc, t)
    if errors:
        return await form_page(
            viewer,
            request,
            template="console/challenge_form.html.jinja2",
            form=form,
            errors=errors,
            status_code=422,
            campaign_key=campaign_key,
            editing=editing,
        )
    return done(f"/console/campaigns/{campaign_key}", "saved" if editing else "created")


def _state_of(spec: CampaignSpec, viewer: ConsoleViewerDep) -> str:
    from challenges.config import build_campaign

    return campaign_state(build_campaign(spec, tz=viewer.brand.tz), viewer.now).value


class ChallengesController(Controller):
    """One challenge's form (``/console/challenges/{key}``)."""

    path = "/console/challenges"
    include_in_schema = False
    dependencies = CONSOLE_DEPENDENCIES
    exception_handlers = CONSOLE_EXCEPTION_HANDLERS

    @get("/{key:str}", name="console:challenge")
    async def challenge(
        self, request: Request[Any, Any, Any], viewer: ConsoleViewerDep, key: FromPath[str]
    ) -> Template:
        """Edit a challenge (progress is kept; a new rule type restarts it)."""
        async with viewer.services.db.read() as session:
            spec = await challenges_service.get_challenge_spec(session, brand_id=viewer.brand.id, key=key)
        return await form_page(
            viewer,
            request,
            template="console/challenge_form.html.jinja2",
            form=challenge_form(spec),
            campaign_key=spec.campaign,
            editing=key,
        )

    @post("/{key:str}", name="console:challenge-save")
    async def save(
        self, request: Request[Any, Any, Any], viewer: ConsoleViewerDep, key: FromPath[str], data: FormData
    ) -> Template | Redirect:
        """Save a challenge."""
        async with viewer.services.db.read() as session:
            spec = await challenges_service.get_challenge_spec(session, brand_id=viewer.brand.id, key=key)
        return await _save_challenge(viewer, request, campaign_key=spec.campaign, data=data, editing=key)

    @post("/{key:str}/archive")
    async def archive(self, viewer: ConsoleViewerDep, key: FromPath[str]) -> Redirect:
        """Archive a challenge (members' progress is kept if it comes back)."""
        async with viewer.services.db.write() as session:
            spec = await challenges_service.get_challenge_spec(session, brand_id=viewer.brand.id, key=key)
            changes = await challenges_service.archive_challenge(session, brand=viewer.brand, key=key, now=viewer.now)
            await program.record_change(session, brand=viewer.brand, changes=changes, source="console", now=viewer.now)
        return done(f"/console/campaigns/{spec.campaign}", "deleted")
