"""Console rewards: the catalog (create, edit, stock, code pool upload, pause) and redemptions (search, cancel)."""

from __future__ import annotations

import re
from typing import Annotated, Any

import msgspec
import yaml
from litestar import Controller, Request, get, post
from litestar.datastructures import UploadFile
from litestar.enums import RequestEncodingType
from litestar.params import Body, FromPath, QueryParameter
from litestar.response import Redirect, Template

from engine.errors import DefinitionError, QuestlineError
from rewards import repository as rewards_repo
from rewards import service as rewards_service
from rewards.models import RewardSpec
from web.pages.console.base import CONSOLE_DEPENDENCIES, CONSOLE_EXCEPTION_HANDLERS, ConsoleViewerDep, done, render

FormData = Annotated[dict[str, str], Body(media_type=RequestEncodingType.URL_ENCODED)]
TYPES = ("voucher", "discount", "product", "experience", "donation")
PERIODS = ("ever", "day", "week", "month", "year")
MAX_UPLOAD = 4 * 1024 * 1024
_AT = re.compile(r"`\$\.(?P<field>[a-z_]+)")
_FORM_FIELDS = {
    "key": "key",
    "name": "name_en",
    "description": "description_en",
    "image_url": "image_url",
    "cost": "cost",
    "type": "type",
    "codes": "codes_source",
    "discount": "discount_value",
    "stock": "stock",
    "low_stock_at": "low_stock_at",
    "limit": "limit_count",
    "eligibility": "eligibility",
    "ends_at": "form",
}


class _FieldError(Exception):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


def _int(form: dict[str, str], name: str) -> int | None:
    text = form.get(name, "").strip()
    if not text:
        return None
    if not text.isdigit():
        raise _FieldError(name, "Enter a whole number.")
    return int(text)


def reward_data(form: dict[str, str], *, key: str, before: RewardSpec | None) -> dict[str, Any]:
    """A catalog entry from the form (fields the form does not show are kept from ``before``)."""
    kept: dict[str, Any] = msgspec.to_builtins(before) if before is not None else {}
    names = {**kept.get("name", {}), "en": form.get("name_en", "").strip(), "it": form.get("name_it", "").strip()}
    texts = {
        **kept.get("description", {}),
        "en": form.get("description_en", "").strip(),
        "it": form.get("description_it", "").strip(),
    }
    data: dict[str, Any] = {
        **{k: v for k, v in kept.items() if k in ("starts_at", "ends_at")},
        "key": key,
        "name": {k: v for k, v in names.items() if v},
        "description": {k: v for k, v in texts.items() if v},
        "image_url": form.get("image_url", "").strip(),
        "cost": _int(form, "cost"),
        "type": form.get("type", "product"),
        "stock": _int(form, "stock"),
        "low_stock_at": _int(form, "low_stock_at"),
        "visible": form.get("visible") == "on",
        "paused": form.get("paused") == "on",
    }
    count = _int(form, "limit_count")
    if count:
        data["limit"] = {"count": count, "period": form.get("limit_period", "ever")}
    source = form.get("codes_source", "")
    if source in ("pool", "pattern"):
        data["codes"] = {"source": source, "pattern": form.get("codes_pattern", "").strip().upper()}
    if data["type"] == "discount":
        value = form.get("discount_value", "").strip().replace(",", ".")
        try:
            amount = float(value)
        except ValueError as exc:
            raise _FieldError("discount_value", "Enter a number.") from exc
        data["discount"] = {
            "kind": form.get("discount_kind", "percent"),
            "value": amount,
            "currency": form.get("discount_currency", "").strip().upper(),
        }
    text = form.get("eligibility", "")
    if text.strip():
        try:
            data["eligibility"] = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise _FieldError("eligibility", "Not valid YAML or JSON.") from exc
    return {k: v for k, v in data.items() if v is not None and v != ""}


def reward_form(spec: RewardSpec) -> dict[str, str]:
    """Form values of a stored reward."""
    return {
        "key": spec.key,
        "name_en": spec.name.get("en", ""),
        "name_it": spec.name.get("it", ""),
        "description_en": spec.description.get("en", ""),
        "description_it": spec.description.get("it", ""),
        "image_url": spec.image_url,
        "cost": str(spec.cost),
        "type": spec.type.value,
        "stock": "" if spec.stock is None else str(spec.stock),
        "low_stock_at": "" if spec.low_stock_at is None else str(spec.low_stock_at),
        "limit_count": str(spec.limit.count) if spec.limit else "",
        "limit_period": spec.limit.period if spec.limit else "ever",
        "codes_source": spec.codes.source if spec.codes else "",
        "codes_pattern": spec.codes.pattern if spec.codes else "",
        "discount_kind": spec.discount.kind if spec.discount else "percent",
        "discount_value": f"{spec.discount.value:g}" if spec.discount else "",
        "discount_currency": spec.discount.currency if spec.discount else "",
        "eligibility": yaml.safe_dump(spec.eligibility, sort_keys=False).strip() if spec.eligibility else "",
        "visible": "on" if spec.visible else "",
        "paused": "on" if spec.paused else "",
    }


