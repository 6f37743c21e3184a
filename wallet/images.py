"""The card's images: ``icon.png`` (required by Wallet) and ``logo.png`` at 1x/2x, drawn from the brand's colour."""

from __future__ import annotations

import io

from PIL import Image, ImageDraw, ImageFont

#: Apple's point sizes: icon 29x29, logo up to 160x50; @2x doubles them.
_SIZES = {"icon": (29, 29), "logo": (50, 50)}


def _monogram(text: str, size: tuple[int, int], colour: str, ink: str) -> bytes:
    image = Image.new("RGBA", size, colour)
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=max(10, int(size[1] * 0.6)))
    box = draw.textbbox((0, 0), text, font=font)
    x = (size[0] - (box[2] - box[0])) / 2 - box[0]
    y = (size[1] - (box[3] - box[1])) / 2 - box[1]
    draw.text((x, y), text, fill=ink, font=font)
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=True)
    return out.getvalue()


def card_images(brand_name: str, *, colour: str, ink: str) -> dict[str, bytes]:
    """``icon.png``, ``icon@2x.png``, ``logo.png``, ``logo@2x.png``: the brand's initial on its colour."""
    letter = (brand_name.strip()[:1] or "Q").upper()
    images: dict[str, bytes] = {}
    for name, (w, h) in _SIZES.items():
        images[f"{name}.png"] = _monogram(letter, (w, h), colour, ink)
        images[f"{name}@2x.png"] = _monogram(letter, (w * 2, h * 2), colour, ink)
    return images
