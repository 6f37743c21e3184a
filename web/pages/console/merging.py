"""Console edits keep what their forms do not show: texts given per locale and a challenge's prerequisites.

The console's forms edit a definition's default-locale text and the common settings. Saving one must not
drop what the form cannot show, so the stored spec's other locales and its ``requires`` are carried over.
"""

from __future__ import annotations

from typing import Any

from engine.texts import DEFAULT_LOCALE

TEXT_FIELDS = ("title", "description", "name")
KEPT_FIELDS = ("requires",)


def keep_unshown(edited: dict[str, Any], stored: dict[str, Any] | None) -> dict[str, Any]:
    """``edited`` with the stored per-locale texts (the form's text as the default locale's) and kept fields."""
    if stored is None:
        return edited
    merged = dict(edited)
    for field in TEXT_FIELDS:
        before, now = stored.get(field), edited.get(field)
        if isinstance(before, dict) and before and isinstance(now, str) and now:
            merged[field] = {**before, DEFAULT_LOCALE: now}
    for field in KEPT_FIELDS:
        if field in stored and field not in edited:
            merged[field] = stored[field]
    return merged
