"""Uploaded SVGs are rebuilt through an allow-list: each payload that slipped past the old deny-list is refused,
and what is kept is written out again from the parsed tree."""

import pytest

from badges.images import clean_image, data_uri
from badges.svg import clean_svg
from engine.errors import DefinitionError

SVG = 'xmlns="http://www.w3.org/2000/svg"'

PAYLOADS = [
    pytest.param(
        f'<svg {SVG}><meta xmlns="http://www.w3.org/1999/xhtml" http-equiv="refresh" content="0;url=https://evil.example/"/></svg>',
        "foreign namespace",
        id="xhtml-meta-refresh",
    ),
    pytest.param(
        f'<svg {SVG}><foreignObject><html xmlns="http://www.w3.org/1999/xhtml"><meta http-equiv="refresh"/></html></foreignObject></svg>',
        "foreignObject",
        id="foreign-object-xhtml",
    ),
    pytest.param(
        f'<?xml-stylesheet type="text/css" href="https://evil.example/x.css"?><svg {SVG}/>',
        "processing instructions",
        id="xml-stylesheet-before-root",
    ),
    pytest.param(
        f'<?xml version="1.0"?>\n<?xml-stylesheet href="https://evil.example/x.css"?><svg {SVG}/>',
        "processing instructions",
        id="xml-stylesheet-after-declaration",
    ),
    pytest.param(f'<svg {SVG}><?xml-stylesheet href="x.css"?></svg>', "processing instructions", id="pi-inside"),
    pytest.param(
        f"<svg {SVG}><style>@import url(https://evil.example/x.css);</style></svg>", "<style>", id="style-import"
    ),
    pytest.param(
        f"<svg {SVG}><style>@im/**/port 'https://evil.example/x.css';</style></svg>", "<style>", id="style-split-import"
    ),
    pytest.param(
        f"<svg {SVG}><style>@\\69mport 'https://evil.example/x.css';</style></svg>",
        "<style>",
        id="style-escaped-import",
    ),
    pytest.param(
        f"<svg {SVG}><rect style=\"fill:image-set('https://evil.example/x.png' 1x)\"/></svg>",
        "image-set",
        id="image-set-in-style",
    ),
    pytest.param(
        f'<svg {SVG}><rect style="background:-webkit-image-set(url(https://evil.example/x.png) 1x)"/></svg>',
        "outside content",
        id="webkit-image-set",
    ),
    pytest.param(
        f'<svg {SVG}><rect style="fill:u\\72l(https://evil.example/)"/></svg>', "outside content", id="escaped-url"
    ),
    pytest.param(f'<svg {SVG}><rect fill="url(https://evil.example/#g)"/></svg>', "outside content", id="remote-paint"),
    pytest.param(f'<svg {SVG}><a href="https://evil.example/"><rect/></a></svg>', "<a>", id="link"),
    pytest.param(f'<svg {SVG}><image href="https://evil.example/x.png"/></svg>', "own elements", id="remote-image"),
    pytest.param(
        f'<svg {SVG}><animate attributeName="href" to="javascript:alert(1)"/></svg>', "<animate>", id="animate"
    ),
    pytest.param(f'<svg {SVG}><set attributeName="onload" to="alert(1)"/></svg>', "<set>", id="set"),
    pytest.param(f'<svg {SVG}><g onclick="alert(1)"/></svg>', "event handlers", id="handler"),
    pytest.param(f'<svg {SVG}><script href="https://evil.example/x.js"/></svg>', "<script>", id="script"),
    pytest.param(
        f'<svg {SVG} xmlns:xl="http://www.w3.org/1999/xlink"><use xl:href="data:image/svg+xml;base64,PHN2Zy8+#a"/></svg>',
        "own elements",
        id="use-data-svg",
    ),
    pytest.param(
        '<!DOCTYPE svg SYSTEM "https://evil.example/x.dtd"><svg xmlns="http://www.w3.org/2000/svg"/>',
        "DOCTYPE",
        id="dtd",
    ),
]


@pytest.mark.parametrize(("payload", "message"), PAYLOADS)
def test_each_bypass_payload_is_refused(payload, message):
    with pytest.raises(DefinitionError, match=message) as refused:
        clean_image(data_uri("image/svg+xml", payload.encode()), path="$.badges[0].image")
    assert refused.value.field == "$.badges[0].image"


def test_what_is_kept_is_rebuilt_from_the_tree():
    uploaded = (
        '<?xml version="1.0" encoding="UTF-8"?>\n<!-- made with an editor -->'
        f'<svg {SVG} xmlns:inkscape="http://www.inkscape.org/namespaces/inkscape" '
        'xmlns:xlink="http://www.w3.org/1999/xlink" viewBox="0 0 10 10" inkscape:version="1.3" data-x="1">'
        "<metadata><rdf xmlns='http://www.w3.org/1999/02/22-rdf-syntax-ns#'/></metadata>"
        '<defs><linearGradient id="g"><stop offset="0" stop-color="#fff"/></linearGradient></defs>'
        '<g transform="translate(1,1) rotate(45)" inkscape:label="layer">'
        '<rect width="8" height="8" fill="url(#g)" style="stroke:#000;stroke-width:0.5;cursor:pointer"/>'
        '<use xlink:href="#g"/><text x="1" y="5">A &amp; B<tspan>!</tspan></text>'
        "</g></svg>"
    ).encode()
    cleaned = clean_svg(uploaded)
    assert cleaned == (
        b'<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" viewBox="0 0 10 10">'
        b'<defs><linearGradient id="g"><stop offset="0" stop-color="#fff"/></linearGradient></defs>'
        b'<g transform="translate(1,1) rotate(45)">'
        b'<rect width="8" height="8" fill="url(#g)" style="stroke:#000;stroke-width:0.5"/>'
        b'<use xlink:href="#g"/><text x="1" y="5">A &amp; B<tspan>!</tspan></text></g></svg>'
    )
    media_type, uri = clean_image(data_uri("image/svg+xml", uploaded))
    assert media_type == "image/svg+xml" and uri == data_uri("image/svg+xml", cleaned)
