"""Activity-log benchmark: how fast entries are appended (each in its own transaction, as the
services write them) and how fast `verify_activity_log` walks the chain.

    python benchmarks/activity_log.py [--entries 20000] [--database-url postgres://…]

Without --database-url it builds a throw-away SQLite database (WAL) in a temporary folder,
migrations applied. With a PostgreSQL URL it uses that database as it is (give it an empty,
throw-away one: entries are appended and left there). Prints the figures and the machine.
No target is set by the issue; the figures are for the report.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from _machine import machine  # noqa: E402 - benchmarks/ is the script's own folder
from _scratch import scratch_django  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=20_000)
    parser.add_argument("--database-url", default="")
    args = parser.parse_args()

    scratch_django("activity", database_url=args.database_url or None)
    from django.db import connection

    from portal.services import activity_log_record, activity_log_verify

    before, _ = activity_log_verify()
    started = time.perf_counter()
    for i in range(args.entries):
        activity_log_record(actor=None, system="benchmark", action="bench.appended",
                            target=("bench.thing", i, f"thing {i}"),
                            data={"before": {"status": "a", "n": i}, "after": {"status": "b", "n": i + 1}})
    append_seconds = time.perf_counter() - started

    started = time.perf_counter()
    checked, problem = activity_log_verify()
    verify_seconds = time.perf_counter() - started
    assert problem is None and checked == before + args.entries, (checked, problem)

    print(f"machine: {machine()}; database: {connection.vendor}")
    print(f"append: {args.entries} entries in {append_seconds:.2f} s "
          f"= {args.entries / append_seconds:,.0f} entries/s ({1000 * append_seconds / args.entries:.2f} ms each)")
    print(f"verify: {checked} entries in {verify_seconds:.2f} s = {checked / verify_seconds:,.0f} entries/s")


if __name__ == "__main__":
    main()
