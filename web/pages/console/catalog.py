"""Console badges manager (with art preview) and leaderboards (current standings and archives)."""

from __future__ import annotations

import base64
import re
from datetime import datetime
from typing import Annotated, Any

import msgspec
import yaml
from litestar import Controller, Request, get, post
from litestar.enums import RequestEncodingType
from litestar.params import Body, FromPath, QueryParameter
from litestar.response import Redirect, Template

from badges import art
from badges import config as badges_config
from badges import repository as badges_repo
from badges.config import parse_badge
from badges.icons import ICONS
from badges.models import BadgeDef, badge_to_spec
from engine.errors import DefinitionError, QuestlineError
from leaderboards import repository as boards_repo
from leaderboards.models import BoardDef
from web.pages import views
from web.pages.console.base import CONSOLE_DEPENDENCIES, CONSOLE_EXCEPTION_HANDLERS, ConsoleViewerDep, done, render
from web.pages.console.campaign_forms import MAX_FILTER_CHARS, message_of
from web.pages.console.merging import keep_unshown

FormData = Annotated[dict[str, str], Body(media_type=RequestEncodingType.URL_ENCODED)]
_LEVEL_LINE = re.compile(r"^(?P<key>\S+)\s+(?P<threshold>\d{1,10})(\s+(?P<points>\d{1,10}))?(\s+(?P<name>.+))?$")
_FIELDS = {
    "key": "key",
    "name": "name",
    "description": "description",
    "criteria": "criteria",
    "category": "category",
    "icon": "icon",
    "color": "color",
    "hidden": "hidden",
    "repeatable": "repeatable",
    "levels": "levels",
    "rule": "rule_event_type",
    "rule.event_type": "rule_event_type",
    "rule.count": "rule_count",
    "rule.filter": "rule_filter",
    "points": "points",
}


def badge_field(path: str | None) -> str:
    """The badge form input a definition error's path (``$.levels[1].threshold``) points at."""
    if not path or not path.startswith("$"):
        return "form"
    rest = path[2:] if path.startswith("$.") else ""
    for prefix in sorted(_FIELDS, key=len, reverse=True):
        if rest == prefix or rest.startswith((prefix + ".", prefix + "[")):
            return _FIELDS[prefix]
    return "form"


class _FieldError(Exception):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


def _level_lines(text: str, *, t: Any) -> list[dict[str, Any]]:
    """Levels from the form's lines ``key threshold [points] [name]``."""
    levels: list[dict[str, Any]] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        match = _LEVEL_LINE.match(line.strip())
        if match is None:
            raise _FieldError("levels", t("Line %(line)s: write “key threshold [points] [name]”.", line=number))
        level: dict[str, Any] = {"key": match.group("key"), "threshold": int(match.group("threshold"))}
        if match.group("points"):
            level["points"] = int(match.group("points"))
        if match.group("name"):
            level["name"] = match.group("name").strip()
        levels.append(level)
    return levels


def _rule_data(form: dict[str, str], event_type: str, *, counted: bool, t: Any) -> dict[str, Any]:
    """The badge's rule from the form (``count`` only without levels; the filter as YAML or JSON)."""
    rule: dict[str, Any] = {"event_type": event_type}
    count = form.get("rule_count", "").strip()
    if count and counted:
        rule["count"] = int(count) if count.isdigit() else count
    text = form.get("rule_filter", "")
    if text.strip():
        if len(text) > MAX_FILTER_CHARS:
            raise _FieldError("rule_filter", t("Use at most %(max)s characters.", max=MAX_FILTER_CHARS))
        try:
            rule["filter"] = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise _FieldError(
                "rule_filter", t("Not valid YAML or JSON: %(error)s", error=str(exc).splitlines()[0])
            ) from exc
    return rule


def badge_data(form: dict[str, str], *, key: str, t: Any) -> dict[str, Any]:
    """A badge definition from the form."""
    data: dict[str, Any] = {
        "key": key,
        "name": form.get("name", "").strip(),
        "description": form.get("description", "").strip(),
        "criteria": form.get("criteria", "").strip(),
        "category": form.get("category", "").strip(),
        "icon": form.get("icon", "").strip(),
        "color": form.get("color", "").strip().lower() if form.get("use_color") == "on" else "",
        "hidden": form.get("hidden") == "on",
        "repeatable": form.get("repeatable") == "on",
        "active": form.get("active") == "on",
    }
    points = form.get("points", "").strip() or "0"
    data["points"] = int(points) if points.isdigit() else points
    levels = _level_lines(form.get("levels", ""), t=t)
    if levels:
        data["levels"] = levels
    event_type = form.get("rule_event_type", "").strip()
    if event_type:
        data["rule"] = _rule_data(form, event_type, counted=not levels, t=t)
    image = form.get("image", "")
    if image:
        data["image"] = image
    return {k: v for k, v in data.items() if v not in ("", None) or k in {"key", "name"}}


