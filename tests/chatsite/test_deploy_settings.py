"""Production settings are safe by default (security finding 11): with a SITE_URL on https and DEBUG off,
`manage.py check --deploy --fail-level WARNING` is clean, from the environment alone."""

import os
import secrets
import subprocess
import sys

import pytest

from chatsite.db import database_url
from tests.conftest import REPO


def manage(*args: str, **env: str) -> subprocess.CompletedProcess:
    from django.db import connection

    environment = {
        **{key: value for key, value in os.environ.items() if key != "DJANGO_SETTINGS_MODULE"},
        "DJANGO_SETTINGS_MODULE": "chatsite.settings",  # production settings, not the tests'
        "DATABASE_URL": database_url(connection.settings_dict),
        "DEBUG": "false",
        "SECRET_KEY": secrets.token_urlsafe(60),
        **env,
    }
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=REPO, env=environment, capture_output=True, text=True, timeout=120
    )


def test_check_deploy_is_clean_for_an_https_site():
    result = manage(
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        SITE_URL="https://chat.example.com",
        ALLOWED_HOSTS="chat.example.com",
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_an_http_site_or_a_weakened_setting_is_reported():
    result = manage(
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        SITE_URL="http://chat.example.com",
        ALLOWED_HOSTS="chat.example.com",
    )
    assert result.returncode != 0 and "W012" in result.stdout + result.stderr
    result = manage(
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        SITE_URL="https://chat.example.com",
        ALLOWED_HOSTS="chat.example.com",
        SESSION_COOKIE_SECURE="false",
    )
    assert result.returncode != 0 and "W012" in result.stdout + result.stderr


@pytest.mark.django_db
def test_https_defaults_redirect_and_send_hsts_but_not_for_the_tls_ask():
    script = (
        "import django; django.setup()\n"
        "from django.test import Client\n"
        "c = Client()\n"
        "r = c.get('/login/', HTTP_HOST='chat.example.com')\n"
        "print(r.status_code, r.get('Location'))\n"
        "r = c.get('/login/', HTTP_HOST='chat.example.com', secure=True)\n"
        "print(r.status_code, r.get('Strict-Transport-Security'))\n"
        "r = c.get('/domains/check', {'domain': 'x.example.org'}, HTTP_HOST='chat.example.com')\n"
        "print(r.status_code)\n"
        "from django.conf import settings\n"
        "print(settings.SESSION_COOKIE_SECURE, settings.CSRF_COOKIE_SECURE)\n"
    )
    result = manage("shell", "-c", script, SITE_URL="https://chat.example.com", ALLOWED_HOSTS="chat.example.com")
    lines = result.stdout.strip().splitlines()[-4:]  # after the shell's own banner
    assert lines[0] == "301 https://chat.example.com/login/", result.stdout + result.stderr
    assert lines[1] == "200 max-age=31536000; includeSubDomains"
    assert lines[2] == "404"  # answered (an unknown domain), not redirected
    assert lines[3] == "True True"
