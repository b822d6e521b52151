"""cProfile of flask-hyper's publish and dispatch paths, to show where their time goes.

cProfile sees only the thread it runs on, so the consume profile calls the
consumer thread's batch handling directly on the profiling thread.
"""

from __future__ import annotations

import cProfile
import io
import pstats
import threading
from typing import Any

from .common import create_topics, payload_value, unique_topic

TOP_FUNCTIONS = 12


def profile_publish(bootstrap: str, count: int) -> list[dict[str, Any]]:
    """Profile ``count`` calls of ``hyper.publish`` plus the final flush."""
    from flask import Flask

    from flask_hyper import HyperService

    topic = unique_topic("profile-publish")
    create_topics(bootstrap, [topic])
    app = Flask("bench-profile")
    app.config.update(HYPER_KAFKA={"bootstrap.servers": bootstrap}, HYPER_PRODUCER_FLUSH_TIMEOUT=120.0)
    hyper = HyperService(app, type_defs="type Query { ok: Boolean }")
    value = payload_value()

    profiler = cProfile.Profile()
    with app.app_context():
        hyper.publish(topic, value, wait=True, timeout=30)
        profiler.enable()
        for _ in range(count):
            hyper.publish(topic, value)
        hyper.shutdown(app)
        profiler.disable()
    return _top(profiler)


def profile_consume(bootstrap: str, count: int) -> list[dict[str, Any]]:
    """Fill a topic with ``count`` messages and profile a ConsumerThread's loop over them."""
    from flask import Flask

    from flask_hyper import HyperService
    from flask_hyper.consumer import ConsumerThread

    topic = unique_topic("profile-consume")
    create_topics(bootstrap, [topic])
    app = Flask("bench-profile")
    app.config.update(HYPER_KAFKA={"bootstrap.servers": bootstrap}, HYPER_PRODUCER_FLUSH_TIMEOUT=120.0)
    hyper = HyperService(app, type_defs="type Query { ok: Boolean }")
    with app.app_context():
        for _ in range(count):
            hyper.publish(topic, payload_value())
    hyper.shutdown(app)

    handled = [0]
    done = threading.Event()

    @hyper.receiver(topic)
    def on_message(sender: Any, message: Any) -> None:
        handled[0] += 1
        if handled[0] >= count:
            done.set()

    thread = ConsumerThread(app, app.extensions["hyper"], topics=[topic], group_id=unique_topic("g"), index=0)
    profiler = cProfile.Profile()
    # Runs the thread's loop on this thread, so cProfile sees it.
    stopper = threading.Thread(target=lambda: (done.wait(120), thread.request_stop()), daemon=True)
    stopper.start()
    profiler.enable()
    thread.run()
    profiler.disable()
    return _top(profiler)


# Time spent waiting for the broker (group join, fetch waits), not in Python.
_WAITS = ("<method 'consume' of 'cimpl.Consumer' objects>", "<method 'close' of 'cimpl.Consumer' objects>")


def _top(profiler: cProfile.Profile) -> list[dict[str, Any]]:
    """Return the functions with the most own time; shares exclude broker waits."""
    stats = pstats.Stats(profiler, stream=io.StringIO())
    rows = []
    for (filename, line, function), (calls, _, own, cumulative, _) in stats.stats.items():  # type: ignore[attr-defined]
        if _label(filename, line, function) in _WAITS:
            continue
        rows.append({
            "function": _label(filename, line, function),
            "calls": calls,
            "own_seconds": own,
            "cumulative_seconds": cumulative,
        })
    total = sum(row["own_seconds"] for row in rows)
    for row in rows:
        row["own_share"] = row["own_seconds"] / total if total else 0.0
    rows.sort(key=lambda row: row["own_seconds"], reverse=True)
    return rows[:TOP_FUNCTIONS]


def _label(filename: str, line: int, function: str) -> str:
    if filename == "~":
        return function
    for marker in ("flask_hyper/", "site-packages/", "lib/python3"):
        if marker in filename:
            filename = filename.split(marker, 1)[1]
            break
    return f"{filename}:{line}({function})"
