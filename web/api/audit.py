"""``GET /v1/audit``: the brand-side audit log (who changed what, when), newest first."""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, get
from litestar.di import Provide
from litestar.params import QueryParameter

from engine import audit
from engine.audit import AuditPage
from web.deps import PrincipalDep, ServicesDep, provide_secret_principal


class AuditController(Controller):
    """The audit log (secret key)."""

    path = "/v1/audit"
    tags = ("audit",)
    dependencies = {"principal": Provide(provide_secret_principal)}  # noqa: RUF012

    @get("/", summary="Audit log of brand-side changes")
    async def entries(
        self,
        services: ServicesDep,
        principal: PrincipalDep,
        limit: Annotated[int, QueryParameter(ge=1, le=200, description="Entries per page.")] = 50,
        before: Annotated[
            int | None, QueryParameter(ge=1, le=2**62, description="Cursor: entries older than this id.")
        ] = None,
        action: Annotated[
            str | None, QueryParameter(max_length=64, description="Only actions starting with this, e.g. `key.`.")
        ] = None,
        actor: Annotated[str | None, QueryParameter(max_length=200, description="Only actors containing this.")] = None,
    ) -> AuditPage:
        """Program applies, key changes, adjustments, erasures, review decisions…: who, when, what."""
        async with services.db.read() as session:
            return await audit.entries(
                session, brand_id=principal.brand.id, limit=limit, before=before, action=action, actor=actor
            )
