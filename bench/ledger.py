"""Ledger benchmark on a real PostgreSQL (started by the bench itself, like the tests).

    .venv/bin/python -m bench.ledger [--appends 2000] [--verify 100000] [--size 1000000] [--repeats 3]

1. signed appends per second through the real write path (sign a stem-sized record, append
   under the state-row lock, commit), from 1 and from 2 processes at once;
2. `verify_ledger` over the first --verify signed entries;
3. inclusion and consistency proof generation once the log holds --size entries (the bulk of
   them loaded with COPY, bodies unsigned: proofs do not read bodies).
Writes bench/results/ledger.json and prints medians.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path

from bench.scratch import scratch_dir

ROOT = Path(__file__).resolve().parent.parent
RECORD = {  # about the size of a real stem provenance record
    "schema": "clearstem.stem-provenance/v1",
    "stem": {"id": "00000000-0000-0000-0000-000000000000", "name": "vocals", "sha256": "ab" * 32, "size": 5292044,
             "format": "wav", "sample_rate": 44100, "bits_per_sample": 16, "channels": 2, "duration_s": 30.0},
    "source": {"upload_id": "11111111-1111-1111-1111-111111111111", "sha256": "cd" * 32, "original_name": "x.flac",
               "duration_s": 30.0},
    "identification": {"matcher": "chromaprint-exact-v1", "matches": [{"recording": "r", "isrc": "QZNWR2600001",
                       "score": 0.93, "query_start_s": 0.0, "ref_start_s": 6.0, "duration_s": 17.3}]},
    "rights": {"basis": "license", "grants": [{"grant": "g", "version": 1, "terms_digest": "ef" * 32}]},
    "model": {"name": "dsp", "weights_sha256": None, "code_version": "dsp-1", "parameters": {"n_fft": 4096}},
    "actor": {"user": "producer@example.com", "organisation": "studio"},
}

APPEND_WORKER = """
import sys, time, django
django.setup()
from django.db import transaction
from provenance.ledger import do_record_event
n, tag = int(sys.argv[1]), sys.argv[2]
record = __import__("json").loads(sys.argv[3])
with transaction.atomic():  # warm the connection and code paths
    do_record_event("stem", f"bench:{tag}:warm", dict(record, n=-1))
t0 = time.time()
for i in range(n):
    with transaction.atomic():
        do_record_event("stem", f"bench:{tag}:{i}", dict(record, n=i))
