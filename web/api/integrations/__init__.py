"""Inbound sources: the Segment mount, Shopify and WooCommerce webhooks, and their per-brand settings."""

from __future__ import annotations

from web.api.integrations.hooks import HooksController
from web.api.integrations.segment import SegmentController
from web.api.integrations.settings import IntegrationsController

routes = (SegmentController, HooksController, IntegrationsController)

__all__ = ["HooksController", "IntegrationsController", "SegmentController", "routes"]
