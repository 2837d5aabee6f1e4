"""The tests' database backend (``tests/postgresql/``): after a test whose rows were committed, every row a
test writes is gone, chunks and their partitions' rows included, and the rows migrate derives from the
models (content types, permissions) are still there, without being made again."""

import pytest
from django.contrib.auth.models import Permission, User
from django.contrib.contenttypes.models import ContentType
from django.core.management import call_command

from assistants.models import Assistant, Team
from ingestion.models import Chunk
from tests.factories import index_pages, make_assistant


@pytest.mark.django_db(transaction=True)
def test_the_flush_after_a_committed_test_empties_what_tests_write_and_keeps_the_schemas_rows(
    django_assert_max_num_queries,
):
    schema_rows = {
        ContentType: list(ContentType.objects.values_list("id", "model")),
        Permission: Permission.objects.count(),
    }
    assert schema_rows[ContentType] and schema_rows[Permission]
    index_pages(make_assistant(), {"https://example.org/a": "<h1>Flushing</h1><p>Rows a test commits.</p>"})
    assert Chunk.objects.exists()
    with django_assert_max_num_queries(5):  # the tables, the foreign keys checked at once, the DELETEs in a transaction
        # as Django's TransactionTestCase does after such a test
        call_command("flush", verbosity=0, interactive=False, reset_sequences=False, allow_cascade=False)
    assert not any(model.objects.exists() for model in (Chunk, Assistant, Team, User))
    assert list(ContentType.objects.values_list("id", "model")) == schema_rows[ContentType]
    assert Permission.objects.count() == schema_rows[Permission]
