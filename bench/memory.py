"""Memory: RSS of idle gunicorn workers, flask-hyper with consumers running against plain Flask."""

from __future__ import annotations

import http.client
import time
from typing import Any

from .common import RESULTS_DIR, create_topics, median, unique_topic
from .servers import free_port, post_json, start_gunicorn

WARMUP_REQUESTS = 50
SETTLE_SECONDS = 3.0


def run_section(bootstrap: str, sizes: Any) -> dict[str, Any]:
    """Start each app in turn, warm its workers up, and read their VmRSS; repeat, interleaved."""
    runs: dict[str, list[float]] = {"flask-hyper": [], "plain-flask": []}
    for repetition in range(sizes.repetitions):
        topic = unique_topic("memory")
        create_topics(bootstrap, [topic])
        env = {"BENCH_BOOTSTRAP": bootstrap, "BENCH_RECEIVER_TOPICS": topic, "BENCH_GROUP": unique_topic("memory-group")}
        runs["flask-hyper"].append(_worker_rss("bench.apps:create_hyper_app()", True, env, "/graphql"))
        runs["plain-flask"].append(_worker_rss("bench.apps:create_plain_flask_app()", False, env, "/"))
        print(
            f"  memory #{repetition + 1}: flask-hyper {runs['flask-hyper'][-1]:.1f} MiB,"
            f" plain Flask {runs['plain-flask'][-1]:.1f} MiB per worker",
            flush=True,
        )
    medians = {name: median(values) for name, values in runs.items()}
    return {"runs_mib": runs, "median_mib": medians, "extra_mib": medians["flask-hyper"] - medians["plain-flask"]}


def _worker_rss(app: str, hooks: bool, env: dict[str, str], path: str) -> float:
    """Return the mean VmRSS of the app's workers in MiB after warm-up."""
    port = free_port()
    server = start_gunicorn(app, port, hooks, env, RESULTS_DIR / "gunicorn-memory.log")
    try:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        for _ in range(WARMUP_REQUESTS):
            if path == "/graphql":
                post_json(port, path, {"query": '{ hello(name: "warm") }'}, connection)
            else:
                connection.request("GET", path)
                connection.getresponse().read()
        connection.close()
        time.sleep(SETTLE_SECONDS)
        sizes = [_vm_rss_kib(pid) for pid in server.child_pids()]
    finally:
        server.stop()
    if not sizes:
        raise RuntimeError(f"gunicorn for {app} had no worker processes to measure")
    return sum(sizes) / len(sizes) / 1024


def _vm_rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError(f"/proc/{pid}/status has no VmRSS line")
