"""The whole-program document: a brand's earning rules, campaigns, challenges, badges and boards in one file.

One YAML or JSON document, validated as a whole, applied atomically, versioned, exported and simulated.

Sections plug in through :data:`SECTIONS`: each names the document keys it owns and how to parse, apply
(inside the caller's transaction, returning human-readable changes) and export them. A domain package
joins by providing a ``config`` module with ``parse_section(data, *, path)``,
``async apply_section(session, *, brand_id, defs, now)`` and ``async export_section(session, *, brand_id)``
and one line in :data:`DOMAIN_SECTIONS`.

A section absent from a document is left as it is; a section present is the brand's new content for it
(for earning rules, campaigns and challenges what it leaves out is removed: earning rules are deleted,
campaigns and challenges archived with their progress kept; the badges and leaderboards packages decide
for their own sections).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Annotated, Any

import msgspec
import yaml
from litestar import Controller, Request, Response, get, post, put
from litestar.di import Provide
from litestar.params import QueryParameter
from sqlalchemy.ext.asyncio import AsyncSession

from challenges import backfill, service
from challenges import versions as repository
from challenges.config import compile_program, parse_campaigns, parse_challenges, parse_when
from challenges.simulate import SimulationReport, simulate
from engine import audit
from engine.db import Database
from engine.earning import EarningRule, build_rule
from engine.errors import Conflict, DefinitionError, NotFound, ValidationError
from engine.rules_store import load_rules
from engine.tenants import Brand, KeyCache
from engine.textcheck import nul_path
from web.deps import PrincipalDep, ServicesDep, provide_secret_principal
from web.openapi import JsonOrYaml, problems
from web.program_sections import DOMAIN_SECTIONS, Section, sections

FORMAT = 1
MAX_VERSIONS_LISTED = 200


class ApplyResult(msgspec.Struct, frozen=True, kw_only=True):
    """What applying a program document did (or, for a dry run, would do)."""

    dry_run: bool
    changed: bool
    version: int
    """The program version now current (for a dry run: the one the changes would be applied on top of)."""
    changes: list[str]
    backfills: list[backfill.BackfillReport] = []


# --- reading, validating, applying, exporting --------------------------------------------------------


class _NoAliasLoader(yaml.SafeLoader):
    """Safe YAML without anchors/aliases, so a small document cannot expand into a huge one."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            raise yaml.composer.ComposerError(None, None, "YAML aliases are not supported")
        return super().compose_node(parent, index)


def load_document(body: bytes, *, content_type: str = "") -> dict[str, Any]:
    """Decode a program document from JSON (``application/json``) or YAML (anything else).

    Raises:
        ValidationError: not valid JSON/YAML, or not an object at the top.
    """
    try:
        if "json" in content_type:
            data = msgspec.json.decode(body)
        else:
            data = yaml.load(body.decode("utf-8"), Loader=_NoAliasLoader)
    except (msgspec.DecodeError, yaml.YAMLError, UnicodeDecodeError) as exc:
        raise ValidationError(f"the program document is not valid JSON or YAML: {exc}", field="$") from exc
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ValidationError("a program document is an object (sections by name)", field="$")
    nul = nul_path(data)
    if nul:
        raise ValidationError(f"a string holds a NUL character, which cannot be stored (at {nul})", field=nul)
    return data


def parse_program(document: Mapping[str, Any]) -> list[tuple[Section, Any]]:
    """Validate every section of ``document``; returns the present sections with their parsed definitions.

    Raises:
        DefinitionError: an unknown or unavailable section, a wrong format, or any invalid definition (by path).
    """
    known = {key for section in sections() for key in section.keys}
    for key in document:
        if key == "format":
            if document[key] != FORMAT:
                raise DefinitionError(f"this server reads program format {FORMAT}", field="$.format")
        elif key not in known:
            hint = " (that package is not installed here)" if key in dict(DOMAIN_SECTIONS) else ""
            raise DefinitionError(f"unknown section {key!r}{hint}; known: {', '.join(sorted(known))}", field=f"$.{key}")
    parsed: list[tuple[Section, Any]] = []
    for section in sections():
        present = {key: document[key] for key in section.keys if key in document}
        if present:
            parsed.append((section, section.parse(present)))
    return parsed


