"""Colour contrast by WCAG 2.x: relative luminance, contrast ratios, and readable colours derived
from a brand colour (``#rrggbb`` throughout)."""

from __future__ import annotations

AA_TEXT = 4.5  # normal text
AA_LARGE = 3.0  # large text and the parts of controls (WCAG 1.4.11)
DARK_TEXT = "#111827"
LIGHT_TEXT = "#ffffff"


def _rgb(color: str) -> tuple[int, int, int]:
    return int(color[1:3], 16), int(color[3:5], 16), int(color[5:7], 16)


def _hex(rgb) -> str:
    return "#" + "".join(f"{max(0, min(255, round(c))):02x}" for c in rgb)


def luminance(color: str) -> float:
    def channel(c: int) -> float:
        c = c / 255
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (channel(c) for c in _rgb(color))
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(a: str, b: str) -> float:
    high, low = sorted((luminance(a), luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def _light_wins(background: str) -> bool:
    """Whether white reads better than black on ``background`` (one of them reaches 4.58:1 on any colour)."""
    return contrast("#ffffff", background) > contrast("#000000", background)


def readable_on(background: str) -> str:
    """The text colour for ``background``: white or the chat's dark grey, whichever reads better, and
    black on the mid greys where neither reaches 4.5:1."""
    best = LIGHT_TEXT if _light_wins(background) else DARK_TEXT
    return best if contrast(best, background) >= AA_TEXT else "#000000"


def mix(color: str, toward: str, amount: float) -> str:
    """``color`` moved ``amount`` (0 to 1) of the way to ``toward``."""
    a, b = _rgb(color), _rgb(toward)
    return _hex(x + (y - x) * amount for x, y in zip(a, b))


def accent_on(color: str, background: str, ratio: float = AA_TEXT) -> str:
    """``color`` itself when it reaches ``ratio`` against ``background``, else the nearest shade of it
    (mixed toward black on a light background, toward white on a dark one) that does."""
    if contrast(color, background) >= ratio:
        return color
    toward = "#ffffff" if _light_wins(background) else "#000000"
    low, high = 0.0, 1.0
    for _ in range(20):  # the least mix that reaches the ratio
        middle = (low + high) / 2
        if contrast(mix(color, toward, middle), background) >= ratio:
            high = middle
        else:
            low = middle
    while contrast(mix(color, toward, high), background) < ratio and high < 1:  # rounding to #rrggbb
        high = min(1.0, high + 0.01)
    return mix(color, toward, high)
