"""Integrations: events from Segment, CloudEvents producers and e-commerce platforms, and inbound idempotency.

Pure mappers (:mod:`integrations.segment`, :mod:`integrations.cloudevents`, :mod:`integrations.shop`) turn a
source's payload into :class:`engine.events.Event` values the pipeline already knows; the stores keep each
brand's source settings, the retraction requests refunds produce and the ``Idempotency-Key`` records.
"""
