"""Uploaded badge images: ``data:`` URIs of PNG or SVG, checked before they can be stored. Pure; no I/O.

An uploaded SVG is served from our own origin, so it must not be able to run script there: it is rebuilt
from its parsed tree through an allow-list (:mod:`badges.svg`), and served with a sandboxing
Content-Security-Policy too.
"""

from __future__ import annotations

import base64
import binascii
import struct
from typing import Literal

from badges.svg import clean_svg
from engine.errors import DefinitionError

MAX_IMAGE_BYTES = 300 * 1024
MAX_PNG_SIDE = 2048
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PREFIXES: dict[str, Literal["image/png", "image/svg+xml"]] = {
    "data:image/png;base64,": "image/png",
    "data:image/svg+xml;base64,": "image/svg+xml",
}

ImageType = Literal["image/png", "image/svg+xml"]


def decode_data_uri(uri: str) -> tuple[ImageType, bytes]:
    """The media type and bytes of a ``data:image/png;base64,…`` or ``data:image/svg+xml;base64,…`` URI.

    Raises:
        DefinitionError: another scheme or media type, or bad base64.
    """
    for prefix, media_type in _PREFIXES.items():
        if uri.startswith(prefix):
            try:
                return media_type, base64.b64decode(uri[len(prefix) :], validate=True)
            except (binascii.Error, ValueError) as exc:
                raise DefinitionError("the image is not valid base64", field="image") from exc
    raise DefinitionError("give the image as data:image/png;base64,… or data:image/svg+xml;base64,…", field="image")


def data_uri(media_type: ImageType, content: bytes) -> str:
    """The ``data:`` URI of an image."""
    return f"data:{media_type};base64,{base64.b64encode(content).decode()}"


def png_size(content: bytes) -> tuple[int, int]:
    """Width and height from a PNG's IHDR chunk.

    Raises:
        DefinitionError: not a PNG.
    """
    if not content.startswith(PNG_SIGNATURE) or len(content) < 33 or content[12:16] != b"IHDR":
        raise DefinitionError("the image is not a PNG", field="image")
    width, height = struct.unpack(">II", content[16:24])
    return int(width), int(height)


def check_svg(content: bytes, *, path: str = "image") -> bytes:
    """The SVG rebuilt through the allow-list of :mod:`badges.svg` (refusing what could act or load).

    Raises:
        DefinitionError: not a well-formed SVG, or unsafe content (named in the message).
    """
    return clean_svg(content, path=path)


def check_image(uri: str, *, path: str = "image") -> ImageType:
    """Validate an uploaded image given as a data URI; returns its media type.

    Raises:
        DefinitionError: wrong format, too large, unsafe SVG or an oversized PNG.
    """
    return clean_image(uri, path=path)[0]


def clean_image(uri: str, *, path: str = "image") -> tuple[ImageType, str]:
    """Validate an uploaded image; returns its media type and the data URI to store (an SVG rebuilt).

    Raises:
        DefinitionError: wrong format, too large, unsafe SVG or an oversized PNG.
    """
    try:
        media_type, content = decode_data_uri(uri)
    except DefinitionError as exc:
        raise DefinitionError(exc.detail, field=path) from exc
    if len(content) > MAX_IMAGE_BYTES:
        raise DefinitionError(f"the image is larger than {MAX_IMAGE_BYTES // 1024} KiB", field=path)
    if media_type == "image/png":
        try:
            width, height = png_size(content)
        except DefinitionError as exc:
            raise DefinitionError(exc.detail, field=path) from exc
        if not (0 < width <= MAX_PNG_SIDE and 0 < height <= MAX_PNG_SIDE):
            raise DefinitionError(f"a PNG image is at most {MAX_PNG_SIDE}×{MAX_PNG_SIDE} pixels", field=path)
        return media_type, uri
    return media_type, data_uri(media_type, check_svg(content, path=path))
