"""bench_answers' per-question figures: page paths as the question files spell them, the rank of the
first linked page, and where each leg of hybrid search alone ranks it (on a real index)."""

import pytest

from assistants.management.commands.bench_answers import first_rank, leg_ranks, relative_page
from tests.conftest import DRF_SITE
from tests.factories import index_pages, make_assistant

BASE = "http://docs.test/"
PAGES = ("api-guide/throttling/", "api-guide/pagination/", "api-guide/authentication/")


def test_a_page_is_spelled_as_the_question_files_spell_it():
    assert relative_page("http://docs.test/api-guide/throttling/index.html#setting", BASE) == "api-guide/throttling/"
    assert relative_page("http://docs.test/index.html", BASE) == ""
    assert relative_page("http://docs.test/docs/faq.html?x=1", "http://docs.test/docs/") == "faq.html"


def test_the_first_linked_page_is_ranked_from_one_within_the_depth():
    pages = ["a.html", "b.html", "c.html", "d.html"]
    assert first_rank(pages, {"c.html", "d.html"}) == 3
    assert first_rank(pages, {"d.html"}, depth=3) is None
    assert first_rank(pages, {"x.html"}) is None


@pytest.mark.django_db
def test_each_leg_ranks_the_linked_page_on_its_own():
    assistant = make_assistant()
    index_pages(assistant, {BASE + page: (DRF_SITE / page / "index.html").read_text() for page in PAGES})
    # Words of the throttling page's own: both legs find it first.
    ranks = leg_ranks(assistant, "How do I throttle requests with AnonRateThrottle?", {"api-guide/throttling/"}, BASE)
    assert ranks == {"lexical": 1, "dense": 1}
    # A word no page holds: the lexical leg finds nothing, the dense leg still ranks every page.
    ranks = leg_ranks(assistant, "zyzzogeton", {"api-guide/pagination/"}, BASE)
    assert ranks["lexical"] is None and 1 <= ranks["dense"] <= 3
