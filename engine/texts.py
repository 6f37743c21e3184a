"""Brands' own texts in several languages: a plain string, or one text per locale.

A definition's name or description may be written either way::

    name: Coffee lover
    name: {en: Coffee lover, it: Amante del caffè}

Both are accepted, stored as given and exported back as given, so plain strings keep working. A
per-locale text is shown in the member's language; when it has none, in its language without the region
(``it`` for ``it-IT``), then in the default locale (English), then in the first language given. A plain
string is shown as it is, in whatever language the brand wrote it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated

import msgspec

from engine.errors import DefinitionError

DEFAULT_LOCALE = "en"
LocaleTag = Annotated[str, msgspec.Meta(min_length=2, max_length=16, pattern=r"^[a-z]{2,3}([_-][A-Za-z0-9]{2,8})*$")]
#: A short text (name, title) per locale, or a plain string.
Name = str | dict[LocaleTag, Annotated[str, msgspec.Meta(max_length=200)]]
#: A longer text (description) per locale, or a plain string.
LongText = str | dict[LocaleTag, Annotated[str, msgspec.Meta(max_length=2000)]]


def pick(
    value: str | Mapping[str, str] | None, locale: str | None, *, default: str = DEFAULT_LOCALE
) -> tuple[str, str | None]:
    """``(text, its language)`` of ``value`` for ``locale``; the language is ``None`` for a plain string."""
    if value is None:
        return "", None
    if isinstance(value, str):
        return value, None
    wanted = (locale or "").replace("_", "-")
    for candidate in (wanted, wanted.split("-")[0], default):
        if candidate and value.get(candidate):
            return value[candidate], candidate
    for code, text in value.items():
        if text:
            return text, code
    return "", None


def text_in(value: str | Mapping[str, str] | None, locale: str | None = None, *, default: str = DEFAULT_LOCALE) -> str:
    """The text of ``value`` for ``locale`` (see :func:`pick`); the default locale's without one."""
    return pick(value, locale, default=default)[0]


def check_text(value: str | Mapping[str, str] | None, *, field: str, required: bool = False) -> None:
    """Refuse a per-locale text with no text in it (or an empty required one).

    Raises:
        DefinitionError: an empty map, or only empty texts, where a text is required.
    """
    if value is None:
        return
    if isinstance(value, Mapping) and not value:
        raise DefinitionError("give the text in at least one locale (or as a plain string)", field=field)
    if required and not text_in(value):
        raise DefinitionError("the text must not be empty", field=field)


class Translations(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """The texts of one definition that were given per locale, by field (``name``, ``description``…).

    A compiled definition keeps its plain default-locale text in its usual fields (so every existing reader
    keeps working) and these beside them, for whatever is shown to a member in their language. Held as
    tuples so the definition stays hashable.
    """

    fields: tuple[tuple[str, tuple[tuple[str, str], ...]], ...] = ()

    def texts(self, field: str) -> dict[str, str]:
        """The per-locale texts of ``field`` (empty when it was a plain string)."""
        return next((dict(pairs) for name, pairs in self.fields if name == field), {})

    def get(self, field: str, locale: str | None, default: str) -> tuple[str, str | None]:
        """``(text, language)`` of ``field`` for ``locale``; ``(default, None)`` when not given per locale."""
        given = self.texts(field)
        return pick(given, locale) if given else (default, None)

    def text(self, field: str, locale: str | None, default: str) -> str:
        """The text of ``field`` for ``locale`` (``default`` when it was not given per locale)."""
        return self.get(field, locale, default)[0]

    def given(self, field: str, default: str) -> str | dict[str, str]:
        """``field`` as the brand wrote it: its per-locale texts, else the plain ``default``."""
        return self.texts(field) or default


NO_TRANSLATIONS = Translations()


def translations(**values: str | Mapping[str, str] | None) -> Translations:
    """The per-locale ones among ``values`` (plain strings are the default text and are left out)."""
    fields = tuple(
        (name, tuple(value.items())) for name, value in values.items() if isinstance(value, Mapping) and value
    )
    return Translations(fields=fields) if fields else NO_TRANSLATIONS