def badge_form(badge: BadgeDef) -> dict[str, str]:
    """Form values of a stored badge."""
    spec = badge_to_spec(badge)
    rule = spec.rule
    return {
        "key": spec.key,
        "name": badge.name,
        "description": badge.description,
        "criteria": spec.criteria,
        "category": spec.category,
        "icon": spec.icon,
        "color": spec.color or "#5b3df5",
        "use_color": "on" if spec.color else "",
        "hidden": "on" if spec.hidden else "",
        "repeatable": "on" if spec.repeatable else "",
        "active": "on" if spec.active else "",
        "points": str(spec.points),
        "levels": "\n".join(f"{lv.key} {lv.threshold} {lv.points} {lv.name}".strip() for lv in spec.levels),
        "rule_event_type": rule.event_type if rule else "",
        "rule_count": str(rule.count) if rule else "",
        "rule_filter": yaml.safe_dump(rule.filter, sort_keys=False).strip() if rule and rule.filter else "",
        "image": spec.image,
    }


def previews(badge: BadgeDef, viewer: ConsoleViewerDep) -> list[tuple[str, str]]:
    """The badge's art at each level (or once, without levels), as ``(level name, data URI)``."""
    if badge.levels:
        return [(level.name, preview(badge, viewer, level=level.key)) for level in badge.levels]
    return [("", preview(badge, viewer))]


def preview(badge: BadgeDef, viewer: ConsoleViewerDep, *, level: str = "") -> str:
    """The badge's art as a ``data:`` URI (for a form preview, saved or not)."""
    content = art.badge_image(
        badge, brand_slug=viewer.brand.slug, brand_settings=viewer.brand.settings, level=level, kind="svg"
    )
    return "data:image/svg+xml;base64," + base64.b64encode(content).decode()


class BadgeTile(msgspec.Struct, frozen=True, kw_only=True):
    """A badge in the console's list."""

    key: str
    name: str
    image: str
    category: str
    holders: int
    rarity: float
    active: bool
    hidden: bool
    repeatable: bool
    levels: list[str]


class BadgesPageController(Controller):
    """Badge definitions with art previews."""

    path = "/console/badges"
    include_in_schema = False
    dependencies = CONSOLE_DEPENDENCIES
    exception_handlers = CONSOLE_EXCEPTION_HANDLERS

    @get("/")
    async def badges(self, request: Request[Any, Any, Any], viewer: ConsoleViewerDep) -> Template:
        """Every badge with its art, holders and rarity."""
        brand = viewer.brand
        async with viewer.services.db.read() as session:
            badges = await badges_repo.load_badges(session, brand.id)
            holders, members = await badges_repo.holders(session, brand_id=brand.id)
            # Secret badges have no public art URL: the console draws them itself.
            secret = [
                await badges_repo.get_badge(session, brand_id=brand.id, key=b.key, with_image=True)
                for b in badges
                if b.hidden
            ]
        art_uris = {b.key: preview(b, viewer, level=b.levels[-1].key if b.levels else "") for b in secret}
        shares = badges_repo.rarity(holders, members)
        urls = views.badge_urls(viewer.services)
        tiles = [
            BadgeTile(
                key=b.key,
                name=b.name,
                image=art_uris.get(b.key)
                or views.local_url(
                    viewer.services, urls.image(brand.slug, b.key, b.levels[-1].key if b.levels else "", ext="svg")
                ),
                category=b.category,
                holders=holders.get(b.key, 0),
                rarity=round(shares.get(b.key, 0.0), 1),
                active=b.active,
                hidden=b.hidden,
                repeatable=b.repeatable,
                levels=[lv.name for lv in b.levels],
            )
            for b in badges
        ]
        return render(viewer, "console/badges.html.jinja2", active="badges", request=request, tiles=tiles)

    async def _form(
        self,
        viewer: ConsoleViewerDep,
        request: Request[Any, Any, Any],
        *,
        form: dict[str, str],
        editing: str | None,
        errors: dict[str, str] | None = None,
        art: list[tuple[str, str]] | None = None,
        status_code: int = 200,
    ) -> Template:
        return render(
            viewer,
            "console/badge_form.html.jinja2",
            active="badges",
            request=request,
            status_code=status_code,
            form=form,
            editing=editing,
            errors=errors or {},
            art=art or [],
            icons=[("", viewer.t("Initials of the name")), *((name, name) for name in sorted(ICONS))],
        )

    @get("/new")
    async def new(self, request: Request[Any, Any, Any], viewer: ConsoleViewerDep) -> Template:
        """The form for a new badge."""
        form = {"active": "on", "points": "0", "color": "#5b3df5", "rule_count": "1"}
        return await self._form(viewer, request, form=form, editing=None)

    @get("/{key:str}")
    async def edit(self, request: Request[Any, Any, Any], viewer: ConsoleViewerDep, key: FromPath[str]) -> Template:
        """A badge's form with its current art."""
        async with viewer.services.db.read() as session:
            badge = await badges_repo.get_badge(session, brand_id=viewer.brand.id, key=key, with_image=True)
        return await self._form(viewer, request, form=badge_form(badge), editing=key, art=previews(badge, viewer))

    async def _save(
        self, request: Request[Any, Any, Any], viewer: ConsoleViewerDep, data: dict[str, str], *, editing: str | None
    ) -> Template | Redirect:
        key = editing or data.get("key", "").strip()
        errors: dict[str, str] = {}
        badge: BadgeDef | None = None
        try:
            written = badge_data(data, key=key, t=viewer.t)
            if editing is not None:  # other locales of the name and description are kept
                async with viewer.services.db.read() as session:
                    stored = {b.key: b for b in await badges_repo.load_badges(session, viewer.brand.id)}.get(key)
                written = keep_unshown(written, msgspec.to_builtins(badge_to_spec(stored)) if stored else None)
            badge = parse_badge(written, path="$")
            if editing is None:
                async with viewer.services.db.read() as session:
                    existing = {b.key for b in await badges_repo.load_badges(session, viewer.brand.id)}
                if key in existing:
                    raise _FieldError("key", viewer.t("This key is already used; choose another."))
            if data.get("action") != "preview":
                async with viewer.services.db.write() as session:
                    await badges_config.save_badge(session, brand_id=viewer.brand.id, badge=badge, now=viewer.now)
        except _FieldError as exc:
            errors[exc.field] = exc.message
        except (DefinitionError, QuestlineError) as exc:
            errors[badge_field(exc.field)] = message_of(exc, viewer.t)
        if errors or data.get("action") == "preview":
            return await self._form(
                viewer,
                request,
                form={**data, "key": key},
                editing=editing,
                errors=errors,
                art=previews(badge, viewer) if badge is not None else None,
                status_code=422 if errors else 200,
            )
        return done("/console/badges", "saved" if editing else "created")

    @post("/")
    async def create(
        self, request: Request[Any, Any, Any], viewer: ConsoleViewerDep, data: FormData
    ) -> Template | Redirect:
        """Create a badge (or preview its art)."""
        return await self._save(request, viewer, data, editing=None)

    @post("/{key:str}")
    async def update(
        self, request: Request[Any, Any, Any], viewer: ConsoleViewerDep, key: FromPath[str], data: FormData
    ) -> Template | Redirect:
        """Save a badge (or preview its art); awards already made stay valid."""
        return await self._save(request, viewer, data, editing=key)


