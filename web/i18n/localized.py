"""Text that knows its language: brand content shown in a page of another language is marked with ``lang``."""

from __future__ import annotations

import msgspec


class Localized(msgspec.Struct, frozen=True, kw_only=True):
    """A brand's text and the language it is written in (``None``: unknown)."""

    text: str
    lang: str | None = None

    def __str__(self) -> str:
        """The text itself."""
        return self.text
