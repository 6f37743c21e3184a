"""Earning rules of the brand: list, create or replace, delete (secret key)."""

from __future__ import annotations

from litestar import Controller, delete, get, put
from litestar.di import Provide
from litestar.params import FromPath, JSONBody

from engine import rules_store
from engine.earning import EarningRuleSpec, rule_to_spec
from engine.errors import ValidationError
from web.deps import PrincipalDep, ServicesDep, provide_secret_principal


class EarningRulesController(Controller):
    """Points for event types: fixed or per unit, with filters, daily caps and multipliers."""

    path = "/v1/earning-rules"
    tags = ("earning rules",)
    dependencies = {"principal": Provide(provide_secret_principal)}  # noqa: RUF012

    @get("/", summary="List earning rules")
    async def list_rules(self, services: ServicesDep, principal: PrincipalDep) -> list[EarningRuleSpec]:
        """Every earning rule of the brand."""
        async with services.db.read() as session:
            rules = await rules_store.load_rules(session, principal.brand.id)
        return [rule_to_spec(r) for r in rules]

    @put("/{key:str}", summary="Create or replace an earning rule")
    async def put_rule(
        self,
        key: FromPath[str],
        data: JSONBody[EarningRuleSpec],
        services: ServicesDep,
        principal: PrincipalDep,
    ) -> EarningRuleSpec:
        """Validated before it is stored: a mistake answers 422 naming its path, and nothing changes."""
        if data.key != key:
            raise ValidationError(f"the body's key {data.key!r} differs from the path's {key!r}", field="$.key")
        rule = await rules_store.put_rule(services.db, brand_id=principal.brand.id, spec=data, now=services.clock.now())
        return rule_to_spec(rule)

    @delete("/{key:str}", summary="Delete an earning rule")
    async def delete_rule(self, key: FromPath[str], services: ServicesDep, principal: PrincipalDep) -> None:
        """Points already earned stay in the ledger."""
        await rules_store.delete_rule(services.db, brand_id=principal.brand.id, key=key)
