"""Uploaded badge images: ``data:`` URIs of PNG or SVG, checked before they can be stored. Pure; no I/O.

An uploaded SVG is served from our own origin, so it must not be able to run script there: it is parsed
and refused when it holds script, event handlers, foreign content, external references or a DTD (which
also rules out entity-expansion bombs). It is served with a restrictive Content-Security-Policy too.
"""

from __future__ import annotations

import base64
import binascii
import struct
import xml.etree.ElementTree as ET
from typing import Literal

from engine.errors import DefinitionError

MAX_IMAGE_BYTES = 300 * 1024
MAX_PNG_SIDE = 2048
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
SVG_NS = "http://www.w3.org/2000/svg"
XLINK_NS = "http://www.w3.org/1999/xlink"
OPENBADGES_NS = ("http://openbadges.org", "https://purl.imsglobal.org/ob/v3p0")
_FORBIDDEN_TAGS = {"script", "foreignobject", "iframe", "embed", "object", "handler", "listener", "set", "animate"}
_SAFE_HREF_PREFIXES = ("#", "data:image/png;", "data:image/jpeg;", "data:image/gif;", "data:image/webp;")
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


def _local(tag: str) -> tuple[str, str]:
    if tag.startswith("{"):
        namespace, _, name = tag[1:].partition("}")
        return namespace, name
    return "", tag


def _loads_outside(text: str) -> bool:
    """Whether CSS-like text references anything but a fragment of this document (``url(#id)``)."""
    compact = "".join(text.split()).replace("'", "").replace('"', "").lower()
    return "url(" in compact.replace("url(#", "")


def check_svg(content: bytes, *, path: str = "image") -> None:
    """Refuse an SVG that could run script or load anything when served from our origin.

    Raises:
        DefinitionError: not a well-formed SVG, or unsafe content (named in the message).
    """
    lowered = content.lower()
    if b"<!doctype" in lowered or b"<!entity" in lowered:
        raise DefinitionError("an SVG image may not declare a DOCTYPE or entities", field=path)
    try:
        root = ET.fromstring(content)
    except ET.ParseError as exc:
        raise DefinitionError(f"the SVG image is not well-formed XML: {exc}", field=path) from exc
    if _local(root.tag) != (SVG_NS, "svg"):
        raise DefinitionError("the image's root element must be <svg> in the SVG namespace", field=path)
    for element in root.iter():
        namespace, name = _local(element.tag)
        if namespace in OPENBADGES_NS:
            raise DefinitionError("upload the badge image unbaked (no openbadges elements)", field=path)
        if name.lower() in _FORBIDDEN_TAGS:
            raise DefinitionError(f"an SVG image may not contain <{name}>", field=path)
        if name == "style" and element.text and ("@import" in element.text or _loads_outside(element.text)):
            raise DefinitionError("an SVG image's styles may not load anything", field=path)
        for attribute, value in element.attrib.items():
            _attr_ns, attr_name = _local(attribute)
            if attr_name.lower().startswith("on"):
                raise DefinitionError(f"an SVG image may not carry event handlers ({attr_name})", field=path)
            if attr_name == "href" and not value.strip().startswith(_SAFE_HREF_PREFIXES):
                raise DefinitionError("an SVG image may only link to its own elements or embedded images", field=path)
            if "javascript:" in value.lower() or _loads_outside(value):
                raise DefinitionError(f"an SVG image may not reference outside content ({attr_name})", field=path)


def check_image(uri: str, *, path: str = "image") -> ImageType:
    """Validate an uploaded image given as a data URI; returns its media type.

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
    else:
        check_svg(content, path=path)
    return media_type
