"""Generated badge art: a clean SVG (and the same drawing as PNG) when a badge has no uploaded image.

The shape and the rim say the level (bronze circle, silver hexagon, gold rosette, …, with a ribbon and
one star per level), the fill is the badge's or the brand's colour, and the centre holds a built-in icon
or the name's initials. Both renderers draw the same polygons, so the PNG matches the SVG. Pure: PNG
rendering uses Pillow, imported on first use.
"""

from __future__ import annotations

import contextlib
import functools
import io
import zlib
from typing import TYPE_CHECKING, Any
from xml.sax.saxutils import escape, quoteattr

import msgspec

from badges.criteria import initials
from badges.icons import ICONS, Point, Polygon, regular_polygon, star_points
from badges.models import COLOR, BadgeDef
from engine.errors import DefinitionError

if TYPE_CHECKING:
    from collections.abc import Mapping

SIZE = 256
BRAND_PALETTE = ("#2563eb", "#7c3aed", "#db2777", "#059669", "#ea580c", "#0891b2", "#4f46e5", "#b45309")
METALS = {
    "bronze": "#b0723a",
    "silver": "#9aa5b1",
    "gold": "#d4a72c",
    "platinum": "#6fa8bd",
    "diamond": "#4fc3e8",
}
METAL_SEQUENCE = ("#b0723a", "#9aa5b1", "#d4a72c", "#6fa8bd", "#4fc3e8", "#8b5cf6", "#e11d48")
FONT_STACK = "system-ui, -apple-system, 'Segoe UI', Roboto, Helvetica, Arial, sans-serif"
MIN_PNG = 32
MAX_PNG = 1024


class ArtSpec(msgspec.Struct, frozen=True, kw_only=True):
    """Everything the drawing depends on (hashable, so rendered PNGs can be cached by it)."""

    title: str
    color: str
    icon: str = ""
    text: str = ""
    level_index: int = -1
    """-1 for a badge without levels."""
    metal: str = ""


def brand_color(slug: str, settings: Mapping[str, Any]) -> str:
    """The brand's colour: ``settings["color"]`` when it is ``#rrggbb``, else a stable pick from a palette."""
    value = settings.get("color")
    if isinstance(value, str) and COLOR.match(value):
        return value.lower()
    return BRAND_PALETTE[zlib.crc32(slug.encode()) % len(BRAND_PALETTE)]


def art_spec(badge: BadgeDef, *, level: str, default_color: str) -> ArtSpec:
    """The drawing of ``badge`` at ``level`` (an unknown or empty level draws the plain badge)."""
    index = badge.level_index(level) if level else -1
    chosen = badge.levels[index] if index >= 0 else None
    metal = ""
    if chosen is not None:
        metal = METALS.get(chosen.key, METAL_SEQUENCE[index % len(METAL_SEQUENCE)])
    title = f"{badge.name} — {chosen.name}" if chosen is not None else badge.name
    return ArtSpec(
        title=title,
        color=badge.color or default_color,
        icon=badge.icon if badge.icon in ICONS else "",
        text="" if badge.icon in ICONS else initials(badge.name),
        level_index=index,
        metal=metal,
    )


def _rgb(color: str) -> tuple[int, int, int]:
    return int(color[1:3], 16), int(color[3:5], 16), int(color[5:7], 16)


def _hex(rgb: tuple[int, int, int]) -> str:
    return "#{:02x}{:02x}{:02x}".format(*rgb)


def shade(color: str, factor: float) -> str:
    """``color`` darkened (factor < 0) or lightened (factor > 0) by ``abs(factor)``."""
    channels = _rgb(color)
    if factor < 0:
        return _hex(tuple(round(c * (1 + factor)) for c in channels))  # type: ignore[arg-type]
    return _hex(tuple(round(c + (255 - c) * factor) for c in channels))  # type: ignore[arg-type]


def foreground(color: str) -> str:
    """White on dark fills, near-black on light ones (relative luminance, WCAG)."""

    def linear(channel: int) -> float:
        value = channel / 255
        return value / 12.92 if value <= 0.04045 else ((value + 0.055) / 1.055) ** 2.4

    red, green, blue = (linear(c) for c in _rgb(color))
    luminance = 0.2126 * red + 0.7152 * green + 0.0722 * blue
    return "#ffffff" if luminance < 0.45 else "#1f2937"


