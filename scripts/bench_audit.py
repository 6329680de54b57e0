"""Benchmark: the audit chain (issue 30).

On a throwaway PostgreSQL:
- an audited write with its chain entry against the same write without it: `record_refusal`
  (the refused message and its entry, one transaction) against the bare INSERT of the row,
  N each, alternating in blocks; p50 and p99 and their ratio;
- `tether audit verify`'s walk (tether.store.audit.ChainCheck over the store's own cursor) of a
  chain of `--entries` entries (default 1,000,000; goal: under 60 s). The chain is filled in
  bulk (COPY) with entries made by the chain's own functions (entry_body, entry_hash), as
  appending a million one by one would take this machine most of an hour.

    .venv/bin/python scripts/bench_audit.py [--entries 1000000] [--writes 2000]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tether.contracts import RefusalRecord  # noqa: E402
from tether.ops.runtime import run_and_exit  # noqa: E402
from tether.ops.stack import EmbeddedPostgres, free_port  # noqa: E402
from tether.store import Store, connect_pool, migrate  # noqa: E402
from tether.store.audit import GENESIS, ChainCheck, entry_body, entry_hash  # noqa: E402


def p(values: list[float], q: float) -> float:
    return sorted(values)[min(len(values) - 1, int(q * len(values)))] * 1000


async def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--writes", type=int, default=2000)
    args = parser.parse_args()
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        pg = EmbeddedPostgres(Path(tmp) / "pg", port=free_port())
        pg.start()
        try:
            pool = await connect_pool(pg.url)
            await migrate(pool)
            store = Store(pool)
            record = RefusalRecord(
                workflow_id="deploy-web-1",
                workflow_type="DeploymentWorkflow",
                handler="approve",
                kind="signal",
                reason="the approval or order is not signed with the founder's key",
                at=datetime.now(UTC),
            )
            bare: list[float] = []
            chained: list[float] = []
            block = 100
            for _ in range(args.writes // block):
                for _ in range(block):
                    t0 = time.perf_counter()
                    await pool.execute(
                        """INSERT INTO refused_messages (at, workflow_id, workflow_type, handler,
                                                         kind, reason)
                           VALUES ($1, $2, $3, $4, $5, $6)""",
                        record.at,
                        record.workflow_id,
                        record.workflow_type,
                        record.handler,
                        record.kind,
                        record.reason,
                    )
                    bare.append(time.perf_counter() - t0)
                for _ in range(block):
                    t0 = time.perf_counter()
                    await store.record_refusal(record)
                    chained.append(time.perf_counter() - t0)
            print(f"audited write, {len(bare)} each            p50 ms   p99 ms")
            for name, values in (
                ("the row alone (baseline)", bare),
                ("the row and its chain entry", chained),
            ):
                print(f"  {name:33}  {p(values, 0.5):7.2f}  {p(values, 0.99):7.2f}")
            print(
                f"  ratio: p50 {statistics.median(chained) / statistics.median(bare):.2f}; "
                "a tool call's report appends nothing to the chain"
            )

            # A chain of --entries, after what the writes above appended.
            head = await store.audit_head()
            seq, prev = head if head else (0, GENESIS)
            start = datetime.now(UTC) - timedelta(days=365)
            t0 = time.perf_counter()
            batch: list[tuple[object, ...]] = []
            for n in range(args.entries):
                seq += 1
                at = start + timedelta(seconds=n * 30)
                detail = {"handler": "report", "kind": "update", "reason": f"replayed {n}"}
                body = entry_body(
                    seq, at, "message_refused", f"session-agent-{n % 11}", "gw", detail
                )
                digest = entry_hash(prev, body)
                batch.append(
                    (seq, at, "message_refused", f"session-agent-{n % 11}", body, prev, digest)
                )
                prev = digest
                if len(batch) == 50_000:
                    await pool.copy_records_to_table("audit_chain", records=batch)
                    batch = []
            if batch:
                await pool.copy_records_to_table("audit_chain", records=batch)
            filled = time.perf_counter() - t0
            total = await pool.fetchval("SELECT count(*) FROM audit_chain")
            t0 = time.perf_counter()
            check = ChainCheck([])
            async for row in store.audit_rows():
                check.add(row["seq"], row["body"], row["prev"], row["hash"])
            verdict = check.finish()
            walked = time.perf_counter() - t0
            print(
                f"chain of {total:,} entries (filled in {filled:.1f} s): verified in "
                f"{walked:.1f} s ({'ok' if verdict.ok else verdict.problems[0]}); goal < 60 s"
            )
            await pool.close()
        finally:
            pg.stop()
    return 0


if __name__ == "__main__":
    run_and_exit(main())
