import base64
import io
import xml.etree.ElementTree as ET

import pytest
from PIL import Image

from badges.art import art_spec, badge_image, brand_color, foreground, render_png, render_svg
from badges.images import check_image, data_uri
from badges.models import BadgeSpec, LevelSpec, RuleSpec, build_badge
from engine.errors import DefinitionError

SVG_NS = "{http://www.w3.org/2000/svg}"
LEVELED = build_badge(
    BadgeSpec(
        key="regular",
        name="Regular",
        icon="cup",
        rule=RuleSpec(event_type="visit"),
        levels=[
            LevelSpec(key="bronze", threshold=1),
            LevelSpec(key="silver", threshold=3),
            LevelSpec(key="gold", threshold=5),
        ],
    )
)
PLAIN = build_badge(BadgeSpec(key="streak-master", name="Streak master", color="#FFD400"))


def test_generated_svg_is_clean_and_varies_by_level():
    svgs = {
        level: render_svg(art_spec(LEVELED, level=level, default_color="#2563eb"))
        for level in ("", "bronze", "silver", "gold")
    }
    assert len(set(svgs.values())) == 4
    for level, svg in svgs.items():
        root = ET.fromstring(svg)
        assert root.tag == f"{SVG_NS}svg"
        assert root.get("viewBox") == "0 0 256 256"
        assert "script" not in svg
        stars = [p for p in root.iter(f"{SVG_NS}polygon") if p.get("class") == "level-star"]
        assert len(stars) == {"": 0, "bronze": 1, "silver": 2, "gold": 3}[level]
    assert ET.fromstring(svgs["gold"]).find(f"{SVG_NS}title").text == "Regular — Gold"
    assert '<circle cx="128" cy="116" r="100" fill="#b0723a"/>' in svgs["bronze"]  # bronze rim, circle shape


def test_initials_and_colours():
    svg = render_svg(art_spec(PLAIN, level="", default_color="#2563eb"))
    text = ET.fromstring(svg).find(f"{SVG_NS}text")
    assert text.text == "SM"
    assert text.get("fill") == "#1f2937"  # dark ink on a light yellow
    assert foreground("#2563eb") == "#ffffff"
    assert brand_color("acme", {"color": "#AA0000"}) == "#aa0000"
    assert brand_color("acme", {}) == brand_color("acme", {"color": "blue"})


def test_png_matches_the_requested_size():
    png = render_png(art_spec(LEVELED, level="gold", default_color="#2563eb"), 128)
    image = Image.open(io.BytesIO(png))
    assert image.format == "PNG"
    assert image.size == (128, 128)
    assert image.getpixel((0, 0))[3] == 0  # transparent corners
    assert image.getpixel((64, 58))[3] == 255


def test_uploaded_images_are_served_as_given_or_wrapped():
    png = render_png(art_spec(PLAIN, level="", default_color="#2563eb"), 64)
    uploaded_png = build_badge(BadgeSpec(key="p", name="P", image=data_uri("image/png", png)))
    assert badge_image(uploaded_png, brand_slug="b", brand_settings={}, level="", kind="png") == png
    wrapped = badge_image(uploaded_png, brand_slug="b", brand_settings={}, level="", kind="svg").decode()
    assert ET.fromstring(wrapped).find(f"{SVG_NS}image").get("href") == data_uri("image/png", png)
    svg = b'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 10 10"><rect width="10" height="10" fill="#123456"/></svg>'
    uploaded_svg = build_badge(BadgeSpec(key="s", name="S", image=data_uri("image/svg+xml", svg)))
    assert badge_image(uploaded_svg, brand_slug="b", brand_settings={}, level="", kind="svg") == svg
    assert badge_image(uploaded_svg, brand_slug="b", brand_settings={}, level="", kind="png").startswith(b"\x89PNG")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>', "<script>"),
        (b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>', "event handlers"),
        (b'<svg xmlns="http://www.w3.org/2000/svg"><foreignObject/></svg>', "<foreignObject>"),
        (
            b'<svg xmlns="http://www.w3.org/2000/svg" xmlns:x="http://www.w3.org/1999/xlink"><use x:href="https://evil/x.svg#a"/></svg>',
            "link",
        ),
        (b'<svg xmlns="http://www.w3.org/2000/svg"><rect style="fill:url(https://evil/)"/></svg>', "outside"),
        (b'<!DOCTYPE svg [<!ENTITY a "aaaa">]><svg xmlns="http://www.w3.org/2000/svg">&a;</svg>', "DOCTYPE"),
        (b"<html/>", "root element"),
        (b"<svg", "well-formed"),
    ],
)
def test_unsafe_svg_uploads_are_refused(content, message):
    with pytest.raises(DefinitionError, match=message) as info:
        check_image(data_uri("image/svg+xml", content), path="$.image")
    assert info.value.field == "$.image"


def test_other_uploads_are_refused():
    with pytest.raises(DefinitionError, match="data:image/png;base64"):
        check_image("https://example.com/badge.png")
    with pytest.raises(DefinitionError, match="not a PNG"):
        check_image("data:image/png;base64," + base64.b64encode(b"GIF89a").decode())
    with pytest.raises(DefinitionError, match="base64"):
        check_image("data:image/png;base64,@@@")
    safe = b'<svg xmlns="http://www.w3.org/2000/svg"><defs><linearGradient id="g"/></defs><rect fill="url(#g)"/></svg>'
    assert check_image(data_uri("image/svg+xml", safe)) == "image/svg+xml"
