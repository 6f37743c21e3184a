"""Console campaign editor and program document: forms with inline errors, YAML view, dry run, simulation.

Forms build the same plain definitions a program document holds and validate them with the challenges
package (``parse_campaigns``/``parse_challenges``, then ``apply_definitions``), so the console can never
store what the API would refuse. A ``DefinitionError`` names a JSON path; :func:`field_for` maps it to
the form input it concerns, where the message is shown.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Annotated, Any, cast

import msgspec
import yaml
from litestar import Controller, Request, get, post
from litestar.enums import RequestEncodingType
from litestar.params import Body, FromPath
from litestar.response import Redirect, Template

from challenges import backfill
from challenges import definitions as challenges_repo
from challenges import service as challenges_service
from challenges import versions as challenge_versions
from challenges.config import CampaignSpec, ChallengeSpec, decode, parse_campaigns, parse_challenges
from challenges.models import CampaignState, CampaignStatus
from challenges.rules import campaign_state
from challenges.simulate import SimulationReport
from engine.errors import DefinitionError, QuestlineError, ValidationError
from engine.texts import text_in
from web import program
from web.i18n import N_, Translator
from web.pages import stats, views
from web.pages.console.base import CONSOLE_DEPENDENCIES, CONSOLE_EXCEPTION_HANDLERS, ConsoleViewerDep, done, render
from web.pages.console.merging import keep_stored

FormData = Annotated[dict[str, str], Body(media_type=RequestEncodingType.URL_ENCODED)]
RULE_TYPES = ("count", "sum", "streak", "distinct", "sequence", "all_of", "first")
RECURRENCES = ("none", "daily", "weekly", "monthly")
STATUSES = ("live", "draft", "paused")
MAX_FILTER_CHARS = 10_000
MAX_DOCUMENT_CHARS = 2_000_000
_INT = re.compile(r"^\d{1,12}$")
_NUMBER = re.compile(r"^\d{1,12}([.,]\d{1,6})?$")
_AT = re.compile(r"\s*\(at \$[^)]*\)$")

#: Paths inside a challenge spec → the form input showing their errors.
_CHALLENGE_FIELDS = {
    "key": "ch_key",
    "title": "ch_title",
    "description": "ch_description",
    "recurrence": "ch_recurrence",
    "max_completions": "ch_max_completions",
    "reward.points": "ch_reward_points",
    "reward.badge": "ch_reward_badge",
    "rule.type": "ch_type",
    "rule.event_type": "ch_event_type",
    "rule.target": "ch_target",
    "rule.property": "ch_property",
    "rule.period": "ch_period",
    "rule.filter": "ch_filter",
    "rule.steps": "ch_steps",
    "rule": "ch_type",
    "campaign": "c_key",
}
_CAMPAIGN_FIELDS = ("key", "title", "description", "starts_at", "ends_at", "status", "opt_in", "eligibility")


def field_for(path: str | None) -> str:
    """The form input a definition error's JSON path points at (``""``: the form as a whole)."""
    if not path:
        return ""
    campaign = re.match(r"^\$\.campaigns\[\d+\]\.?(?P<rest>.*)$", path)
    if campaign:
        head = campaign.group("rest").split(".")[0].split("[")[0]
        return f"c_{head}" if head in _CAMPAIGN_FIELDS else ""
    challenge = re.match(r"^\$\.challenges\[\d+\]\.?(?P<rest>.*)$", path)
    if challenge:
        rest = challenge.group("rest")
        for prefix in sorted(_CHALLENGE_FIELDS, key=len, reverse=True):
            if rest == prefix or rest.startswith((prefix + ".", prefix + "[")):
                return _CHALLENGE_FIELDS[prefix]
    return ""


_PLAIN_WORDS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"^Expected `(int|float)`, got `\w+`"), N_("Enter a number.")),
    (re.compile(r"^Expected `(int|float)` >= (?P<limit>[0-9.e+-]+)"), N_("Enter at least %(limit)s.")),
    (re.compile(r"^Expected `(int|float)` > (?P<limit>[0-9.e+-]+)"), N_("Enter more than %(limit)s.")),
    (re.compile(r"^Expected `(int|float)` <= (?P<limit>[0-9.e+-]+)"), N_("Enter at most %(limit)s.")),
    (re.compile(r"^Expected `str` of length >= 1"), N_("This is required.")),
    (re.compile(r"^Expected `str` of length <= (?P<limit>\d+)"), N_("Use at most %(max)s characters.")),
    (re.compile(r"^Expected `str` matching regex"), N_("Use lowercase letters, digits, - and _ only.")),
    (re.compile(r"^Object missing required field"), N_("This is required.")),
)


