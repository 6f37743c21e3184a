"""QR images of redemption codes for the till (segno: pure-Python QR Code, SVG and PNG)."""

from __future__ import annotations

import io

import segno


def qr_svg(data: str, *, title: str = "") -> bytes:
    """An SVG QR code of ``data`` (no XML declaration, so it can be inlined in a page)."""
    out = io.BytesIO()
    segno.make(data, error="m").save(
        out, kind="svg", scale=5, border=2, xmldecl=False, svgclass="qr", lineclass=None, title=title or None
    )
    return out.getvalue()


def qr_png(data: str) -> bytes:
    """A PNG QR code of ``data``."""
    out = io.BytesIO()
    segno.make(data, error="m").save(out, kind="png", scale=6, border=2)
    return out.getvalue()
