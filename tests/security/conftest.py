import pytest

from tests.security.netns import NamespaceAgent


@pytest.fixture(scope="session")
def netns(django_db_setup, django_db_blocker):
    """The agent in its own network namespace (see tests/security/netns.py), on the test database."""
    from django.conf import settings
    from django.db import connection

    with django_db_blocker.unblock():
        database = dict(connection.settings_dict)
    agent = NamespaceAgent(database, settings.REDIS_URL)
    yield agent
    agent.close()
