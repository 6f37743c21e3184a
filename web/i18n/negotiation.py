"""Which of the supported languages a request gets: Babel's locale parsing and negotiation."""

from __future__ import annotations

from babel import Locale, UnknownLocaleError

from web.i18n.catalogs import DEFAULT, SUPPORTED


def normalise(tag: str | None) -> str | None:
    """The supported language of a BCP 47 tag (``it-IT`` → ``it``), or ``None``."""
    if not tag or not tag.strip():
        return None
    try:
        locale = Locale.parse(tag.strip(), sep="-" if "-" in tag else "_")
    except (ValueError, TypeError, UnknownLocaleError):
        return None
    return locale.language if locale.language in SUPPORTED else None


def _ranked(header: str) -> list[str]:
    ranked: list[tuple[float, int, str]] = []
    for index, part in enumerate(header.split(",")):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                quality = 0.0
        if tag and tag != "*" and quality > 0:
            ranked.append((-quality, index, tag.strip().replace("-", "_")))
    return [tag for _, _, tag in sorted(ranked)]


def from_accept_language(header: str | None) -> str | None:
    """The best supported language of an ``Accept-Language`` header, or ``None``."""
    if not header:
        return None
    found = Locale.negotiate(_ranked(header), list(SUPPORTED))
    return found.language if found is not None else None


def negotiate(*candidates: str | None, accept_language: str | None = None) -> str:
    """The first supported language among ``candidates``, then ``Accept-Language``, then English."""
    for candidate in candidates:
        lang = normalise(candidate)
        if lang is not None:
            return lang
    return from_accept_language(accept_language) or DEFAULT
