"""Members' erasure requests over HTTP (secret key): list pending ones, complete one with the erasure."""

from __future__ import annotations

from litestar import Controller, get, post
from litestar.di import Provide
from litestar.params import FromPath

from engine import members as members_repo
from engine.errors import NotFound
from engine.tenants import Brand
from enrollment import service as enrollment
from enrollment.service import ErasureRequest
from web.deps import PrincipalDep, Services, ServicesDep, provide_secret_principal


async def complete_erasure(services: Services, brand: Brand, request_id: int) -> str:
    """Erase the member of a pending request (identity everywhere, every domain's hook) and close it.

    Raises:
        NotFound: no pending request with this id.
    """
    now = services.clock.now()
    async with services.db.write() as session:
        external_id = await enrollment.complete_erasure(session, brand_id=brand.id, request_id=request_id, now=now)
        if external_id is None:
            raise NotFound("no pending erasure request with this id", field="request_id")
        member = await members_repo.erase_member(session, brand_id=brand.id, external_id=external_id, now=now)
        for hook in services.erasure_hooks:
            await hook(session, brand, member.id)
    return external_id


class ErasureRequestsController(Controller):
    """Erasure requests members made in the portal."""

    path = "/v1/erasure-requests"
    tags = ("members",)
    dependencies = {"principal": Provide(provide_secret_principal)}  # noqa: RUF012

    @get("/", summary="Pending erasure requests")
    async def pending(self, services: ServicesDep, principal: PrincipalDep) -> list[ErasureRequest]:
        """Requests members made from the portal and the brand has not completed, oldest first."""
        async with services.db.read() as session:
            return await enrollment.erasure_requests(session, brand_id=principal.brand.id)

    @post("/{request_id:int}/complete", summary="Complete an erasure request", status_code=200)
    async def complete(
        self, request_id: FromPath[int], services: ServicesDep, principal: PrincipalDep
    ) -> dict[str, str]:
        """Erase the member (as `DELETE /v1/members/{id}`) and close the request."""
        await complete_erasure(services, principal.brand, request_id)
        return {"status": "erased"}
