"""Built-in icons of the generated badge art, as polygons in a 24×24 box. Pure; no I/O.

Polygons (not SVG paths) so that the SVG and the PNG renderer draw exactly the same shapes.
"""

from __future__ import annotations

import math

Point = tuple[float, float]
Polygon = tuple[Point, ...]


def _circle(cx: float, cy: float, r: float, *, start: float = 0.0, end: float = 360.0, steps: int = 32) -> list[Point]:
    span = end - start
    return [
        (
            round(cx + r * math.cos(math.radians(start + span * i / steps)), 2),
            round(cy + r * math.sin(math.radians(start + span * i / steps)), 2),
        )
        for i in range(steps + 1)
    ]


def star_points(cx: float, cy: float, outer: float, inner: float, points: int, *, rotation: float = -90.0) -> Polygon:
    """A star (or a rosette with a small ratio) of ``points`` tips centred on (cx, cy)."""
    result: list[Point] = []
    for i in range(points * 2):
        radius = outer if i % 2 == 0 else inner
        angle = math.radians(rotation + 180.0 * i / points)
        result.append((round(cx + radius * math.cos(angle), 2), round(cy + radius * math.sin(angle), 2)))
    return tuple(result)


def regular_polygon(cx: float, cy: float, r: float, sides: int, *, rotation: float = -90.0) -> Polygon:
    """A regular polygon with ``sides`` corners centred on (cx, cy)."""
    return tuple(
        (
            round(cx + r * math.cos(math.radians(rotation + 360.0 * i / sides)), 2),
            round(cy + r * math.sin(math.radians(rotation + 360.0 * i / sides)), 2),
        )
        for i in range(sides)
    )


def _heart() -> Polygon:
    points: list[Point] = []
    for i in range(48):
        t = 2 * math.pi * i / 48
        x = 16 * math.sin(t) ** 3
        y = 13 * math.cos(t) - 5 * math.cos(2 * t) - 2 * math.cos(3 * t) - math.cos(4 * t)
        points.append((round(12 + x * 0.62, 2), round(11 - y * 0.62, 2)))
    return tuple(points)


def _pin() -> Polygon:
    return (*_circle(12, 9, 7, start=150, end=390, steps=24), (12, 22.5))


ICONS: dict[str, tuple[Polygon, ...]] = {
    "star": (star_points(12, 12.6, 10.5, 4.4, 5),),
    "heart": (_heart(),),
    "bolt": (((13.5, 1.5), (4, 13.5), (11, 13.5), (9.5, 22.5), (20, 9.5), (13, 9.5), (15, 1.5)),),
    "crown": (
        ((2.5, 18), (2.5, 6.5), (7.5, 11), (12, 3.5), (16.5, 11), (21.5, 6.5), (21.5, 18)),
        ((2.5, 19.5), (21.5, 19.5), (21.5, 21.5), (2.5, 21.5)),
    ),
    "check": (((3, 12.5), (6.5, 9), (10, 12.5), (17.5, 5), (21, 8.5), (10, 19.5)),),
    "gem": (((6.5, 3), (17.5, 3), (22, 9), (12, 21.5), (2, 9)),),
    "flame": (
        (
            (12, 1.5),
            (15.5, 6.5),
            (18.5, 10.5),
            (19, 15),
            (17, 19.5),
            (12, 22.5),
            (7, 19.5),
            (5, 15),
            (6, 10.5),
            (8.5, 7.5),
            (9.5, 11.5),
            (11.5, 8),
        ),
    ),
    "trophy": (
        (
            (5.5, 2.5),
            (18.5, 2.5),
            (18.5, 8.5),
            (16.5, 12.5),
            (13.2, 14.2),
            (13.2, 17.5),
            (16.5, 17.5),
            (16.5, 21),
            (7.5, 21),
            (7.5, 17.5),
            (10.8, 17.5),
            (10.8, 14.2),
            (7.5, 12.5),
            (5.5, 8.5),
        ),
        ((2, 4), (5.5, 4), (5.5, 6), (3.8, 6), (4.4, 9), (6.2, 10.8), (5.2, 12), (2.8, 9.8)),
        ((22, 4), (18.5, 4), (18.5, 6), (20.2, 6), (19.6, 9), (17.8, 10.8), (18.8, 12), (21.2, 9.8)),
    ),
    "chat": (((2.5, 3.5), (21.5, 3.5), (21.5, 16), (10.5, 16), (5, 21.5), (6, 16), (2.5, 16)),),
    "pin": (_pin(),),
    "cart": (
        ((1.5, 3), (5, 3), (6, 6), (21.5, 6), (19, 14.5), (7.8, 14.5), (8.3, 16.5), (19.5, 16.5), (19.5, 18), (7, 18)),
        tuple(_circle(9, 20.5, 1.8, steps=12)),
        tuple(_circle(17.5, 20.5, 1.8, steps=12)),
    ),
    "cup": (
        ((3.5, 7.5), (17.5, 7.5), (16, 19), (5, 19)),
        ((17.5, 9), (20.5, 9), (21.5, 10.5), (20.5, 14), (16.8, 15), (17, 13), (19.3, 12.4), (19.5, 11), (17.3, 11)),
        ((2.5, 20.5), (18.5, 20.5), (18.5, 22), (2.5, 22)),
    ),
    "gift": (
        ((3, 9), (21, 9), (21, 12.5), (3, 12.5)),
        ((4.5, 13.5), (11, 13.5), (11, 21.5), (4.5, 21.5)),
        ((13, 13.5), (19.5, 13.5), (19.5, 21.5), (13, 21.5)),
        ((11, 8), (7, 3.5), (5, 5), (8, 8)),
        ((13, 8), (17, 3.5), (19, 5), (16, 8)),
    ),
}
"""Icon name → polygons (filled, drawn in the art's foreground colour)."""
