"""Email settings from the environment: SMTP when EMAIL_HOST is set, else the console."""

import json
import os
import subprocess
import sys

from tests.conftest import REPO

READ = (
    "import json, chatsite.settings as s; print(json.dumps([s.EMAIL_BACKEND, s.EMAIL_HOST, s.EMAIL_PORT, "
    "s.EMAIL_HOST_USER, s.EMAIL_HOST_PASSWORD, s.EMAIL_USE_TLS, s.DEFAULT_FROM_EMAIL]))"
)


def email_settings(**env) -> list:
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("EMAIL_", "DEFAULT_FROM_EMAIL"))}
    output = subprocess.run(
        [sys.executable, "-c", READ], cwd=REPO, env={**environment, **env}, capture_output=True, text=True, check=True
    ).stdout
    return json.loads(output.strip().splitlines()[-1])


def test_without_a_host_emails_go_to_the_console():
    backend, host, port, *_, sender = email_settings(SITE_URL="https://help.example.com")
    assert backend == "django.core.mail.backends.console.EmailBackend" and host == ""
    assert sender == "Chatsite <noreply@help.example.com>"


def test_a_host_sends_through_smtp_with_its_login():
    values = email_settings(
        EMAIL_HOST="smtp.example.com",
        EMAIL_HOST_USER="mailer",
        EMAIL_HOST_PASSWORD="s3cret",
        EMAIL_USE_TLS="true",
        DEFAULT_FROM_EMAIL="Help <help@example.com>",
    )
    assert values == [
        "django.core.mail.backends.smtp.EmailBackend",
        "smtp.example.com",
        587,
        "mailer",
        "s3cret",
        True,
        "Help <help@example.com>",
    ]
    assert email_settings(EMAIL_HOST="mail.local", EMAIL_PORT="2525")[2] == 2525
