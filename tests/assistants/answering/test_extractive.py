"""The offline answerer (issue 26): the sentences that answer, from several pages, best first; code
kept as code, lists as lists; the other pages as See also with their sections; an honest sentence
when the evidence is weak. Real MiniLM embedder; the passages are written here."""

import re

from assistants.answering.extractive import NO_ANSWER, extractive_answer, other_language_notice, pieces_of
from assistants.answering.grounding import SourceVectors, check_answer
from assistants.answering.pipeline import cited_hits
from assistants.answering.rendering import render_answer
from ingestion.search.hybrid import Hit

FILLER = [
    "The admin site reads your models and builds a management interface from them.",
    "Templates describe how the data is shown to the visitor of the site.",
    "Forms validate what visitors send before it reaches the database.",
]


def hit(n: int, text: str, path: list[str], page: str | None = None) -> Hit:
    page = page or f"page{n}"
    return Hit(n, n, text, path, path[-1].lower().replace(" ", "-"), f"http://d.test/{page}/", path[0])


def answer(question, hits, embedder, **options):
    vector = embedder.embed_queries([question])[0]
    return extractive_answer(question, hits, query_vector=vector, embedder=embedder, **options)


def test_the_sentence_that_answers_is_said_first_even_from_the_sixth_passage(embedder):
    # The old answerer quoted the top three passages, so a right page at rank 4-6 was never shown,
    # and it opened "Here is what I found" whatever it found.
    hits = [hit(n, FILLER[n % 3] + " " + FILLER[(n + 1) % 3], [f"Guide {n}", "Overview"]) for n in range(1, 6)]
    hits.append(
        hit(
            6,
            "Memcached is an entirely memory-based cache server. To share a cache over several servers, "
            "include every server address in LOCATION, as a list.",
            ["Cache framework", "Memcached"],
        )
    )
    text = answer("How do I share a memcached cache over several servers?", hits, embedder)
    assert text.startswith("To share a cache over several servers, include every server address in LOCATION")
    assert "[6]" in text.split("\n")[0]
    assert "Here is what I found" not in text


def test_code_is_kept_verbatim_with_its_line_breaks_and_rendered_as_code(embedder):
    code = "```\nCACHES = {\n    # one server\n    'default': {\n        'LOCATION': '127.0.0.1:11211',\n    }\n}\n```"
    hits = [
        hit(
            1,
            "To use Memcached, set the LOCATION of the cache in your settings, as in this example:\n\n" + code,
            ["Cache", "Memcached"],
        ),
        hit(2, FILLER[0], ["Admin", "Overview"]),
    ]
    text = answer("How do I set the memcached location in my settings?", hits, embedder)
    assert code in text
    html = render_answer(text, cited_hits(text, hits))
    assert "<pre><code>CACHES = {\n    # one server\n" in html  # comments no longer run into one line


def test_a_lead_in_whose_block_is_in_another_passage_is_not_said(embedder):
    # A code block too long for the lead-in's chunk lands in the next one: "... as in this example:" with
    # nothing after it promised what the visitor was not shown.
    hits = [
        hit(1, "Set the LOCATION of the memcached cache in your settings, as in this example:", ["Cache", "Memcached"]),
        hit(2, "The memcached LOCATION setting names the server address of the cache.", ["Cache", "Settings"]),
    ]
    text = answer("How do I set the memcached location in my settings?", hits, embedder)
    assert "as in this example:" not in text
    assert text.startswith("The memcached LOCATION setting names the server address of the cache.")


def test_a_list_is_rendered_as_a_list_and_nested_items_once(embedder):
    text_in = (
        "To install the kettle service, follow these steps:\n\n"
        "- Install the package\n  - with pip\n  - or with apt\n- Start the service"
    )
    hits = [hit(1, text_in, ["Kettle", "Install"]), hit(2, FILLER[1], ["Templates", "Overview"])]
    text = answer("How do I install the kettle service?", hits, embedder)
    assert "- Install the package\n  - with pip\n  - or with apt\n- Start the service" in text
    html = render_answer(text, cited_hits(text, hits))
    assert "<ul>" in html and html.count("with pip") == 1


def test_the_other_relevant_pages_follow_as_see_also_with_their_sections(embedder):
    hits = [
        hit(1, "Throttling limits the rate of requests that clients can make to an API.", ["Throttling", "Overview"]),
        hit(
            2,
            "The AnonRateThrottle limits the rate of requests from anonymous users.",
            ["Throttling", "AnonRateThrottle"],
            "page1",
        ),
        hit(3, "Rates for each scope are set in the DEFAULT_THROTTLE_RATES setting.", ["Settings", "Throttling rates"]),
    ]
    text = answer("How do I limit the rate of requests from anonymous users?", hits, embedder)
    cited = cited_hits(text, hits)
    assert {c["url"].split("#")[0] for c in cited} == {"http://d.test/page1/", "http://d.test/page3/"}
    sections = {c["section"] for c in cited}
    assert "AnonRateThrottle" in sections or "Overview" in sections
    if "See also:" in text:
        assert re.search(r"- Settings › Throttling rates \[3\]", text)
    assert all(c["section"] for c in cited)


