"""Real PostgreSQL and Redis for the test run (loaded with `-p tests.servers`).

pytest-django reads Django settings before any conftest runs, so the servers are started when
this plugin is imported and their addresses exported as DATABASE_URL and
CLEARSTEM_BROKER_URL: the suite runs the production configuration. Set
CLEARSTEM_TEST_DATABASE_URL / CLEARSTEM_TEST_BROKER_URL to use servers you already run.
"""
from __future__ import annotations

import atexit
import os
import pwd
import shutil
import socket
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
_started: list = []


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_postgres(base: Path, durable: bool = False) -> str:
    """A throwaway cluster; `durable` keeps fsync and synchronous commit on (benchmarks)."""
    from pytest_postgresql.executors.proc import PostgreSQLExecutor

    pg_dir = Path(tempfile.mkdtemp(prefix="pg-", dir=base))
    if os.geteuid() == 0:
        # the cluster runs as `postgres`: let it own its directory and traverse to it
        uid = pwd.getpwnam("postgres").pw_uid
        os.chown(pg_dir, uid, -1)
        for parent in pg_dir.parents:
            if str(parent) == "/":
                break
            os.chmod(parent, os.stat(parent).st_mode | 0o001)
    port = _free_port()
    executor = PostgreSQLExecutor(
        executable=str(ROOT / "tests/support/pg_ctl_as_postgres.sh"),
        host="127.0.0.1", port=port, datadir=str(pg_dir / "data"), unixsocketdir=str(pg_dir),
        logfile=str(pg_dir / "postgresql.log"), startparams="-w", dbname="clearstem", user="clearstem",
        postgres_options="-c max_connections=200" + (
            "" if durable else " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"),
    )
    executor.start()
    _started.append(executor)
    return f"postgres://clearstem@127.0.0.1:{port}/clearstem"


def _start_redis(base: Path) -> str:
    from pytest_redis.executor.process import RedisExecutor

    port = _free_port()
    executor = RedisExecutor(
        executable=shutil.which("redis-server") or "/usr/bin/redis-server", databases=4, redis_timeout=30,
        loglevel="warning", host="127.0.0.1", port=port, datadir=Path(tempfile.mkdtemp(prefix="redis-", dir=base)),
    )
    executor.start()
    _started.append(executor)
    return f"redis://127.0.0.1:{port}/0"


def stop_all() -> None:
    while _started:
        try:
            _started.pop().stop()
        except Exception:  # noqa: BLE001 - best effort at exit
            pass


def _boot() -> None:
    base = Path(tempfile.mkdtemp(prefix="clearstem-test-"))
    os.environ["CLEARSTEM_DATA_DIR"] = str(base / "data")
    os.environ.setdefault("DATABASE_CONN_MAX_AGE", "0")
    os.environ["DATABASE_URL"] = os.environ.get("CLEARSTEM_TEST_DATABASE_URL") or start_postgres(base)
    os.environ["CLEARSTEM_BROKER_URL"] = os.environ.get("CLEARSTEM_TEST_BROKER_URL") or _start_redis(base)
    atexit.register(shutil.rmtree, base, True)
    atexit.register(stop_all)


if os.environ.get("CLEARSTEM_SERVERS_NO_BOOT") != "1":  # benchmarks import the helpers only
    _boot()


def pytest_unconfigure(config):
    stop_all()