def message_of(exc: QuestlineError, t: Translator | None = None) -> str:
    """A definition error as a form shows it beside its input (plain words for type and range mistakes)."""
    detail = _AT.sub("", exc.detail)
    if t is not None:
        for pattern, key in _PLAIN_WORDS:
            found = pattern.match(detail)
            if found:
                limit = found.groupdict().get("limit", "")
                return t(key, limit=limit, max=limit)
    return detail


def _yaml_value(text: str, *, field: str, t: Any) -> Any:
    """A filter or eligibility written as YAML or JSON (empty: none)."""
    if not text.strip():
        return None
    if len(text) > MAX_FILTER_CHARS:
        raise _FormError(field, t("Use at most %(max)s characters.", max=MAX_FILTER_CHARS))
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise _FormError(field, t("Not valid YAML or JSON: %(error)s", error=str(exc).splitlines()[0])) from exc


class _FormError(Exception):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


def _number(value: str, *, integer: bool) -> Any:
    """Form text as a number when it looks like one; otherwise as typed, so validation names the field."""
    text = value.strip()
    if not text:
        return None
    if integer and _INT.match(text):
        return int(text)
    if not integer and _NUMBER.match(text):
        return float(text.replace(",", "."))
    return text


def campaign_data(form: dict[str, str], *, t: Any) -> dict[str, Any]:
    """A campaign definition from the form (``c_…`` inputs)."""
    data: dict[str, Any] = {
        "key": form.get("c_key", "").strip(),
        "title": form.get("c_title", "").strip(),
        "description": form.get("c_description", "").strip(),
        "status": form.get("c_status", "live"),
        "opt_in": form.get("c_opt_in") == "on",
    }
    for name in ("starts_at", "ends_at"):
        value = form.get(f"c_{name}", "").strip()
        if value:
            data[name] = value
    eligibility = _yaml_value(form.get("c_eligibility", ""), field="c_eligibility", t=t)
    if eligibility is not None:
        data["eligibility"] = eligibility
    return data


def challenge_data(form: dict[str, str], *, campaign: str, t: Any) -> dict[str, Any]:
    """A challenge definition from the form (``ch_…`` inputs)."""
    kind = form.get("ch_type", "count")
    rule: dict[str, Any] = {"type": kind}
    filter_ = _yaml_value(form.get("ch_filter", ""), field="ch_filter", t=t)
    if kind in ("sequence", "all_of"):
        steps = [line.strip() for line in form.get("ch_steps", "").splitlines() if line.strip()]
        rule["steps"] = [{"event_type": step} for step in steps]
    else:
        rule["event_type"] = form.get("ch_event_type", "").strip()
        if filter_ is not None:
            rule["filter"] = filter_
    if kind in ("count", "streak", "distinct"):
        rule["target"] = _number(form.get("ch_target", ""), integer=True)
    if kind == "sum":
        rule["target"] = _number(form.get("ch_target", ""), integer=False)
    if kind in ("sum", "distinct"):
        rule["property"] = form.get("ch_property", "").strip()
    if kind == "streak":
        rule["period"] = form.get("ch_period", "day")
    data: dict[str, Any] = {
        "key": form.get("ch_key", "").strip(),
        "campaign": campaign,
        "title": form.get("ch_title", "").strip(),
        "description": form.get("ch_description", "").strip(),
        "rule": {k: v for k, v in rule.items() if v is not None},
        "recurrence": form.get("ch_recurrence", "none"),
        "reward": {"points": _number(form.get("ch_reward_points", "") or "0", integer=True)},
    }
    badge = form.get("ch_reward_badge", "").strip()
    if badge:
        data["reward"]["badge"] = badge
    max_completions = _number(form.get("ch_max_completions", ""), integer=True)
    if max_completions is not None:
        data["max_completions"] = max_completions
    return data