print(t0, time.time())
"""


def run_appenders(procs: int, per_proc: int) -> float:
    """Wall-clock appends/s with `procs` processes appending at once."""
    children = [subprocess.Popen([sys.executable, "-c", APPEND_WORKER, str(per_proc), f"{procs}-{p}-{time.time()}",
                                  json.dumps(RECORD)], cwd=ROOT, stdout=subprocess.PIPE, text=True) for p in range(procs)]
    spans = []
    for c in children:
        out, _ = c.communicate()
        if c.returncode:
            raise SystemExit("append worker failed")
        spans.append(tuple(map(float, out.split())))
    # from the first worker's first append to the last worker's last: start-up is not counted
    return procs * per_proc / (max(e for _, e in spans) - min(s for s, _ in spans))


def bulk_extend(target: int, signed: bool) -> None:
    """Grow the log to `target` entries with COPY, through the same Frontier and node keys."""
    from django.db import connection, transaction
    from django.utils import timezone

    from provenance.keys import get_signer
    from provenance.ledger import node_key
    from provenance.merkle import Frontier, leaf_hash
    from provenance.models import LedgerState
    from provenance.signing import canonical_bytes

    signer = get_signer()
    with transaction.atomic():
        state, _ = LedgerState.objects.select_for_update().get_or_create(id=1)
        frontier = Frontier.from_bytes(state.size, bytes(state.frontier))
        now = timezone.now()
        raw = connection.connection
        batch = 20000
        while frontier.size < target:
            entries, nodes = [], []
            for _ in range(min(batch, target - frontier.size)):
                i = frontier.size
                envelope = signer.sign_envelope(dict(RECORD, n=i)) if signed else {"payload": "", "signatures": []}
                body = canonical_bytes({"v": 1, "index": i, "kind": "stem", "subject": f"bulk:{i}",
                                        "at": now.isoformat(), "envelope": envelope})
                leaf = leaf_hash(body)
                for coord, h in frontier.append(leaf):
                    nodes.append((node_key(*coord), h))
                entries.append((i, "stem", f"bulk:{i}", body, leaf, now))
            with raw.cursor() as cur:
                with cur.copy("COPY provenance_ledgerentry (index, kind, subject, body, leaf_hash, created_at) FROM STDIN") as cp:
                    for row in entries:
                        cp.write_row(row)
                with cur.copy("COPY provenance_ledgernode (key, hash) FROM STDIN") as cp:
                    for row in nodes:
                        cp.write_row(row)
        state.size, state.frontier = frontier.size, frontier.to_bytes()
        state.save(update_fields=["size", "frontier"])


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--appends", type=int, default=2000, help="appends per run (split across processes)")
    p.add_argument("--verify", type=int, default=100_000)
    p.add_argument("--size", type=int, default=1_000_000)
    p.add_argument("--proofs", type=int, default=1000)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "ledger.json")
    args = p.parse_args()

    os.environ["CLEARSTEM_SERVERS_NO_BOOT"] = "1"
    sys.path.insert(0, str(ROOT))
    from tests.servers import start_postgres, stop_all

    base = scratch_dir("clearstem-bench-")
    url = start_postgres(base, durable=True)  # fsync and synchronous commit on, as in production
    import psycopg

    with psycopg.connect(url.rsplit("/", 1)[0] + "/postgres", autocommit=True) as conn:
        conn.execute("CREATE DATABASE clearstem")
    os.environ.update(DATABASE_URL=url, CLEARSTEM_DATA_DIR=str(base / "data"),
                      DJANGO_SETTINGS_MODULE="clearstem.settings", CLEARSTEM_LOG_LEVEL="WARNING")
    try:
        import django

        django.setup()
        from django.core.management import call_command

        from provenance.keys import get_signer
        from provenance.ledger import consistency, current_tree_head, inclusion_proof, ledger_size, verify_ledger

        call_command("migrate", verbosity=0)
        get_signer()  # create the key once, before the appenders share it
        results: dict = {"params": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}}

        # 1. appends
        for procs in (1, 2):
            rates = [run_appenders(procs, args.appends // procs) for _ in range(args.repeats)]
            results[f"appends_per_s_{procs}proc"] = {"median": statistics.median(rates), "runs": rates}

        # 2. verify_ledger over --verify signed entries
        bulk_extend(args.verify, signed=True)
        current_tree_head()
        times = []
        for _ in range(args.repeats):
            report = verify_ledger()
            assert report.ok, report
            times.append(report.elapsed_s)
        results["verify_ledger"] = {"entries": report.size, "median_s": statistics.median(times), "runs": times}

        # 3. proofs at --size entries
        t0 = time.perf_counter()
        bulk_extend(args.size, signed=False)
        results["bulk_load_s"] = time.perf_counter() - t0
        size = ledger_size()
        rng = random.Random(7)
        inc, cons = [], []
        for _ in range(args.proofs):
            i = rng.randrange(size)
            t0 = time.perf_counter()
            inclusion_proof(i, size)
            inc.append((time.perf_counter() - t0) * 1000)
            a = rng.randrange(1, size)
            t0 = time.perf_counter()
            consistency(a, size)
            cons.append((time.perf_counter() - t0) * 1000)

        def pct(xs, q):
            return sorted(xs)[int(q * (len(xs) - 1))]

        results["proofs"] = {"size": size, "inclusion_ms": {"p50": pct(inc, .5), "p95": pct(inc, .95)},
                             "consistency_ms": {"p50": pct(cons, .5), "p95": pct(cons, .95)}}
    finally:
        stop_all()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))
    a1, a2 = results["appends_per_s_1proc"]["median"], results["appends_per_s_2proc"]["median"]
    v, pr = results["verify_ledger"], results["proofs"]
    print(f"signed appends/s on PostgreSQL: {a1:.0f} (1 process), {a2:.0f} (2 processes)   [target >= 500]")
    print(f"verify_ledger of {v['entries']} entries: {v['median_s']:.1f} s median            [target <= 30 s]")
    print(f"proofs at {pr['size']} entries: inclusion p50 {pr['inclusion_ms']['p50']:.2f} ms, "
          f"p95 {pr['inclusion_ms']['p95']:.2f} ms; consistency p50 {pr['consistency_ms']['p50']:.2f} ms, "
          f"p95 {pr['consistency_ms']['p95']:.2f} ms   [target <= 5 ms]")
    print(f"(bulk load to {pr['size']} entries took {results['bulk_load_s']:.0f} s; medians of {args.repeats} runs)")
    print(f"results: {args.out}")


if __name__ == "__main__":
    main()