async def export_program(session: AsyncSession, *, brand: Brand) -> dict[str, Any]:
    """The brand's whole program as a document :func:`apply_program` accepts."""
    document: dict[str, Any] = {"format": FORMAT}
    for section in sections():
        document.update(await section.export(session, brand))
    return document


async def record_change(
    session: AsyncSession, *, brand: Brand, changes: list[str], source: str, now: datetime
) -> int | None:
    """Record a new program version (the exported document) if anything changed; returns its number."""
    if not changes:
        return None
    document = await export_program(session, brand=brand)
    return await repository.record_version(
        session, brand_id=brand.id, document=document, changes=changes, source=source, now=now
    )


class _DryRun(Exception):
    def __init__(self, changes: list[str], version: int) -> None:
        super().__init__("dry run")
        self.changes = changes
        self.version = version


async def apply_program(
    db: Database,
    *,
    brand: Brand,
    document: Mapping[str, Any],
    now: datetime,
    dry_run: bool = False,
    base_version: int | None = None,
    source: str = "api",
    actor: str = "system",
) -> ApplyResult:
    """Validate and apply a program document in one transaction (or, with ``dry_run``, report and roll back).

    After a real apply, challenges that ask for a backfill are backfilled.

    Raises:
        DefinitionError: the document is invalid; nothing changed.
        Conflict: ``base_version`` is given and the program moved on since.
    """
    parsed = parse_program(document)
    try:
        async with db.write() as session:
            await repository.lock_program(session, db=db, brand_id=brand.id)
            current = await repository.current_version(session, brand_id=brand.id)
            if base_version is not None and base_version != current:
                raise Conflict(
                    f"the program is at version {current}, not {base_version}; export it again and retry",
                    field="base_version",
                )
            changes: list[str] = []
            for section, defs in parsed:
                changes.extend(await section.apply(session, brand, defs, now))
            if dry_run:
                raise _DryRun(changes, current)
            version = await record_change(session, brand=brand, changes=changes, source=source, now=now)
            if changes:
                await audit.record(
                    session, brand_id=brand.id, actor=actor, action="program.applied", at=now,
                    target=f"version {version}", details={"changes": changes[:50], "source": source},
                )  # fmt: skip
    except _DryRun as rolled_back:
        return ApplyResult(
            dry_run=True, changed=bool(rolled_back.changes), version=rolled_back.version, changes=rolled_back.changes
        )
    if any(change.startswith("points:") for change in changes):
        KeyCache.clear_all()  # cached principals carry the brand's settings: new lots follow the new policy at once
    reports = await backfill.run_pending(db, brand=brand, now=now) if changes else []
    return ApplyResult(
        dry_run=False, changed=bool(changes), version=version or current, changes=changes, backfills=reports
    )


async def simulate_program(
    db: Database,
    *,
    brand: Brand,
    document: Mapping[str, Any] | None,
    since: datetime | None,
    until: datetime | None,
    top: int = 10,
) -> SimulationReport:
    """Replay the brand's stored events through a draft program (sections it leaves out: the current ones).

    Raises:
        DefinitionError: the draft is invalid.
    """
    document = document or {}
    parse_program(document)
    async with db.read() as session:
        if "earning_rules" in document:
            specs = service.parse_earning_rules(document["earning_rules"] or [])
            rules: tuple[EarningRule, ...] = tuple(
                build_rule(s, path=f"$.earning_rules[{i}]") for i, s in enumerate(specs)
            )
        else:
            rules = await load_rules(session, brand.id)
        stored_campaigns, stored_challenges = await service.export_definitions(session, brand_id=brand.id)
    campaigns = parse_campaigns(document["campaigns"] or [] if "campaigns" in document else stored_campaigns)
    challenges = parse_challenges(document["challenges"] or [] if "challenges" in document else stored_challenges)
    compiled = compile_program(campaigns, challenges, tz=brand.tz)
    return await simulate(db, brand=brand, challenges=compiled, rules=rules, since=since, until=until, top=top)


def dump_yaml(document: Mapping[str, Any]) -> str:
    """A document as YAML, keys in program order."""
    return yaml.safe_dump(dict(document), sort_keys=False, allow_unicode=True, width=120)


def parse_instant(value: str | None, brand: Brand, *, field: str) -> datetime | None:
    """A query or CLI instant: RFC 3339, or a local date/date-time in the brand's timezone.

    Raises:
        DefinitionError: not an ISO date or date-time.
    """
    return None if value is None else parse_when(value, brand.tz, field=field)


