"""Uploaded SVG images rebuilt from their parsed tree through an allow-list. Pure; no I/O.

An uploaded SVG is served from our own origin, so nothing in it may run script, navigate, or load anything.
A deny-list of patterns cannot promise that (an XHTML ``<meta http-equiv=refresh>``, an
``<?xml-stylesheet?>`` instruction, a ``<style>`` with a split or escaped ``@import``, ``image-set()``
all slipped past one), so the image is parsed with defusedxml (no DTD, no entities) and written out
again from scratch: only SVG-namespace elements of :data:`ELEMENTS`, only attributes of
:data:`ATTRIBUTES` (plus ``href``/``xlink:href`` to a local ``#id`` or an embedded raster image), only
``style`` properties of :data:`STYLE_PROPERTIES` with plain values, text only where SVG draws text.
Anything that could act (scripts, event handlers, ``<style>``, processing instructions, foreign
namespaces, references to other documents) is refused with a message naming it; inert editor
metadata (comments, ``<metadata>``, attributes of other namespaces such as Inkscape's) is dropped.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from xml.sax.saxutils import escape, quoteattr

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import DefusedXMLParser

from engine.errors import DefinitionError

SVG_NS = "http://www.w3.org/2000/svg"
XLINK_NS = "http://www.w3.org/1999/xlink"
OPENBADGES_NS = ("http://openbadges.org", "https://purl.imsglobal.org/ob/v3p0")

#: Elements that draw, group, define paint or describe: nothing that scripts, animates, embeds or styles.
ELEMENTS = frozenset(
    {
        "svg", "g", "defs", "symbol", "use", "title", "desc",
        "path", "rect", "circle", "ellipse", "line", "polyline", "polygon",
        "text", "tspan", "textPath",
        "linearGradient", "radialGradient", "stop", "pattern", "clipPath", "mask", "marker", "image",
        "filter", "feBlend", "feColorMatrix", "feComponentTransfer", "feComposite", "feFlood",
        "feGaussianBlur", "feMerge", "feMergeNode", "feMorphology", "feOffset", "feDropShadow",
        "feFuncR", "feFuncG", "feFuncB", "feFuncA",
    }
)  # fmt: skip
#: Elements dropped with everything inside them (editor metadata, never drawn).
DROPPED = frozenset({"metadata"})
#: Elements whose text is kept.
TEXT_ELEMENTS = frozenset({"text", "tspan", "textPath", "title", "desc"})

#: Presentation and geometry attributes (no event handlers, no ``style``-sheet hooks beyond ``class``).
ATTRIBUTES = frozenset(
    {
        "id", "class", "viewBox", "preserveAspectRatio", "width", "height", "x", "y", "x1", "y1", "x2", "y2",
        "cx", "cy", "r", "rx", "ry", "fx", "fy", "fr", "d", "points", "transform", "pathLength", "version",
        "fill", "fill-opacity", "fill-rule", "stroke", "stroke-width", "stroke-opacity", "stroke-linecap",
        "stroke-linejoin", "stroke-miterlimit", "stroke-dasharray", "stroke-dashoffset", "opacity",
        "color", "display", "visibility", "clip-path", "clip-rule", "clipPathUnits", "mask", "maskUnits",
        "maskContentUnits", "marker-start", "marker-mid", "marker-end", "markerWidth", "markerHeight",
        "markerUnits", "refX", "refY", "orient", "gradientUnits", "gradientTransform", "spreadMethod",
        "offset", "stop-color", "stop-opacity", "patternUnits", "patternContentUnits", "patternTransform",
        "font-family", "font-size", "font-weight", "font-style", "text-anchor", "dominant-baseline",
        "alignment-baseline", "letter-spacing", "word-spacing", "text-decoration", "dx", "dy", "rotate",
        "textLength", "lengthAdjust", "startOffset", "filter", "filterUnits", "primitiveUnits", "in", "in2",
        "result", "stdDeviation", "mode", "operator", "k1", "k2", "k3", "k4", "values", "type", "flood-color",
        "flood-opacity", "radius", "tableValues", "slope", "intercept", "amplitude", "exponent",
        "color-interpolation-filters", "shape-rendering", "vector-effect", "paint-order", "mix-blend-mode",
        "isolation", "overflow", "role", "aria-label", "aria-hidden", "lang", "style", "href",
    }
)  # fmt: skip
#: ``style`` properties kept (the same presentation vocabulary as the attributes).
STYLE_PROPERTIES = ATTRIBUTES - {
    "id", "class", "style", "href", "d", "points", "viewBox", "transform", "role", "aria-label", "aria-hidden",
}  # fmt: skip

#: A plain value: numbers, units, names, colours, lists — and no function but colours and local references.
_PLAIN = re.compile(r"^[\w\s#.,%+\-/]*$")
_FUNCTION = re.compile(r"([\w-]+)\s*\(")
_ALLOWED_FUNCTIONS = frozenset(
    {"rgb", "rgba", "hsl", "hsla", "url", "matrix", "translate", "scale", "rotate", "skewx", "skewy"}
)
_LOCAL_URL = re.compile(r"url\(\s*(['\"]?)#[\w.:-]+\1\s*\)")
_SAFE_DATA = ("data:image/png;base64,", "data:image/jpeg;base64,", "data:image/gif;base64,", "data:image/webp;base64,")
_LOCAL_HREF = re.compile(r"^#[\w.:-]+$")


def _split(tag: str) -> tuple[str, str]:
    if tag.startswith("{"):
        namespace, _, name = tag[1:].partition("}")
        return namespace, name
    return "", tag


def _refuse(message: str, path: str) -> DefinitionError:
    return DefinitionError(message, field=path)


def _parse(content: bytes, path: str) -> ET.Element:
    """The document's root, parsed without DTDs or entities, with processing instructions kept to refuse them."""
    lowered = content.lower()
    if b"<!doctype" in lowered or b"<!entity" in lowered:
        raise _refuse("an SVG image may not declare a DOCTYPE or entities", path)
    builder = ET.TreeBuilder(insert_pis=True)
    parser = DefusedXMLParser(target=builder, forbid_dtd=True)
    try:
        parser.feed(content)
        root = parser.close()
    except DefusedXmlException as exc:
        raise _refuse("an SVG image may not declare a DOCTYPE or entities", path) from exc
    except ET.ParseError as exc:
        raise _refuse(f"the SVG image is not well-formed XML: {exc}", path) from exc
    body = content.removeprefix(b"\xef\xbb\xbf")
    if body.startswith((b"<?xml ", b"<?xml\t", b"<?xml\n", b"<?xml\r")):  # the XML declaration, not an instruction
        body = body[body.index(b"?>") + 2 :]
    if b"<?" in body:  # instructions outside the root element never reach the tree: look in the bytes
        raise _refuse("an SVG image may not hold processing instructions (<?…?>)", path)
    if not isinstance(root.tag, str) or _split(root.tag) != (SVG_NS, "svg"):
        raise _refuse("the image's root element must be <svg> in the SVG namespace", path)
    return root


