"""One per-brand cache of definitions, keyed by the brand's configuration version.

Every definition change bumps ``brands.config_version`` in the same transaction
(:func:`engine.tenants.bump_config_version`), so a cached value is current exactly while the version it was
built at is the brand's version. Each domain keeps one :class:`BrandCache` per process; the version is
read once per unit of work (:meth:`engine.pipeline.UnitOfWork.config_version`) or once per request.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Generic, TypeVar

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Hashable

    from engine.ids import BrandId

V = TypeVar("V")

#: Brands remembered per process before the cache starts over (bounds memory with many tenants).
MAX_BRANDS = 10_000


class BrandCache(Generic[V]):
    """Values per brand, valid while the brand's ``config_version`` (and any extra key) is unchanged."""

    __slots__ = ("_entries",)

    def __init__(self) -> None:
        self._entries: dict[BrandId, tuple[Hashable, V]] = {}

    async def get(self, brand_id: BrandId, version: Hashable, load: Callable[[], Awaitable[V]]) -> V:
        """The cached value for ``brand_id`` at ``version``, loading (and keeping) it on a miss."""
        hit = self._entries.get(brand_id)
        if hit is not None and hit[0] == version:
            return hit[1]
        value = await load()
        if len(self._entries) >= MAX_BRANDS:
            self._entries.clear()
        self._entries[brand_id] = (version, value)
        return value

    def invalidate(self, brand_id: BrandId) -> None:
        """Forget ``brand_id`` (the next :meth:`get` loads again)."""
        self._entries.pop(brand_id, None)