def _local_input(value: str | None, viewer: ConsoleViewerDep) -> str:
    """A stored window bound as the ``datetime-local`` input shows it (brand time)."""
    if not value:
        return ""
    try:
        instant = program.parse_instant(value, viewer.brand, field="")
    except DefinitionError:
        return value
    return instant.astimezone(viewer.brand.tz).strftime("%Y-%m-%dT%H:%M") if instant else ""


def campaign_form(spec: CampaignSpec, viewer: ConsoleViewerDep) -> dict[str, str]:
    """Form values of a stored campaign."""
    return {
        "c_key": spec.key,
        "c_title": text_in(spec.title),
        "c_description": text_in(spec.description),
        "c_starts_at": _local_input(spec.starts_at, viewer),
        "c_ends_at": _local_input(spec.ends_at, viewer),
        "c_status": spec.status,
        "c_opt_in": "on" if spec.opt_in else "",
        "c_eligibility": yaml.safe_dump(spec.eligibility, sort_keys=False).strip() if spec.eligibility else "",
    }


def challenge_form(spec: ChallengeSpec) -> dict[str, str]:
    """Form values of a stored challenge."""
    rule = msgspec.to_builtins(spec.rule)
    steps = rule.get("steps") or []
    return {
        "ch_key": spec.key,
        "ch_title": text_in(spec.title),
        "ch_description": text_in(spec.description),
        "ch_type": str(rule.get("type", "count")),
        "ch_event_type": str(rule.get("event_type", "")),
        "ch_target": "" if rule.get("target") is None else f"{rule['target']:g}",
        "ch_property": str(rule.get("property", "")),
        "ch_period": str(rule.get("period", "day")),
        "ch_filter": yaml.safe_dump(rule["filter"], sort_keys=False).strip() if rule.get("filter") else "",
        "ch_steps": "\n".join(str(s.get("event_type", "")) for s in steps),
        "ch_recurrence": spec.recurrence,
        "ch_max_completions": "" if spec.max_completions is None else str(spec.max_completions),
        "ch_reward_points": str(spec.reward.points),
        "ch_reward_badge": spec.reward.badge,
    }


class CampaignRow(msgspec.Struct, frozen=True, kw_only=True):
    """A campaign in the console's list, with its challenges."""

    key: str
    title: str
    state: str
    starts_at: datetime | None
    ends_at: datetime | None
    opt_in: bool
    challenges: list[dict[str, Any]]


async def save_definitions(
    viewer: ConsoleViewerDep,
    *,
    campaign: dict[str, Any] | None,
    challenge: dict[str, Any] | None,
    source: str = "console",
) -> list[str]:
    """Validate and store one campaign and/or one challenge (recorded as a program version); returns the changes.

    Raises:
        DefinitionError: anything invalid, by JSON path; nothing is stored.
    """
    brand, now, db = viewer.brand, viewer.now, viewer.services.db
    async with db.read() as session:  # what the forms do not show is kept (other locales, prerequisites)
        campaign, challenge = await keep_stored(session, brand_id=brand.id, campaign=campaign, challenge=challenge)
    campaigns = parse_campaigns([campaign], path="$.campaigns", tz=brand.tz) if campaign is not None else None
    challenges = parse_challenges([challenge], path="$.challenges", tz=brand.tz) if challenge is not None else None
    async with db.write() as session:
        await challenge_versions.lock_program(session, db=db, brand_id=brand.id)
        changes = await challenges_service.apply_definitions(
            session, brand=brand, campaigns=campaigns, challenges=challenges, now=now, replace=False
        )
        await program.record_change(session, brand=brand, changes=changes, source=source, now=now)
    if changes:
        await backfill.run_pending(db, brand=brand, now=now)
    return changes


