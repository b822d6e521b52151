"""Liveness and readiness endpoints for orchestrators and load balancers."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from flask import Response, current_app, jsonify

if TYPE_CHECKING:
    from .extension import _AppState


def healthz_view() -> Response:
    """Return 200 while the process serves requests."""
    return jsonify({"status": "alive"})


def readyz_view() -> Response:
    """Return 200 when the producer reaches a broker and every consumer polls.

    Otherwise return 503 with a JSON body naming each check that failed.
    """
    state: _AppState = current_app.extensions["hyper"]
    checks = {"producer": _producer_check(state), "consumers": _consumer_check(state)}
    ready = all(check["ok"] for check in checks.values())

    response = jsonify({"status": "ready" if ready else "not ready", "checks": checks})
    response.status_code = 200 if ready else 503
    return response


def _producer_check(state: "_AppState") -> dict[str, Any]:
    problem = state.producer.ping(state.settings.ready_timeout)
    if problem is None:
        return {"ok": True}
    return {"ok": False, "reason": f"producer cannot reach Kafka: {problem}"}


def _consumer_check(state: "_AppState") -> dict[str, Any]:
    threads = state.consumers_of_this_process()
    if not threads:
        return {"ok": True, "threads": 0, "detail": "no consumer started in this process"}

    not_polling = [thread for thread in threads if not thread.is_polling()]
    if not not_polling:
        return {"ok": True, "threads": len(threads)}

    reasons = [_describe(thread) for thread in not_polling]
    return {"ok": False, "threads": len(threads), "reason": "; ".join(reasons)}


def _describe(thread: Any) -> str:
    if not thread.is_alive():
        error = thread.error
        cause = f"{type(error).__name__}: {error}" if error else "stopped"
        return f"consumer {thread.name} is dead ({cause})"
    if thread.last_poll is None:
        return f"consumer {thread.name} has not polled yet"
    return f"consumer {thread.name} has not polled within max.poll.interval.ms"