class PeriodLine(msgspec.Struct, frozen=True, kw_only=True):
    """A period of a board in the console (current or archived)."""

    id: str
    starts_at: datetime | None
    ends_at: datetime | None
    closed_at: datetime | None
    members: int


class LeaderboardsPageController(Controller):
    """Boards: current standings (full names, for the brand) and closed periods' archives."""

    path = "/console/leaderboards"
    include_in_schema = False
    dependencies = CONSOLE_DEPENDENCIES
    exception_handlers = CONSOLE_EXCEPTION_HANDLERS

    @get("/")
    async def boards(self, request: Request[Any, Any, Any], viewer: ConsoleViewerDep) -> Template:
        """Every board with its leader."""
        runtime = views.leaderboards(viewer.services)
        boards: list[tuple[BoardDef, Any]] = []
        for board in await runtime.boards(viewer.brand):
            try:
                page = await runtime.read(viewer.brand, board.key, limit=3) if board.scope is None else None
            except QuestlineError:
                page = None
            boards.append((board, page))
        return render(viewer, "console/leaderboards.html.jinja2", active="leaderboards", request=request, boards=boards)

    @get("/{key:str}")
    async def board(
        self,
        request: Request[Any, Any, Any],
        viewer: ConsoleViewerDep,
        key: FromPath[str],
        period: Annotated[str, QueryParameter(max_length=32)] = "current",
        board_scope: Annotated[str, QueryParameter(name="scope", max_length=200)] = "",
    ) -> Template:
        """One board's standings for a period (the current one, or an archived one), 50 rows."""
        runtime = views.leaderboards(viewer.services)
        board = await runtime.board(viewer.brand, key, public=False)
        async with viewer.services.db.read() as session:
            periods = [
                PeriodLine(
                    id=p.period, starts_at=p.starts_at, ends_at=p.ends_at, closed_at=p.closed_at, members=p.members
                )
                for p in reversed(await boards_repo.board_periods(session, board_id=board.id))
            ]
        error = ""
        page = None
        scope = board_scope
        if board.scope is not None and not scope:
            error = viewer.t("This board is kept per %(scope)s: enter a value.", scope=board.scope)
        else:
            try:
                page = await runtime.read(viewer.brand, key, period=period, scope=scope or None, limit=50)
            except QuestlineError as exc:
                error = exc.detail
        return render(
            viewer,
            "console/leaderboard.html.jinja2",
            active="leaderboards",
            request=request,
            board=board,
            page=page,
            periods=periods,
            period=period,
            scope=scope,
            error=error,
            period_label=views.period_label(
                board.period,
                page.period.starts_at if page else None,
                page.period.ends_at if page else None,
                viewer.t,
                viewer.brand.tz,
            ),
        )