def _check_value(name: str, value: str, path: str) -> str:
    """``value`` if it references nothing outside this document, else a refusal."""
    lowered = value.lower()
    if "\\" in value or "javascript:" in lowered or "@" in value or "<" in value:
        raise _refuse(f"an SVG image may not reference outside content ({name})", path)
    for function in _FUNCTION.findall(lowered):
        if function not in _ALLOWED_FUNCTIONS:
            raise _refuse(f"an SVG image may not reference outside content ({name}: {function}())", path)
    without_local = _LOCAL_URL.sub("", value)
    if "url(" in without_local.lower():
        raise _refuse(f"an SVG image may not reference outside content ({name})", path)
    return value


def _clean_style(value: str, path: str) -> str:
    """A ``style`` attribute rebuilt from allowed properties with plain values."""
    kept: list[str] = []
    for declaration in value.split(";"):
        prop, colon, raw = declaration.partition(":")
        prop, raw = prop.strip().lower(), raw.strip()
        if not colon or not prop:
            continue
        _check_value(f"style {prop}", raw, path)
        if prop in STYLE_PROPERTIES and _PLAIN.match(_LOCAL_URL.sub("", _strip_colours(raw))):
            kept.append(f"{prop}:{raw}")
    return ";".join(kept)


def _strip_colours(value: str) -> str:
    return re.sub(r"(rgba?|hsla?)\(\s*[\d.,%\s/+-]*\)", "", value, flags=re.IGNORECASE)