def _error_field(detail: str, field: str | None) -> str:
    path = field or ""
    match = _AT.search(f"`{path}`") or _AT.search(detail)
    if match is None:
        return "form"
    return _FORM_FIELDS.get(match.group("field"), "form")


class RewardRow(msgspec.Struct, frozen=True, kw_only=True):
    """A reward in the console's list."""

    key: str
    name: str
    cost: int
    type: str
    remaining: int | None
    issued: int
    codes: int | None
    paused: bool
    visible: bool


class RewardsPageController(Controller):
    """The reward catalog and redemptions."""

    path = "/console/rewards"
    include_in_schema = False
    dependencies = CONSOLE_DEPENDENCIES
    exception_handlers = CONSOLE_EXCEPTION_HANDLERS

    @get("/", name="console:rewards")
    async def rewards(self, request: Request[Any, Any, Any], viewer: ConsoleViewerDep) -> Template:
        """Every reward with cost, stock left, codes available and state."""
        lang = viewer.t.lang
        rows: list[RewardRow] = []
        async with viewer.services.db.read() as session:
            for reward_id, reward, left in await rewards_repo.list_rewards(session, brand_id=viewer.brand.id):
                spec = reward.spec
                _, issued = await rewards_repo.stock_of(session, reward_id=reward_id)
                codes = None
                if spec.codes is not None and spec.codes.source == "pool":
                    codes = (await rewards_repo.code_counts(session, reward_id=reward_id)).get("available", 0)
                rows.append(
                    RewardRow(
                        key=spec.key, name=spec.name.get(lang) or next(iter(spec.name.values())), cost=spec.cost,
                        type=spec.type.value, remaining=left, issued=issued, codes=codes, paused=spec.paused,
                        visible=spec.visible,
                    )
                )  # fmt: skip
        return render(viewer, "console/rewards.html.jinja2", active="rewards", request=request, rows=rows)

    @get("/new")
    async def new(self, request: Request[Any, Any, Any], viewer: ConsoleViewerDep) -> Template:
        """An empty reward form."""
        form = {"type": "product", "visible": "on", "limit_period": "ever", "discount_kind": "percent"}
        return self._form(viewer, request, form=form, editing=None, errors={})

    def _form(
        self,
        viewer: ConsoleViewerDep,
        request: Request[Any, Any, Any],
        *,
        form: dict[str, str],
        editing: str | None,
        errors: dict[str, str],
        codes: dict[str, int] | None = None,
        status_code: int = 200,
    ) -> Template:
        return render(
            viewer,
            "console/reward_form.html.jinja2",
            active="rewards",
            request=request,
            form=form,
            editing=editing,
            errors=errors,
            types=TYPES,
            periods=PERIODS,
            codes=codes,
            status_code=status_code,
        )

    @get("/{key:str}")
    async def edit(self, request: Request[Any, Any, Any], viewer: ConsoleViewerDep, key: FromPath[str]) -> Template:
        """The reward's form, with its code pool."""
        async with viewer.services.db.read() as session:
            row = await rewards_repo.reward_row(session, brand_id=viewer.brand.id, key=key)
            codes = await rewards_repo.code_counts(session, reward_id=row.id)
        spec = rewards_repo.to_reward(row.spec).spec
        return self._form(viewer, request, form=reward_form(spec), editing=key, errors={}, codes=codes)

    @post("/", status_code=303)
    async def create(
        self, request: Request[Any, Any, Any], viewer: ConsoleViewerDep, data: FormData
    ) -> Redirect | Template:
        """Create a reward."""
        return await self._save(request, viewer, data, key=data.get("key", "").strip(), editing=None)

    @post("/{key:str}", status_code=303)
    async def update(
        self, request: Request[Any, Any, Any], viewer: ConsoleViewerDep, key: FromPath[str], data: FormData
    ) -> Redirect | Template:
        """Save a reward's changes (a new cost applies to new redemptions only)."""
        return await self._save(request, viewer, data, key=key, editing=key)

    async def _save(
        self,
        request: Request[Any, Any, Any],
        viewer: ConsoleViewerDep,
        data: dict[str, str],
        *,
        key: str,
        editing: str | None,
    ) -> Redirect | Template:
        t = viewer.t
        before = None
        try:
            if editing is not None:
                async with viewer.services.db.read() as session:
                    row = await rewards_repo.reward_row(session, brand_id=viewer.brand.id, key=key)
                before = rewards_repo.to_reward(row.spec).spec
            plain = reward_data(data, key=key, before=before)
            try:
                spec = msgspec.convert(plain, RewardSpec)
            except msgspec.ValidationError as exc:
                raise DefinitionError(str(exc), field=None) from exc
            async with viewer.services.db.write() as session:
                await rewards_service.put_reward(session, brand_id=viewer.brand.id, spec=spec, now=viewer.now)
        except _FieldError as exc:
            return self._form(
                viewer, request, form=data, editing=editing, errors={exc.field: t(exc.message)}, status_code=422
            )
        except QuestlineError as exc:
            field = _error_field(exc.detail, exc.field)
            return self._form(viewer, request, form=data, editing=editing, errors={field: exc.detail}, status_code=422)
        return done(f"/console/rewards/{key}", "saved" if editing else "created")

    @post("/{key:str}/pause", status_code=303)
    async def pause(self, viewer: ConsoleViewerDep, key: FromPath[str]) -> Redirect:
        """Pause a reward (or resume a paused one): paused rewards stay in the catalog but cannot be redeemed."""
        async with viewer.services.db.write() as session:
            row = await rewards_repo.reward_row(session, brand_id=viewer.brand.id, key=key)
            spec = rewards_repo.to_reward(row.spec).spec
            await rewards_service.put_reward(
                session,
                brand_id=viewer.brand.id,
                spec=msgspec.structs.replace(spec, paused=not spec.paused),
                now=viewer.now,
            )
        return done("/console/rewards", "saved")

    @post("/{key:str}/codes", status_code=303)
    async def upload(
        self,
        request: Request[Any, Any, Any],
        viewer: ConsoleViewerDep,
        key: FromPath[str],
        data: Annotated[dict[str, Any], Body(media_type=RequestEncodingType.MULTI_PART)],
    ) -> Redirect | Template:
        """Add the codes of a CSV file (or pasted text) to the reward's pool."""
        text = str(data.get("codes_text") or "")
        upload = data.get("codes_file")
        if isinstance(upload, UploadFile):
            content = await upload.read()
            if len(content) > MAX_UPLOAD:
                raise DefinitionError(viewer.t("The file is larger than 4 MiB."), field="codes_file")
            text = content.decode("utf-8-sig", errors="replace") + "\n" + text
        async with viewer.services.db.write() as session:
            await rewards_service.import_codes(
                session, brand_id=viewer.brand.id, reward_key=key, csv_text=text, now=viewer.now
            )
        return done(f"/console/rewards/{key}", "saved")


