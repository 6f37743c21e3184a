"""Text that knows its language: brand content shown in a page of another language is marked with ``lang``."""

from __future__ import annotations

from typing import TYPE_CHECKING

import msgspec

if TYPE_CHECKING:
    from engine.texts import Translations


class Localized(msgspec.Struct, frozen=True, kw_only=True):
    """A brand's text and the language it is written in (``None``: unknown)."""

    text: str
    lang: str | None = None

    def __str__(self) -> str:
        """The text itself."""
        return self.text


def in_language(texts: Translations, field: str, locale: str | None, default: str) -> Localized:
    """A definition's ``field`` in ``locale`` with the language it is written in (unknown for a plain string)."""
    text, lang = texts.get(field, locale, default)
    return Localized(text=text, lang=lang)
