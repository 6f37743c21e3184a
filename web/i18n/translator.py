"""Messages, plurals and CLDR number/date/relative-time formatting in one language."""

from __future__ import annotations

import datetime as dt
from typing import Literal
from zoneinfo import ZoneInfo

from babel import Locale
from babel.dates import format_date, format_skeleton, format_time, format_timedelta
from babel.numbers import format_decimal

from web.i18n.catalogs import DEFAULT, SUPPORTED, translations
from web.i18n.labels import LABELS

MINUS = "\N{MINUS SIGN}"


class Translator:
    """Messages and number/date formatting in one language (``t("English text", name=value)``)."""

    def __init__(self, lang: str) -> None:
        self.lang = lang if lang in SUPPORTED else DEFAULT
        self.locale = Locale.parse(self.lang)
        self._catalog = translations(self.lang)

    def gettext(self, message: str) -> str:
        """The translation of ``message`` (the message itself when it has none)."""
        return self._catalog.gettext(message)

    def ngettext(self, singular: str, plural: str, count: int) -> str:
        """The plural form of a message for ``count`` (by the language's CLDR plural rule)."""
        return self._catalog.ngettext(singular, plural, count)

    def npgettext(self, context: str, singular: str, plural: str, count: int) -> str:
        """:meth:`ngettext` in a message context."""
        return self._catalog.npgettext(context, singular, plural, count)

    def __call__(self, message: str, /, **values: object) -> str:
        """``message`` translated, with ``%(name)s`` placeholders filled in from ``values``."""
        return self.gettext(message) % values

    def pgettext(self, context: str, message: str, /, **values: object) -> str:
        """``message`` in ``context`` (for an English word that translates in more than one way)."""
        text = str(self._catalog.pgettext(context, message))
        return text % values

    def plural(self, singular: str, plural: str, count: int, /, **values: object) -> str:
        """The form for ``count``; ``%(count)s`` is the count formatted for the language."""
        return self.ngettext(singular, plural, count) % {"count": self.number(count), **values}

    def label(self, family: str, value: str) -> str:
        """A value of a run-time family (``label("rule", "streak")`` → ``Streak``), or the value itself."""
        message = LABELS.get(family, {}).get(value)
        return self.gettext(message) if message is not None else value

    def event(self, event_type: str) -> str:
        """A member-facing name of an event type (``review`` → ``Review``), translated when known."""
        message = LABELS["event"].get(event_type)
        if message is not None:
            return self.gettext(message)
        return event_type.replace("_", " ").replace("-", " ").capitalize()

    def number(self, value: float, decimals: int | None = None) -> str:
        """``1234.5`` as ``1,234.5`` (English) or ``1.234,5`` (Italian), by CLDR.

        Without ``decimals``, integers show none and other numbers one; with it, exactly that many.
        """
        if decimals is not None:
            pattern = "#,##0." + "0" * decimals if decimals > 0 else "#,##0"
            return format_decimal(value, format=pattern, locale=self.locale)
        fractional = isinstance(value, float) and not value.is_integer()
        if not fractional:
            return format_decimal(int(value), format="#,##0", locale=self.locale)
        return format_decimal(value, format="#,##0.0", locale=self.locale)

    def factor(self, value: float) -> str:
        """A multiplier as written (``1.25`` → ``1.25`` / ``1,25``, ``1.5`` → ``1.5``, ``2`` → ``2``), by CLDR."""
        return format_decimal(value, format="#,##0.###", locale=self.locale)

    def signed(self, value: int) -> str:
        """A points amount with its sign (``+50``, ``−20``)."""
        return ("+" if value > 0 else MINUS if value < 0 else "") + self.number(abs(value))

    def date(self, value: dt.date | dt.datetime, tz: ZoneInfo | None = None) -> str:
        """``20 nov 2026`` / ``Nov 20, 2026`` (CLDR medium date); an instant is shown in ``tz``."""
        if isinstance(value, dt.datetime) and tz is not None:
            value = value.astimezone(tz)
        day = value.date() if isinstance(value, dt.datetime) else value
        return format_date(day, "medium", locale=self.locale)

    def datetime(self, value: dt.datetime, tz: ZoneInfo) -> str:
        """A date with the local time (24-hour clock in both languages)."""
        local = value.astimezone(tz)
        return f"{self.date(local)}, {format_time(local.time(), 'HH:mm', locale=self.locale)}"

    def short_date(self, value: dt.date) -> str:
        """``20/11`` (Italian) or ``11/20`` (English), for chart axes (CLDR skeleton ``Md``)."""
        return format_skeleton("Md", value, locale=self.locale)

    def until(self, deadline: dt.datetime, now: dt.datetime) -> str:
        """How long is left before ``deadline``: ``3 days left``, ``5 hours left``, ``ended``."""
        seconds = (deadline - now).total_seconds()
        if seconds <= 0:
            return self.gettext("ended")
        if seconds < 3600:
            count = max(1, int(seconds // 60))
            return self.plural("%(count)s minute left", "%(count)s minutes left", count)
        if seconds < 2 * 86400:
            return self.plural("%(count)s hour left", "%(count)s hours left", int(seconds // 3600))
        return self.plural("%(count)s day left", "%(count)s days left", int(seconds // 86400))

    def since(self, moment: dt.datetime, now: dt.datetime) -> str:
        """How long ago ``moment`` was (CLDR relative time): ``just now``, ``3 hours ago``, ``2 days ago``."""
        seconds = (now - moment).total_seconds()
        if seconds < 60:
            return self.gettext("just now")
        units: tuple[tuple[Literal["day", "hour", "minute"], int], ...] = (
            ("day", 86400),
            ("hour", 3600),
            ("minute", 60),
        )
        unit, size = next((u, s) for u, s in units if seconds >= s)
        whole = dt.timedelta(seconds=-(int(seconds // size) * size))
        return format_timedelta(whole, granularity=unit, threshold=1e9, add_direction=True, locale=self.locale)
