"""Typed identifiers used across the packages.

Surrogate keys are database integers; the ``NewType`` wrappers keep a brand id from being passed where a
member id is expected.
"""

from typing import NewType

BrandId = NewType("BrandId", int)
MemberId = NewType("MemberId", int)
EventId = NewType("EventId", int)