def _clean_href(value: str, path: str) -> str:
    stripped = value.strip()
    if _LOCAL_HREF.match(stripped) or stripped.startswith(_SAFE_DATA):
        return stripped
    raise _refuse("an SVG image may only link to its own elements (#id) or embedded images", path)


def _attributes(element: ET.Element, name: str, path: str) -> list[tuple[str, str]]:
    kept: list[tuple[str, str]] = []
    for raw_name, value in element.attrib.items():
        namespace, attr = _split(raw_name)
        if attr.lower().startswith("on"):
            raise _refuse(f"an SVG image may not carry event handlers ({attr})", path)
        if attr == "href" and namespace in ("", XLINK_NS):
            kept.append(("href" if namespace == "" else "xlink:href", _clean_href(value, path)))
            continue
        if namespace or attr not in ATTRIBUTES:
            _check_value(attr, value, path)  # dropped, but a reference outside is still a sign of mischief
            continue
        if attr == "style":
            style = _clean_style(value, path)
            if style:
                kept.append(("style", style))
            continue
        kept.append((attr, _check_value(attr, value, path)))
    return kept


def _write(element: ET.Element, out: list[str], path: str, *, root: bool = False) -> None:
    namespace, name = _split(element.tag) if isinstance(element.tag, str) else ("", "")
    if not isinstance(element.tag, str):  # a processing instruction inside the document (TreeBuilder's PI)
        raise _refuse("an SVG image may not hold processing instructions (<?…?>)", path)
    if namespace in OPENBADGES_NS:
        raise _refuse("upload the badge image unbaked (no openbadges elements)", path)
    if namespace != SVG_NS:
        raise _refuse(f"an SVG image may not contain <{name}> of a foreign namespace ({namespace or 'none'})", path)
    if name in DROPPED:
        return
    if name not in ELEMENTS:
        raise _refuse(f"an SVG image may not contain <{name}>", path)
    attributes = _attributes(element, name, path)
    if root:
        attributes.insert(0, ("xmlns", SVG_NS))
        if any(a == "xlink:href" for a, _ in _all_attributes(element)):
            attributes.insert(1, ("xmlns:xlink", XLINK_NS))
    out.append("<" + name + "".join(f" {a}={quoteattr(v)}" for a, v in attributes))
    text = escape(element.text or "") if name in TEXT_ELEMENTS else ""
    children = list(element)
    if not text and not children:
        out.append("/>")
    else:
        out.append(">" + text)
        for child in children:
            _write(child, out, path)
            if child.tail and name in TEXT_ELEMENTS:
                out.append(escape(child.tail))
        out.append(f"</{name}>")


def _all_attributes(element: ET.Element) -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    for node in element.iter():
        for raw_name in node.attrib:
            namespace, attr = _split(raw_name)
            if attr == "href" and namespace == XLINK_NS:
                found.append(("xlink:href", ""))
    return found


def clean_svg(content: bytes, *, path: str = "image") -> bytes:
    """The SVG rebuilt from its parsed tree through the allow-lists (UTF-8, no XML declaration).

    Raises:
        DefinitionError: not a well-formed SVG, or content that could act or load anything (named).
    """
    root = _parse(content, path)
    out: list[str] = []
    _write(root, out, path, root=True)
    return "".join(out).encode()
