"""The console's campaign and challenge forms: form data ↔ plain definitions, and inline errors.

Forms build the same plain definitions a program document holds and validate them with the challenges
package, so the console can never store what the API would refuse. A ``DefinitionError`` names a JSON
path; :func:`field_for` maps it to the form input it concerns, where the message is shown.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any

import msgspec
import yaml
from litestar import Request
from litestar.enums import RequestEncodingType
from litestar.params import Body
from litestar.response import Template

from challenges import backfill
from challenges import service as challenges_service
from challenges import versions as challenge_versions
from challenges.config import CampaignSpec, ChallengeSpec, parse_campaigns, parse_challenges
from engine.errors import DefinitionError, QuestlineError
from engine.texts import text_in
from web import program
from web.i18n import N_, Translator
from web.pages import views
from web.pages.console.base import ConsoleViewerDep, render
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


def yaml_value(text: str, *, field: str, t: Any) -> Any:
    """A filter or eligibility written as YAML or JSON (empty: none)."""
    if not text.strip():
        return None
    if len(text) > MAX_FILTER_CHARS:
        raise FormError(field, t("Use at most %(max)s characters.", max=MAX_FILTER_CHARS))
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise FormError(field, t("Not valid YAML or JSON: %(error)s", error=str(exc).splitlines()[0])) from exc


class FormError(Exception):
    """A form value that cannot become a definition, with the input it concerns."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


def form_number(value: str, *, integer: bool) -> Any:
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
    eligibility = yaml_value(form.get("c_eligibility", ""), field="c_eligibility", t=t)
    if eligibility is not None:
        data["eligibility"] = eligibility
    return data


def challenge_data(form: dict[str, str], *, campaign: str, t: Any) -> dict[str, Any]:
    """A challenge definition from the form (``ch_…`` inputs)."""
    kind = form.get("ch_type", "count")
    rule: dict[str, Any] = {"type": kind}
    filter_ = yaml_value(form.get("ch_filter", ""), field="ch_filter", t=t)
    if kind in ("sequence", "all_of"):
        steps = [line.strip() for line in form.get("ch_steps", "").splitlines() if line.strip()]
        rule["steps"] = [{"event_type": step} for step in steps]
    else:
        rule["event_type"] = form.get("ch_event_type", "").strip()
        if filter_ is not None:
            rule["filter"] = filter_
    if kind in ("count", "streak", "distinct"):
        rule["target"] = form_number(form.get("ch_target", ""), integer=True)
    if kind == "sum":
        rule["target"] = form_number(form.get("ch_target", ""), integer=False)
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
        "reward": {"points": form_number(form.get("ch_reward_points", "") or "0", integer=True)},
    }
    badge = form.get("ch_reward_badge", "").strip()
    if badge:
        data["reward"]["badge"] = badge
    max_completions = form_number(form.get("ch_max_completions", ""), integer=True)
    if max_completions is not None:
        data["max_completions"] = max_completions
    return data


def local_input(value: str | None, viewer: ConsoleViewerDep) -> str:
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
        "c_starts_at": local_input(spec.starts_at, viewer),
        "c_ends_at": local_input(spec.ends_at, viewer),
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
