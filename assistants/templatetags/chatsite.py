from urllib.parse import urlsplit

from django import template

register = template.Library()


@register.filter
def safe_href(url: str) -> str:
    """The URL when it is http(s), else "#": no javascript: or data: link ever renders."""
    url = str(url or "").strip()
    return url if urlsplit(url).scheme.lower() in {"http", "https"} else "#"


@register.filter
def percent(value) -> str:
    """0.875 → "88%" (empty for a missing value)."""
    try:
        return f"{float(value) * 100:.0f}%"
    except (TypeError, ValueError):
        return ""


@register.filter
def bare_url(value) -> str:
    """An address without its scheme, to show where space is short: "https://docs.x/help/" → "docs.x/help/";
    any other text as it is."""
    text = str(value or "")
    for scheme in ("https://", "http://"):
        if text.lower().startswith(scheme):
            return text[len(scheme) :]
    return text