def test_weak_evidence_is_said_in_one_honest_sentence(embedder):
    hits = [hit(1, FILLER[0], ["Admin", "Overview"])]
    assert answer("What is the capital of France?", hits, embedder, weak=True) == NO_ANSWER


def test_the_same_sentence_in_two_passages_is_said_once(embedder):
    same = "The default page size is set by the PAGE_SIZE setting."
    hits = [
        hit(1, same + " " + FILLER[0], ["Pagination", "Setup"]),
        hit(2, same + " " + FILLER[1], ["Settings", "PAGE_SIZE"]),
    ]
    text = answer("How do I set the default page size?", hits, embedder)
    assert text.count("PAGE_SIZE setting") == 1


def test_a_passage_cut_mid_sentence_is_not_quoted_from_its_middle(embedder):
    pieces = pieces_of("rest of a sentence that started earlier. The cache stores pages. It is fast.", 1)
    assert [p.text for p in pieces] == [
        "rest of a sentence that started earlier.",
        "The cache stores pages.",
        "It is fast.",
    ]
    hits = [
        hit(
            1,
            "rest of the caching sentence that began in another chunk. The cache stores whole pages for a time.",
            ["Cache", "Overview"],
        )
    ]
    text = answer("What does the cache store?", hits, embedder)
    assert not text.startswith("rest of")


def test_a_question_in_another_language_is_told_so_in_it(embedder):
    hits = [
        hit(1, "Throttling limits the rate of requests that clients can make to an API.", ["Throttling", "Overview"])
    ]
    text = answer("Come limito le richieste?", hits, embedder, language="it", content_language="en")
    assert text.startswith("I contenuti di questo sito sono in inglese")
    assert other_language_notice("xx", "en").startswith("This site's content is in English")


def test_grounding_tells_an_answer_from_an_off_topic_quote(embedder):
    # A verbatim quotation scored 1.0 whatever it said: an off-topic quote passed as grounded.
    source = "Throttling limits the rate of requests that clients can make to an API. Parcels ship from Lisbon."
    sources = SourceVectors(embedder, [hit(1, source, ["Throttling", "Overview"])])
    question = embedder.embed_queries(["How do I limit the rate of requests to my API?"])[0]
    on_topic = check_answer(
        "Throttling limits the rate of requests that clients can make to an API. [1]",
        sources,
        question_vector=question,
        relevance_threshold=0.3,
    )
    assert on_topic.supported and on_topic.addresses
    france = embedder.embed_queries(["What is the capital of France?"])[0]
    off_topic = check_answer("Parcels ship from Lisbon. [1]", sources, question_vector=france, relevance_threshold=0.3)
    assert off_topic.sentences[0].score == 1.0  # a quotation: supported by its source...
    assert off_topic.addresses is False and off_topic.supported is False  # ...but it does not answer


def test_see_also_across_languages_lists_the_pages_retrieval_found_in_its_order(embedder):
    """A page is listed under See also when its passage reaches this content's level of unrelated text;
    a question in another language than the content sinks toward that level even against the right
    passages (a one-language model), so its pages are listed in retrieval's order whatever their
    similarity. Here the level is set out of reach: only the question's language changes the list."""
    from assistants.answering.grounding import Evidence, SourceVectors
    from assistants.answering.pipeline import _offline_answer
    from assistants.answering.retrieval import Retrieval

    hits = [
        hit(1, "Throttling limits the rate of requests that clients can make to an API.", ["Throttling", "Overview"]),
        hit(2, "The AnonRateThrottle limits the rate of requests from anonymous users.", ["Throttling", "Anonymous"]),
        hit(3, "Rates for each scope are set in the DEFAULT_THROTTLE_RATES setting.", ["Settings", "Throttle rates"]),
    ]
    gate = {"min_similarity": 0.2, "cross_language_min_similarity": 0.99, "language": "en"}

    def offline(question: str, language: str) -> str:
        vector = embedder.embed_queries([question])[0]
        evidence = Evidence(question, 0.5, 1.0, weak=False, language=language, content_language="en")
        return _offline_answer(question, Retrieval(hits, evidence, SourceVectors(embedder, hits), vector, gate))

    same = offline("How do I limit the rate of requests?", "en")
    other = offline("Come limito il numero di richieste?", "it")
    assert "See also:" not in same  # no passage reaches the level: nothing beyond what the answer quotes
    assert other.startswith("I contenuti di questo sito sono in inglese")
    listed = {int(n) for n in re.findall(r"^- .* \[(\d)\]$", other, re.M)}
    quoted = {int(n) for n in re.findall(r"\[(\d)\]", other.split("See also:")[0])}
    assert listed and listed | quoted == {1, 2, 3} and not listed & quoted
