"""Record the workflow histories the replay tests check new code against.

Run after a deliberate, versioned change to a workflow, and commit the new files:

    .venv/bin/python scripts/record_histories.py

It starts its own Temporal dev server and PostgreSQL in a temporary folder.
"""

from __future__ import annotations

import sys
import tempfile
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from activities.store import Store, connect_pool, migrate  # noqa: E402
from tether import api  # noqa: E402
from tether.client import connect  # noqa: E402
from tether.config import TetherConfig  # noqa: E402
from tether.contracts import TaskSpec  # noqa: E402
from tether.runtime import run_and_exit  # noqa: E402
from tether.stack import EmbeddedPostgres, free_port, start_temporal_dev_server  # noqa: E402
from worker import build_worker  # noqa: E402

OUT = ROOT / "tests" / "histories"


class Flaky(BaseHTTPRequestHandler):
    """Fails the first request, then succeeds: one failed and one passing verification."""

    calls = 0

    def do_GET(self) -> None:
        Flaky.calls += 1
        self.send_response(500 if Flaky.calls == 1 else 200)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


async def main() -> int:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Flaky)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/health"
    with tempfile.TemporaryDirectory() as tmp:
        pg = EmbeddedPostgres(Path(tmp) / "pg", port=free_port())
        pg.start()
        env = await start_temporal_dev_server(
            port=free_port(), ui_port=None, http_port=None, db_file=None
        )
        try:
            client = await connect(env.client.service_client.config.target_host, "default")
            pool = await connect_pool(pg.url)
            await migrate(pool)
            queue = f"record-{uuid.uuid4().hex[:8]}"
            async with build_worker(client, queue, Store(pool), TetherConfig()):
                spec = TaskSpec.model_validate(
                    {
                        "id": "replay-lifecycle",
                        "title": "Lifecycle recorded for replay tests",
                        "checks": [{"kind": "http", "url": url, "name": "health"}],
                    }
                )
                await api.create_task(client, queue, spec)
                await api.claim_task(client, spec.id, "coder")
                await api.block_task(client, spec.id, "founder", "waiting for a key")
                await api.unblock_task(client, spec.id, "founder", "key arrived")
                first = await api.submit_task(client, spec.id, "coder", "done")
                second = await api.submit_task(client, spec.id, "coder", "fixed")
                assert not first.done and second.done
                handle = client.get_workflow_handle(f"task-{spec.id}")
                await handle.result()
                history = await handle.fetch_history()
            await pool.close()
            OUT.mkdir(parents=True, exist_ok=True)
            path = OUT / "task_lifecycle.json"
            path.write_text(history.to_json())
            print(f"wrote {path.relative_to(ROOT)}")
        finally:
            await env.shutdown()
            pg.stop()
            server.shutdown()
    return 0


if __name__ == "__main__":
    run_and_exit(main())