# --- HTTP ------------------------------------------------------------------------------------------


class ProgramController(Controller):
    """The whole program as one document: export, apply (with a dry-run diff), versions, simulation."""

    path = "/v1/program"
    tags = ("program",)
    dependencies = {"principal": Provide(provide_secret_principal)}  # noqa: RUF012

    @get("/", summary="Export the program document", operation_class=JsonOrYaml, responses=problems(404))
    async def export(
        self,
        services: ServicesDep,
        principal: PrincipalDep,
        format: Annotated[str, QueryParameter(pattern="^(json|yaml)$", description="json or yaml.")] = "json",
        version: Annotated[
            int | None, QueryParameter(ge=1, description="A recorded version instead of the current program.")
        ] = None,
    ) -> Response[Any]:
        """The brand's current program (or a recorded version) as JSON or YAML, ready to edit and apply again."""
        async with services.db.read() as session:
            if version is None:
                document = await export_program(session, brand=principal.brand)
            else:
                found = await repository.version_document(session, brand_id=principal.brand.id, version=version)
                if found is None:
                    raise NotFound(f"no program version {version}", field="version")
                document = found
        if format == "yaml":
            return Response(content=dump_yaml(document), media_type="application/yaml")
        return Response(content=document)

    @put(
        "/",
        summary="Apply a program document",
        description=(
            "Body: the program document, JSON (`Content-Type: application/json`) or YAML (any other type), with "
            "the sections `earning_rules`, `campaigns`, `challenges`, `badges`, `leaderboards`, `tiers` (see docs/program.md). "
            "A section left out is left as it is."
        ),
    )
    async def apply(
        self,
        request: Request[Any, Any, Any],
        services: ServicesDep,
        principal: PrincipalDep,
        dry_run: Annotated[bool, QueryParameter(description="Validate and report the changes; write nothing.")] = False,
        base_version: Annotated[
            int | None, QueryParameter(ge=0, description="Refuse (409) unless the program is still at this version.")
        ] = None,
    ) -> ApplyResult:
        """Apply the document in the body: JSON (`application/json`) or YAML.

        Validated as a whole (422 naming the path of the first mistake, nothing changed), applied in one
        transaction, recorded as a new version. A running challenge that changes keeps its members' progress;
        one left out is archived.
        """
        document = load_document(await request.body(), content_type=request.headers.get("content-type", ""))
        return await apply_program(
            services.db,
            brand=principal.brand,
            document=document,
            now=services.clock.now(),
            dry_run=dry_run,
            base_version=base_version,
            actor=audit.key_actor(principal.prefix),
        )

    @get("/versions", summary="Program version history")
    async def versions(
        self,
        services: ServicesDep,
        principal: PrincipalDep,
        limit: Annotated[int, QueryParameter(ge=1, le=MAX_VERSIONS_LISTED)] = 50,
    ) -> list[repository.ProgramVersion]:
        """Recorded versions, newest first, each with what changed and where the change came from."""
        async with services.db.read() as session:
            return await repository.list_versions(session, brand_id=principal.brand.id, limit=limit)

    @post(
        "/simulate",
        summary="Simulate a draft program on past events",
        status_code=200,
        description="Body: a draft program document (JSON or YAML, as for `PUT /v1/program`), or nothing.",
    )
    async def simulate(
        self,
        request: Request[Any, Any, Any],
        services: ServicesDep,
        principal: PrincipalDep,
        since: Annotated[str | None, QueryParameter(name="from", description="Start (date or date-time).")] = None,
        until: Annotated[str | None, QueryParameter(name="to", description="End, exclusive (default: now).")] = None,
        top: Annotated[int, QueryParameter(ge=1, le=100)] = 10,
    ) -> SimulationReport:
        """Replay stored events through the draft in the body (JSON or YAML; empty: the current program).

        Reports completions per challenge, points issued, badges and the top members. Writes nothing.
        """
        body = await request.body()
        document = load_document(body, content_type=request.headers.get("content-type", "")) if body.strip() else None
        brand = principal.brand
        start = parse_instant(since, brand, field="from")
        end = parse_instant(until, brand, field="to") or services.clock.now()
        if start is not None and end <= start:
            raise ValidationError("`to` must come after `from`", field="to")
        return await simulate_program(services.db, brand=brand, document=document, since=start, until=end, top=top)
