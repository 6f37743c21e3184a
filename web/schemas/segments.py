"""Request and response bodies of the segments and offers endpoints."""

from __future__ import annotations

from typing import Any

import msgspec

from segments.experiments import ArmReport
from segments.models import Clause, SegmentDef
from segments.offers import OfferDef


class SampleMember(msgspec.Struct, kw_only=True):
    """A member of a segment's sample."""

    external_id: str
    display_name: str


class SegmentOut(msgspec.Struct, kw_only=True):
    """A segment with its live member count and a sample of its members."""

    segment: SegmentDef
    members: int
    sample: list[SampleMember]


class SegmentsOut(msgspec.Struct, kw_only=True):
    """The brand's segments (definitions only: ``GET /v1/segments/{slug}`` counts members)."""

    segments: list[SegmentDef]


class ClauseOut(msgspec.Struct, kw_only=True):
    """One clause of an explanation: the clause, the member's value of its metric, whether it held."""

    clause: Clause
    value: Any
    held: bool


class ExplanationOut(msgspec.Struct, kw_only=True):
    """Why a member is (or is not) in a segment."""

    segment: str
    member: str
    in_segment: bool
    match: str
    clauses: list[ClauseOut]


class OfferOut(msgspec.Struct, kw_only=True):
    """An offer and the points it has given of its budget."""

    offer: OfferDef
    given: int


class OffersOut(msgspec.Struct, kw_only=True):
    """The brand's offers."""

    offers: list[OfferOut]


class OfferReportOut(msgspec.Struct, kw_only=True):
    """An offer's results per arm (one arm named ``""`` without an experiment)."""

    offer: str
    budget: int | None
    given: int
    arms: list[ArmReport]
