"""WCAG contrast: readable colours derived from any brand colour."""

import random

import pytest

from chatsite.lib.contrast import accent_on, contrast, readable_on

RANDOM = random.Random(20)
COLORS = ["#000000", "#ffffff", "#777777", "#767676", "#2563eb", "#ffdd00", "#1e3a8a", "#22c55e", "#aa3300"] + [
    f"#{RANDOM.randrange(1 << 24):06x}" for _ in range(200)
]


def test_known_ratios():
    assert round(contrast("#000000", "#ffffff"), 1) == 21.0
    assert contrast("#2563eb", "#2563eb") == 1.0
    assert round(contrast("#767676", "#ffffff"), 2) == 4.54


@pytest.mark.parametrize("background", COLORS)
def test_text_on_any_colour_reaches_aa(background):
    assert contrast(readable_on(background), background) >= 4.5


@pytest.mark.parametrize("background", ["#ffffff", "#111827", "#1f2937", "#f3f4f6", "#777777", "#3b3b3b"])
def test_the_brand_as_text_reaches_aa_on_any_background_and_stays_itself_when_it_can(background):
    for color in COLORS:
        accent = accent_on(color, background)
        assert contrast(accent, background) >= 4.5, (color, background, accent)
        if contrast(color, background) >= 4.5:
            assert accent == color


def test_a_light_brand_gets_dark_text_and_a_dark_one_white():
    assert readable_on("#ffdd00") == "#111827"
    assert readable_on("#1e3a8a") == "#ffffff"
