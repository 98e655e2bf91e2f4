"""Real PostgreSQL and Redis for the test run (loaded with `-p tests.servers`).

pytest-django reads Django settings before any conftest runs, so the servers are started by
this plugin's pytest_load_initial_conftests (a wrapper: it runs before pytest-django's) and their
addresses exported as DATABASE_URL and CLEARSTEM_BROKER_URL: the suite runs the production
configuration. Set CLEARSTEM_TEST_DATABASE_URL / CLEARSTEM_TEST_BROKER_URL to use servers you
already run.

Under pytest-xdist (`-n 2`, the default in pyproject.toml) every worker process starts its own
PostgreSQL and Redis (own ports and data directories), so workers share no database, broker
queue or data dir; the controller process, which runs no test, starts none. With servers you
already run, pytest-django gives each worker its own test database (test_clearstem_gw0, …) and
each worker gets its own Redis database number.
"""
from __future__ import annotations

import atexit
import os
import pwd
import shutil
import socket
import tempfile
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

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


def _own_redis_db(url: str, worker: str) -> str:
    """redis://host:port/N -> redis://host:port/N+k for xdist worker gwk: a shared Redis server,
    one database (queues, cache) per worker."""
    if not worker.startswith("gw"):
        return url
    parts = urlsplit(url)
    db = int(parts.path.strip("/") or 0) + int(worker[2:])
    return urlunsplit(parts._replace(path=f"/{db}"))


def _boot(servers: bool = True) -> None:
    # One intra-op thread per process (torch's OpenMP pool, OpenBLAS), here and in the processes
    # tests start: the suite runs one pytest-xdist worker per core, besides its servers and
    # browsers, and torch's default of one spinning thread per core in every process
    # oversubscribes the cores (measured on 2 cores: the tiny-HDemucs tests 5-10x slower).
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    base = Path(tempfile.mkdtemp(prefix="clearstem-test-"))
    os.environ["CLEARSTEM_DATA_DIR"] = str(base / "data")
    if os.environ.get("CLEARSTEM_TEST_KEEP_DIRS") != "1":  # =1 keeps the servers' data and logs to read
        atexit.register(shutil.rmtree, base, True)
    if not servers:
        return
    os.environ.setdefault("DATABASE_CONN_MAX_AGE", "0")
    os.environ["DATABASE_URL"] = os.environ.get("CLEARSTEM_TEST_DATABASE_URL") or start_postgres(base)
    if shared := os.environ.get("CLEARSTEM_TEST_BROKER_URL"):
        os.environ["CLEARSTEM_BROKER_URL"] = _own_redis_db(shared, os.environ.get("PYTEST_XDIST_WORKER", ""))
    else:
        os.environ["CLEARSTEM_BROKER_URL"] = _start_redis(base)
    atexit.register(stop_all)


def _runs_tests_elsewhere(early_config) -> bool:
    """True in pytest-xdist's controller process, which hands every test to its workers."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        return False
    ns = early_config.known_args_namespace
    workers = getattr(ns, "numprocesses", None)
    if workers in ("auto", "logical"):
        return not getattr(ns, "usepdb", False)
    return bool(workers) or (bool(getattr(ns, "tx", None)) and getattr(ns, "dist", "no") != "no")


@pytest.hookimpl(wrapper=True)
def pytest_load_initial_conftests(early_config, parser, args):
    """Before pytest-django reads the settings (its own implementation of this hook)."""
    if os.environ.get("CLEARSTEM_SERVERS_NO_BOOT") != "1":  # benchmarks import the helpers only
        _boot(servers=not _runs_tests_elsewhere(early_config))
    return (yield)


def pytest_unconfigure(config):
    stop_all()
