"""Allowed domains: what an entry may be (one rule for the dashboard and the API) and which page
origins an entry lets show the widget (the way browsers read the CSP frame-ancestors sources)."""

import pytest

from assistants.domains.allowed import (
    AllowedDomainError,
    clean_allowed_domains,
    normalize_allowed_domain,
    origin_allowed,
    suggestion_for,
)


@pytest.mark.parametrize(
    "typed, stored",
    [
        ("www.example.com", "www.example.com"),
        ("  Docs.Example.COM. ", "docs.example.com"),
        ("*.example.com", "*.example.com"),
        ("localhost:8080", "localhost:8080"),
        ("shop.example.com:08443", "shop.example.com:8443"),
        ("intranet", "intranet"),
        ("127.0.0.1:8000", "127.0.0.1:8000"),
        ("bücher.example", "xn--bcher-kva.example"),
    ],
)
def test_host_names_with_an_optional_port_and_wildcard_are_accepted(typed, stored):
    assert normalize_allowed_domain(typed) == stored


@pytest.mark.parametrize(
    "typed, message",
    [
        ("not a domain!!", "“not a domain!!” is not a domain. Use a host name such as www.example.com"),
        ("https://x/path", "“https://x/path” is an address, not a domain. Write just the host name: x"),
        ("https://www.example.com/", "Write just the host name: www.example.com"),
        ("example.com/shop", "is an address, not a domain"),
        ("example.com:99999", "the port must be a number from 1 to 65535"),
        ("example.com:http", "the port must be a number"),
        ("*.com", "too broad"),
        ("a..b", "is not a domain"),
        ("-x.example.com", "is not a domain"),
        ("'self'", "is not a domain"),
        ("evil.test; script-src *", "is not a domain"),
        ("*", "is not a domain"),
    ],
)
def test_anything_else_is_refused_with_a_message_naming_it(typed, message):
    with pytest.raises(AllowedDomainError) as refused:
        normalize_allowed_domain(typed)
    assert message in str(refused.value)


def test_a_list_is_cleaned_of_blanks_and_duplicates_and_stops_at_the_first_wrong_entry():
    assert clean_allowed_domains("www.example.com\n\n  WWW.example.com\nlocalhost:3000\n") == [
        "www.example.com",
        "localhost:3000",
    ]
    assert clean_allowed_domains(["a.test", "b.test"]) == ["a.test", "b.test"]
    with pytest.raises(AllowedDomainError, match="not a domain!!"):
        clean_allowed_domains("ok.test\nnot a domain!!")
    with pytest.raises(AllowedDomainError, match="must be a host name"):
        clean_allowed_domains(["ok.test", 7])
    with pytest.raises(AllowedDomainError, match="At most 50"):
        clean_allowed_domains([f"s{n}.test" for n in range(51)])


@pytest.mark.parametrize(
    "origin, allowed",
    [
        ("https://www.example.com", True),
        ("http://www.example.com", True),
        ("https://www.example.com:443", True),
        ("https://www.example.com:8443", False),  # an entry without a port: the default port only
        ("https://example.com", False),
        ("https://a.shop.test", True),  # *.shop.test
        ("https://a.b.shop.test", True),
        ("https://shop.test", False),  # the wildcard names subdomains only
        ("https://evilshop.test", False),
        ("http://localhost:8080", True),
        ("http://localhost:8081", False),
        ("http://localhost", False),
        ("http://127.0.0.1:8080", False),
        ("null", False),
        ("", False),
        ("file://www.example.com", False),
        ("https://www.example.com/path", False),
        ("https://user@www.example.com", False),
    ],
)
def test_an_origin_matches_like_the_csp_source(origin, allowed):
    entries = ["www.example.com", "*.shop.test", "localhost:8080", "not valid!!"]
    assert origin_allowed(origin, entries) is allowed


def test_nothing_is_allowed_without_entries():
    assert not origin_allowed("https://www.example.com", [])


@pytest.mark.parametrize(
    "origin, entry",
    [
        ("https://www.example.com", "www.example.com"),
        ("http://127.0.0.1:8080", "127.0.0.1:8080"),
        ("https://shop.test:443", "shop.test"),
        ("garbage", ""),
    ],
)
def test_the_entry_that_would_allow_an_origin(origin, entry):
    assert suggestion_for(origin) == entry