async def form_page(
    viewer: ConsoleViewerDep,
    request: Request[Any, Any, Any],
    *,
    template: str,
    form: dict[str, str],
    errors: dict[str, str] | None = None,
    status_code: int = 200,
    **extra: Any,
) -> Template:
    """A campaign or challenge form page (with the badge choices a reward can name)."""
    extra.setdefault("editing", None)
    badges = [b for b in await views.badge_definitions(viewer.services, viewer.brand) if b.active]
    return render(
        viewer,
        template,
        active="campaigns",
        request=request,
        status_code=status_code,
        form=form,
        errors=errors or {},
        rule_types=RULE_TYPES,
        recurrences=RECURRENCES,
        statuses=STATUSES,
        badge_options=[("", viewer.t("No badge")), *((b.key, b.name) for b in badges)],
        event_types=await views.event_types(viewer.services, viewer.brand),
        **extra,
    )


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
                raise _FormError("c_key", t("This key is already used; choose another."))
            if challenge["key"] in taken:
                raise _FormError("ch_key", t("This key is already used; choose another."))
            await save_definitions(viewer, campaign=campaign, challenge=challenge)
        except _FormError as exc:
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
        except _FormError as exc:
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
                raise _FormError("ch_key", t("This key is already used; choose another."))
        await save_definitions(viewer, campaign=None, challenge=challenge)
    except _FormError as exc:
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


class ProgramPageController(Controller):
    """The whole program as YAML: view, check (dry run), apply, simulate on past events."""

    path = "/console/program"
    include_in_schema = False
    dependencies = CONSOLE_DEPENDENCIES
    exception_handlers = CONSOLE_EXCEPTION_HANDLERS

    async def _page(
        self,
        viewer: ConsoleViewerDep,
        request: Request[Any, Any, Any],
        *,
        text: str | None = None,
        status_code: int = 200,
        **extra: Any,
    ) -> Template:
        async with viewer.services.db.read() as session:
            if text is None:
                text = program.dump_yaml(await program.export_program(session, brand=viewer.brand))
            versions = await challenge_versions.list_versions(session, brand_id=viewer.brand.id, limit=10)
        local_now = viewer.now.astimezone(viewer.brand.tz)
        context: dict[str, Any] = {
            "text": text,
            "versions": versions,
            "error": None,
            "changes": None,
            "report": None,
            "since": (local_now - timedelta(days=30)).strftime("%Y-%m-%d"),
            "until": local_now.strftime("%Y-%m-%d"),
        }
        context.update(extra)
        return render(
            viewer, "console/program.html.jinja2", active="program", request=request, status_code=status_code, **context
        )

    @get("/")
    async def view(self, request: Request[Any, Any, Any], viewer: ConsoleViewerDep) -> Template:
        """The program document, its recent versions and the simulator."""
        return await self._page(viewer, request)

    def _document(self, text: str) -> dict[str, Any]:
        if len(text) > MAX_DOCUMENT_CHARS:
            raise ValidationError("the document is too large", field="$")
        return program.load_document(text.encode(), content_type="application/yaml")

    @post("/")
    async def submit(
        self, request: Request[Any, Any, Any], viewer: ConsoleViewerDep, data: FormData
    ) -> Template | Redirect:
        """Check (dry run), apply, or simulate the document in the editor."""
        text = data.get("document", "")
        action = data.get("action", "check")
        try:
            document = self._document(text)
            if action == "simulate":
                report = await self._simulate(viewer, document, data)
                return await self._page(
                    viewer, request, text=text, report=report, since=data.get("since", ""), until=data.get("until", "")
                )
            result = await program.apply_program(
                viewer.services.db,
                brand=viewer.brand,
                document=document,
                now=viewer.now,
                dry_run=action != "apply",
                source="console",
                actor=f"admin:{viewer.admin.email}",
            )
        except QuestlineError as exc:
            return await self._page(
                viewer,
                request,
                text=text,
                error={"message": message_of(exc), "path": exc.field or ""},
                status_code=422,
                since=data.get("since", ""),
                until=data.get("until", ""),
            )
        if action == "apply":
            return done("/console/program", "applied")
        return await self._page(viewer, request, text=text, changes=result.changes)

    async def _simulate(
        self, viewer: ConsoleViewerDep, document: dict[str, Any], data: dict[str, str]
    ) -> SimulationReport:
        brand = viewer.brand
        since = program.parse_instant(data.get("since") or None, brand, field="since")
        until = program.parse_instant(data.get("until") or None, brand, field="until")
        if until is not None and len(data.get("until", "")) == 10:
            until += timedelta(days=1)  # a date "to" includes that whole day
        until = until or viewer.now
        if since is not None and until <= since:
            raise ValidationError(viewer.t("“To” must come after “from”."), field="until")
        return await program.simulate_program(
            viewer.services.db, brand=brand, document=document, since=since, until=until, top=10
        )
