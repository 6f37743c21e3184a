"""HTTP endpoints and pipeline wiring of the `challenges` package (filled in by its issue)."""

from __future__ import annotations

from typing import Any

from engine.pipeline import Processor
from engine.tenants import Brand
from web.deps import Services

routes: list[Any] = []


def processors(services: Services) -> list[Processor]:
    """The pipeline steps this package contributes, in order."""
    return []


async def startup(services: Services) -> None:
    """Work to do once the app's services exist (e.g. register domain services in `services.extras`)."""


async def seed_demo(services: Services, brand: Brand) -> None:
    """Create this package's demo definitions for the demo brand (events are sent afterwards)."""
