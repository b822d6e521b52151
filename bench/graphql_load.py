"""GraphQL over HTTP: HyperService against a bare Ariadne WSGI app, both under gunicorn.

The load generator is wrk on 127.0.0.1 when it is installed, else a Python
client with keep-alive connections on several threads.
"""

from __future__ import annotations

import http.client
import json
import re
import shutil
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from .common import RESULTS_DIR, create_topics, median, percentile, unique_topic
from .servers import THREADS, WORKERS, free_port, post_json, start_gunicorn

CONTENDERS = ("flask-hyper", "bare-ariadne", "flask-ariadne")
OPERATIONS = ("query", "mutation")
CONNECTIONS = 8
QUERY = {"query": 'query Hello { hello(name: "bench") }'}


def mutation_body(topic: str) -> dict[str, Any]:
    return {
        "query": "mutation Emit($topic: String!, $sentAt: Float!) { emit(topic: $topic, sentAt: $sentAt) }",
        "variables": {"topic": topic, "sentAt": 0.0},
    }


def run_section(bootstrap: str, sizes: Any) -> dict[str, Any]:
    """Serve both apps at once and load them in turn, round after round."""
    ports = {name: free_port() for name in CONTENDERS}
    env = {"BENCH_BOOTSTRAP": bootstrap}
    servers = {}
    try:
        servers["flask-hyper"] = start_gunicorn(
            "bench.apps:create_hyper_app()", ports["flask-hyper"], True, env, RESULTS_DIR / "gunicorn-hyper.log"
        )
        servers["bare-ariadne"] = start_gunicorn(
            "bench.apps:create_bare_ariadne_app()", ports["bare-ariadne"], False, env,
            RESULTS_DIR / "gunicorn-bare.log",
        )
        servers["flask-ariadne"] = start_gunicorn(
            "bench.apps:create_flask_ariadne_app()", ports["flask-ariadne"], False, env,
            RESULTS_DIR / "gunicorn-flask-ariadne.log",
        )
        return _measure(bootstrap, ports, sizes)
    finally:
        for server in servers.values():
            server.stop()


def _measure(bootstrap: str, ports: dict[str, int], sizes: Any) -> dict[str, Any]:
    runs: dict[str, list[dict[str, Any]]] = {f"{c} {o}": [] for c in CONTENDERS for o in OPERATIONS}
    for repetition in range(sizes.repetitions):
        for operation in OPERATIONS:
            for contender in CONTENDERS:
                body = QUERY
                if operation == "mutation":
                    topic = unique_topic(f"http-{contender}")
                    create_topics(bootstrap, [topic])
                    body = mutation_body(topic)
                _check_answer(ports[contender], body)
                result = load(ports[contender], body, sizes.http_seconds)
                runs[f"{contender} {operation}"].append(result)
                print(
                    f"  graphql {contender} {operation} #{repetition + 1}: {result['rate']:.0f} req/s,"
                    f" p50 {result['p50_ms']:.2f} ms, p99 {result['p99_ms']:.2f} ms",
                    flush=True,
                )

    summary = {
        name: {key: median([run[key] for run in results]) for key in ("rate", "p50_ms", "p99_ms")}
        for name, results in runs.items()
    }
    ratios = _ratios(runs, "bare-ariadne")
    flask_ratios = _ratios(runs, "flask-ariadne")
    return {
        "tool": "wrk" if shutil.which("wrk") else "python",
        "connections": CONNECTIONS,
        "seconds": sizes.http_seconds,
        "workers": WORKERS,
        "threads": THREADS,
        "runs": runs,
        "median": summary,
        "ratio_hyper_vs_bare": ratios,
        "ratio_hyper_vs_flask": flask_ratios,
    }


def _ratios(runs: dict[str, list[dict[str, Any]]], baseline: str) -> dict[str, float]:
    """Return, per operation, the median of flask-hyper's rate over ``baseline``'s per round."""
    return {
        operation: median([
            a["rate"] / b["rate"]
            for a, b in zip(runs[f"flask-hyper {operation}"], runs[f"{baseline} {operation}"])
        ])
        for operation in OPERATIONS
    }


def _check_answer(port: int, body: dict[str, Any]) -> None:
    status, data = post_json(port, "/graphql", body)
    answer = json.loads(data)
    if status != 200 or answer.get("errors") or not answer.get("data"):
        raise RuntimeError(f"port {port} returned {status} {data[:300]!r} to {body}")


def load(port: int, body: dict[str, Any], seconds: int) -> dict[str, Any]:
    """Send ``body`` to /graphql for ``seconds``; return req/s, p50 and p99 in ms, errors."""
    if shutil.which("wrk"):
        return _load_with_wrk(port, body, seconds)
    return _load_with_python(port, body, seconds)


def _load_with_wrk(port: int, body: dict[str, Any], seconds: int) -> dict[str, Any]:
    script = (
        'wrk.method = "POST"\n'
        'wrk.headers["Content-Type"] = "application/json"\n'
        f"wrk.body = {json.dumps(json.dumps(body))}\n"
    )
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as lua:
        lua.write(script)
    command = [
        "wrk", "-t1", f"-c{CONNECTIONS}", f"-d{seconds}s", "--latency", "-s", lua.name,
        f"http://127.0.0.1:{port}/graphql",
    ]
    try:
        output = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 60, check=True).stdout
    finally:
        Path(lua.name).unlink()

    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    return {
        "rate": float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1)),
        "p50_ms": _wrk_ms(re.search(r"\s50%\s+([\d.]+\w+)", output).group(1)),
        "p99_ms": _wrk_ms(re.search(r"\s99%\s+([\d.]+\w+)", output).group(1)),
        "errors": int(errors.group(1)) if errors else 0,
    }


def _wrk_ms(text: str) -> float:
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text).groups()
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit]


def _load_with_python(port: int, body: dict[str, Any], seconds: int) -> dict[str, Any]:
    payload = json.dumps(body)
    deadline = time.monotonic() + seconds
    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()

    def client() -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        own: list[float] = []
        while time.monotonic() < deadline:
            started = time.perf_counter()
            connection.request("POST", "/graphql", payload, {"Content-Type": "application/json"})
            response = connection.getresponse()
            response.read()
            own.append((time.perf_counter() - started) * 1000)
            if response.status != 200:
                with lock:
                    errors[0] += 1
        connection.close()
        with lock:
            latencies.extend(own)

    threads = [threading.Thread(target=client) for _ in range(CONNECTIONS)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - started
    latencies.sort()
    return {
        "rate": len(latencies) / elapsed,
        "p50_ms": percentile(latencies, 0.50),
        "p99_ms": percentile(latencies, 0.99),
        "errors": errors[0],
    }