class _Layout(msgspec.Struct, frozen=True, kw_only=True):
    cx: float
    cy: float
    outer: float
    inner: float
    shape: str
    ribbons: tuple[Polygon, ...]
    stars: tuple[Polygon, ...]
    icon: tuple[Polygon, ...]


def _shape_points(shape: str, cx: float, cy: float, r: float) -> Polygon | None:
    match shape:
        case "hexagon":
            return regular_polygon(cx, cy, r, 6)
        case "rosette":
            return star_points(cx, cy, r, r * 0.9, 14)
        case "octagon":
            return regular_polygon(cx, cy, r, 8, rotation=-67.5)
    return None


def _layout(spec: ArtSpec) -> _Layout:
    leveled = spec.level_index >= 0
    cx, cy = 128.0, (116.0 if leveled else 128.0)
    outer, inner = (100.0, 84.0) if leveled else (110.0, 94.0)
    shape = ("circle", "hexagon", "rosette", "octagon")[spec.level_index % 4] if leveled else "circle"
    ribbons: tuple[Polygon, ...] = ()
    stars: tuple[Polygon, ...] = ()
    if leveled:
        left: Polygon = ((90.0, 168.0), (124.0, 180.0), (110.0, 248.0), (94.0, 230.0), (72.0, 240.0))
        ribbons = (left, tuple((256.0 - x, y) for x, y in left))
        count = min(spec.level_index + 1, 5)
        start = cx - 9.0 * (count - 1)
        stars = tuple(star_points(start + 18.0 * i, cy + (outer + inner) / 2, 7.0, 3.0, 5) for i in range(count))
    icon: tuple[Polygon, ...] = ()
    if spec.icon:
        scale = inner * 1.05 / 24.0
        ox, oy = cx - 12.0 * scale, cy - 12.0 * scale
        icon = tuple(
            tuple((round(ox + x * scale, 2), round(oy + y * scale, 2)) for x, y in poly) for poly in ICONS[spec.icon]
        )
    return _Layout(cx=cx, cy=cy, outer=outer, inner=inner, shape=shape, ribbons=ribbons, stars=stars, icon=icon)


def _points_attr(points: Polygon) -> str:
    return " ".join(f"{x:g},{y:g}" for x, y in points)


def _svg_shape(shape: str, cx: float, cy: float, r: float, fill: str) -> str:
    points = _shape_points(shape, cx, cy, r)
    if points is None:
        return f'<circle cx="{cx:g}" cy="{cy:g}" r="{r:g}" fill="{fill}"/>'
    return f'<polygon points="{_points_attr(points)}" fill="{fill}"/>'


def render_svg(spec: ArtSpec) -> str:
    """The badge as a standalone SVG document (256×256, scalable)."""
    layout = _layout(spec)
    rim = spec.metal or shade(spec.color, -0.3)
    ink = foreground(spec.color)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{SIZE}" height="{SIZE}" viewBox="0 0 {SIZE} {SIZE}" '
        f'role="img" aria-label={quoteattr(spec.title)}>',
        f"<title>{escape(spec.title)}</title>",
    ]
    parts.extend(f'<polygon points="{_points_attr(p)}" fill="{shade(spec.color, -0.2)}"/>' for p in layout.ribbons)
    parts.append(_svg_shape(layout.shape, layout.cx, layout.cy, layout.outer, rim))
    parts.append(_svg_shape(layout.shape, layout.cx, layout.cy, layout.inner, spec.color))
    parts.append(
        f'<circle cx="{layout.cx:g}" cy="{layout.cy:g}" r="{layout.inner * 0.8:g}" fill="none" '
        f'stroke="{shade(spec.color, 0.25)}" stroke-width="2" opacity="0.6"/>'
    )
    parts.extend(f'<polygon points="{_points_attr(p)}" fill="{ink}"/>' for p in layout.icon)
    if spec.text:
        size = 72 if len(spec.text) == 1 else 64
        parts.append(
            f'<text x="{layout.cx:g}" y="{layout.cy:g}" text-anchor="middle" dominant-baseline="central" '
            f'font-family="{FONT_STACK}" font-weight="700" font-size="{size}" fill="{ink}">{escape(spec.text)}</text>'
        )
    parts.extend(f'<polygon class="level-star" points="{_points_attr(p)}" fill="#ffffff"/>' for p in layout.stars)
    parts.append("</svg>")
    return "".join(parts)


