"""Italian and English for the portal, console and widgets: gettext catalogs and CLDR formatting (Babel).

The member's locale decides (``it``, ``it-IT`` → Italian); then an explicit choice (``?lang=``), then the
browser's ``Accept-Language``; English otherwise. Messages are English msgids looked up in the gettext
catalogs under ``web/locales`` (see ``docs/web.md`` for the ``pybabel`` workflow); placeholders are
``%(name)s``; Jinja escapes both the message and every interpolated value.
"""

from __future__ import annotations

from web.i18n.catalogs import DEFAULT, SUPPORTED, translations
from web.i18n.labels import LABELS, N_
from web.i18n.localized import Localized
from web.i18n.negotiation import from_accept_language, negotiate, normalise
from web.i18n.translator import Translator

__all__ = [
    "DEFAULT",
    "LABELS",
    "N_",
    "SUPPORTED",
    "Localized",
    "Translator",
    "from_accept_language",
    "negotiate",
    "normalise",
    "translations",
]
