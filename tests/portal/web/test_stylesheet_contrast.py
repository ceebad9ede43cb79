"""The stylesheet's colour pairs meet WCAG 2.x AA: 4.5:1 for text, 3:1 for the focus ring."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

CSS = Path(__file__).resolve().parents[3] / "static" / "portal" / "portal.css"
VARS = dict(re.findall(r"--([\w-]+):\s*(#[0-9a-fA-F]{6})", CSS.read_text()))
WHITE = "#ffffff"

# (foreground, background) as used in the stylesheet: body text, links, buttons, badges,
# messages, header.
TEXT_PAIRS = [
    ("ink", "bg"), ("ink", "bg-soft"), ("muted", "bg"), ("muted", "bg-soft"), ("brand", "bg"), ("brand", "bg-soft"),
    (WHITE, "brand"), (WHITE, "brand-dark"), ("ok-ink", "ok-bg"), ("warn-ink", "warn-bg"), ("err-ink", "err-bg"),
    ("info-ink", "info-bg"), ("grey-ink", "grey-bg"), (WHITE, "ink"), ("#cbd5e1", "ink"), (WHITE, "#b91c1c"),
    ("#1f2937", "#fbbf24"),
]


def _colour(name: str) -> str:
    return name if name.startswith("#") else VARS[name]


def _luminance(hex_colour: str) -> float:
    channels = [int(hex_colour[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast(a: str, b: str) -> float:
    la, lb = sorted((_luminance(_colour(a)), _luminance(_colour(b))), reverse=True)
    return (la + 0.05) / (lb + 0.05)


def test_the_contrast_formula_is_right() -> None:
    assert contrast("#000000", "#ffffff") == pytest.approx(21.0)
    assert contrast("#777777", "#ffffff") == pytest.approx(4.48, abs=0.01)


@pytest.mark.parametrize(("fg", "bg"), TEXT_PAIRS)
def test_text_colours_meet_aa(fg: str, bg: str) -> None:
    assert contrast(fg, bg) >= 4.5, (fg, bg, round(contrast(fg, bg), 2))


def test_the_focus_ring_stands_out_from_the_page() -> None:
    assert contrast("focus", "bg") >= 3
    assert contrast("#fbbf24", "ink") >= 3  # the header's focus ring
