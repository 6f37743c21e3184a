"""Readable colours from a brand's accent: text on the accent, and a shade of it that reads on white (WCAG AA)."""

from __future__ import annotations

import re

HEX = re.compile(r"^#[0-9a-fA-F]{6}$")
DARK_INK = "#161a26"
LIGHT_INK = "#ffffff"


def _channel(value: int) -> float:
    c = value / 255
    return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4


def luminance(color: str) -> float:
    """The relative luminance of ``#rrggbb`` (WCAG 2)."""
    r, g, b = (int(color[i : i + 2], 16) for i in (1, 3, 5))
    return 0.2126 * _channel(r) + 0.7152 * _channel(g) + 0.0722 * _channel(b)


def contrast(a: str, b: str) -> float:
    """The contrast ratio of two colours (1 to 21)."""
    high, low = sorted((luminance(a), luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def ink_on(color: str) -> str:
    """White or near-black, whichever reads better on ``color``."""
    return LIGHT_INK if contrast(color, LIGHT_INK) >= contrast(color, DARK_INK) else DARK_INK


def readable_on_white(color: str, *, ratio: float = 4.5) -> str:
    """``color`` darkened just enough to reach ``ratio`` against white (links, highlighted text)."""
    r, g, b = (int(color[i : i + 2], 16) for i in (1, 3, 5))
    for step in range(21):
        factor = 1 - step * 0.05
        shade = f"#{int(r * factor):02x}{int(g * factor):02x}{int(b * factor):02x}"
        if contrast(shade, LIGHT_INK) >= ratio:
            return shade
    return DARK_INK


def _mix(color: str, toward: str, share: float) -> str:
    pairs = ((int(color[i : i + 2], 16), int(toward[i : i + 2], 16)) for i in (1, 3, 5))
    return "#" + "".join(f"{round(a + (b - a) * share):02x}" for a, b in pairs)


def clamped(color: str, *backgrounds: str, ratio: float) -> str:
    """``color`` moved toward black or white until it reaches ``ratio`` on every one of ``backgrounds``.

    The backgrounds are all light or all dark (the first decides which way the colour moves).
    """

    def reaches(shade: str) -> bool:
        return all(contrast(shade, background) >= ratio for background in backgrounds)

    if reaches(color):
        return color
    toward = DARK_INK if luminance(backgrounds[0]) > 0.18 else LIGHT_INK
    for step in range(1, 21):
        shade = _mix(color, toward, step * 0.05)
        if reaches(shade):
            return shade
    return toward


def soft_of(color: str) -> str:
    """The accent's pale tint (11 % of it on white) that chips, the points balance and alerts sit on."""
    return _mix(color, LIGHT_INK, 0.89)


#: The surfaces focus rings and accent text sit on, as app.css paints them: cards, the page background and
#: light widget rows; dark-theme widgets and their rows.
LIGHT_SURFACES = ("#ffffff", "#f5f6fa", "#f7f8fb")
DARK_SURFACES = ("#121624", "#1a1f31")
LIGHT_SURFACE, DARK_SURFACE = LIGHT_SURFACES[0], DARK_SURFACES[0]
#: WCAG 2.1 SC 1.4.11: a focus indicator needs 3:1 against what surrounds it.
FOCUS_RATIO = 3.0
#: WCAG 2.1 SC 1.4.3: text needs 4.5:1.
TEXT_RATIO = 4.5


def accent_variables(color: str | None) -> dict[str, str]:
    """CSS custom properties for an accent colour (empty when none or invalid).

    Focus rings derive from the accent but are clamped to 3:1 against every light and dark surface; the
    accent's text colour reaches 4.5:1 on those light surfaces and on the accent's own pale tint.
    """
    if not color or not HEX.match(color):
        return {}
    color = color.lower()
    soft = soft_of(color)
    return {
        "--accent": color,
        "--accent-ink": ink_on(color),
        "--accent-soft": soft,
        "--accent-strong": clamped(readable_on_white(color), soft, *LIGHT_SURFACES, ratio=TEXT_RATIO),
        "--focus-ring": clamped(color, *LIGHT_SURFACES, ratio=FOCUS_RATIO),
        "--focus-ring-dark": clamped(color, *DARK_SURFACES, ratio=FOCUS_RATIO),
    }