@functools.lru_cache(maxsize=512)
def render_png(spec: ArtSpec, size: int = SIZE) -> bytes:
    """The same drawing as :func:`render_svg`, as a PNG of ``size`` pixels (anti-aliased by supersampling)."""
    from PIL import Image, ImageDraw, ImageFont

    size = max(MIN_PNG, min(MAX_PNG, size))
    factor = 4 * size / SIZE
    big = round(SIZE * factor)
    image = Image.new("RGBA", (big, big), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)

    def scaled(points: Polygon) -> list[Point]:
        return [(x * factor, y * factor) for x, y in points]

    def shape(kind: str, cx: float, cy: float, r: float, fill: str) -> None:
        points = _shape_points(kind, cx, cy, r)
        if points is None:
            draw.ellipse([(cx - r) * factor, (cy - r) * factor, (cx + r) * factor, (cy + r) * factor], fill=fill)
        else:
            draw.polygon(scaled(points), fill=fill)

    layout = _layout(spec)
    for ribbon in layout.ribbons:
        draw.polygon(scaled(ribbon), fill=shade(spec.color, -0.2))
    shape(layout.shape, layout.cx, layout.cy, layout.outer, spec.metal or shade(spec.color, -0.3))
    shape(layout.shape, layout.cx, layout.cy, layout.inner, spec.color)
    ring = layout.inner * 0.8
    draw.ellipse(
        [
            (layout.cx - ring) * factor,
            (layout.cy - ring) * factor,
            (layout.cx + ring) * factor,
            (layout.cy + ring) * factor,
        ],
        outline=shade(spec.color, 0.15),
        width=max(1, round(2 * factor)),
    )
    ink = foreground(spec.color)
    for polygon in layout.icon:
        draw.polygon(scaled(polygon), fill=ink)
    if spec.text:
        font = ImageFont.load_default(size=round((72 if len(spec.text) == 1 else 64) * factor))
        draw.text((layout.cx * factor, layout.cy * factor), spec.text, fill=ink, font=font, anchor="mm")
    for star in layout.stars:
        draw.polygon(scaled(star), fill="#ffffff")
    image = image.resize((size, size), Image.Resampling.LANCZOS)
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=True)
    return out.getvalue()


def wrap_png_in_svg(png: bytes, *, title: str, width: int, height: int) -> str:
    """An SVG document showing a PNG (so an uploaded PNG can be served and baked as SVG too)."""
    from badges.images import data_uri

    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
        f'role="img" aria-label={quoteattr(title)}><title>{escape(title)}</title>'
        f'<image href="{data_uri("image/png", png)}" width="{width}" height="{height}"/></svg>'
    )


def badge_image(
    badge: BadgeDef, *, brand_slug: str, brand_settings: Mapping[str, Any], level: str, kind: str, size: int = SIZE
) -> bytes:
    """The badge's image as ``svg`` or ``png``: uploaded when it has that format, else the generated art.

    An uploaded PNG is also served as SVG (wrapped); an uploaded SVG has no PNG form, so PNG is generated.
    """
    from badges.images import check_svg, decode_data_uri, png_size

    if badge.image:
        media_type, content = decode_data_uri(badge.image)
        if kind == "svg" and media_type == "image/svg+xml":
            # Rebuilt again when served: images stored before the allow-list existed pass through it too.
            with contextlib.suppress(DefinitionError):
                return check_svg(content)
            return render_svg(
                art_spec(badge, level=level, default_color=brand_color(brand_slug, brand_settings))
            ).encode()
        if kind == "png" and media_type == "image/png":
            return content
        if kind == "svg":
            width, height = png_size(content)
            return wrap_png_in_svg(content, title=badge.name, width=width, height=height).encode()
    spec = art_spec(badge, level=level, default_color=brand_color(brand_slug, brand_settings))
    return render_svg(spec).encode() if kind == "svg" else render_png(spec, size)