class RedemptionsPageController(Controller):
    """Redemptions: search by member, code, reward or id; cancel an issued one."""

    path = "/console/redemptions"
    include_in_schema = False
    dependencies = CONSOLE_DEPENDENCIES
    exception_handlers = CONSOLE_EXCEPTION_HANDLERS

    @get("/", name="console:redemptions")
    async def redemptions(
        self,
        request: Request[Any, Any, Any],
        viewer: ConsoleViewerDep,
        q: Annotated[str, QueryParameter(max_length=100)] = "",
        status: Annotated[str, QueryParameter(max_length=16)] = "",
    ) -> Template:
        """The latest redemptions matching the search."""
        status = status if status in ("issued", "used", "cancelled") else ""
        async with viewer.services.db.read() as session:
            found = await rewards_repo.search_redemptions(
                session, brand_id=viewer.brand.id, query=q.strip(), status=status or None, limit=100
            )
        return render(
            viewer, "console/redemptions.html.jinja2", active="redemptions", request=request, redemptions=found, q=q,
            status=status,
        )  # fmt: skip

    @post("/{redemption_id:str}/cancel", status_code=303)
    async def cancel(self, viewer: ConsoleViewerDep, redemption_id: FromPath[str], data: FormData) -> Redirect:
        """Cancel an issued redemption: its points come back (keeping their expiry), stock and code too."""
        async with viewer.services.db.write() as session:
            await rewards_service.cancel(
                session, viewer.brand, redemption_id=redemption_id, now=viewer.now,
                reason=data.get("reason", "").strip()[:500] or "cancelled in the console",
            )  # fmt: skip
        viewer.services.outbox.notify()
        return done("/console/redemptions", "saved")
