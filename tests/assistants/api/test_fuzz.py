"""Property-based fuzzing of /api/v1/ from its own OpenAPI document (schemathesis).

Every operation the served document describes is called through WSGI with generated paths,
queries, headers and bodies, valid and invalid, with a key that has every scope: no answer may
be a 5xx, and each must use a status code, content type and body shape the document declares.
The streaming chat answer is validated like any other: each of its Server-Sent Events against ChatEvent.
"""

import pytest

from chatsite.wsgi import application

# schemathesis and hypothesis (~2-3 s of imports) are imported by this test when it runs, not when the file
# is collected: every pytest process collects it, and `make test-fast` leaves it out (their pytest plugins
# are off in pyproject.toml's addopts; the test uses their libraries, not their plugins).

# The WSGI handler closes the database connection after each request, as in production, so the
# rows the test makes must be committed rather than held in a test transaction.
pytestmark = pytest.mark.django_db(transaction=True)

# A fixed number of cases per operation (their time is the machine's: a wall-clock budget here failed the
# test on a busy machine, not on a wrong answer).
EXAMPLES_PER_OPERATION = 40


def checks() -> list:
    from schemathesis.checks import not_a_server_error
    from schemathesis.specs.openapi.checks import (
        content_type_conformance,
        response_schema_conformance,
        status_code_conformance,
    )

    return [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


# Operations whose cases are two times in three aimed at the key's real assistant, so that their
# successful answers are checked too (not the writes that would queue crawls, nor the delete).
AIMED = {
    "GET /assistants/{assistant_id}",
    "PATCH /assistants/{assistant_id}",
    "GET /assistants/{assistant_id}/sources",
    "GET /assistants/{assistant_id}/conversations",
    "GET /assistants/{assistant_id}/conversations/export",
    "POST /assistants/{assistant_id}/chat",
    "GET /assistants/{assistant_id}/analytics/overview",
    "GET /assistants/{assistant_id}/analytics/topics",
    "GET /assistants/{assistant_id}/analytics/gaps",
    "GET /assistants/{assistant_id}/analytics/sources",
}

# The whole-team reads (no id to aim): each must answer some generated case with a 2xx too.
TEAM_READS = {
    "GET /analytics/overview",
    "GET /analytics/sources",
    "GET /analytics/topics",
    "GET /analytics/gaps",
    "GET /analytics/lead-quality",
}


def cases(operation, assistant_id: int):
    """The operation's generated cases; for :data:`AIMED` operations, two thirds on the real assistant,
    half of those without the generated query (a random query is mostly refused, and 40 cases drew no
    valid one for an operation in a CI run: the real assistant's success must not be left to chance)."""
    from hypothesis import strategies as st

    strategy = operation.as_strategy()
    if operation.label not in AIMED:
        return strategy

    def aim(case, target: str):
        if target != "generated":
            case.path_parameters["assistant_id"] = assistant_id
        if target == "real, no query":
            case.query = {}
        return case

    return st.builds(aim, strategy, st.sampled_from(("generated", "real", "real, no query")))


def fuzz(operation, assistant_id: int, headers: dict, succeeded: set) -> None:
    """Run the operation's generated cases; add its label to ``succeeded`` when one answered 2xx."""
    from hypothesis import HealthCheck, given
    from hypothesis import settings as hypothesis_settings

    every_check = checks()

    @given(case=cases(operation, assistant_id))
    @hypothesis_settings(
        max_examples=EXAMPLES_PER_OPERATION,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def answers_within_contract(case):
        response = case.call_and_validate(headers=headers, checks=every_check)
        if response.status_code < 300:
            succeeded.add(operation.label)

    answers_within_contract()


@pytest.mark.slow  # over 3 s alone: make test runs it, make test-fast does not
def test_every_operation_answers_within_its_contract(settings, key, assistant):
    """With a key of every scope on a team with one assistant; the rate limit is lifted."""
    import schemathesis

    settings.API_RATE_LIMIT_PER_MINUTE = 1_000_000
    headers = {"Authorization": f"Bearer {key[1]}"}
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", application)
    operations = [result.ok() for result in schema.get_all_operations()]
    documented = {f"{method.upper()} {path}" for path, item in schema.raw_schema["paths"].items() for method in item}
    # schemathesis leaves out the operation that serves the document it was loaded from
    assert {operation.label for operation in operations} == documented - {"GET /openapi.json"}
    # Deletes last: a generated id of 1 deletes the real assistant, which the aimed cases need.
    operations.sort(key=lambda operation: operation.method.upper() == "DELETE")
    succeeded = set()  # the operations that answered at least one case with a 2xx
    for operation in operations:
        fuzz(operation, assistant.pk, headers, succeeded)
    assert AIMED <= succeeded, f"aimed operations that never succeeded: {sorted(AIMED - succeeded)}"
    assert TEAM_READS <= succeeded, f"team reads that never succeeded: {sorted(TEAM_READS - succeeded)}"
