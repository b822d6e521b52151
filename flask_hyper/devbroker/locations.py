"""Folders the tool writes to, each overridable through an environment variable."""

import os
from pathlib import Path

STATE_DIR_ENV = "HYPER_DEVBROKER_STATE_DIR"
STATE_FILE_NAME = "devbroker.json"


def cache_root() -> Path:
    """Return the flask-hyper cache folder, ``$XDG_CACHE_HOME/flask-hyper``.

    Falls back to ``~/.cache/flask-hyper`` when ``XDG_CACHE_HOME`` is unset or empty.
    """
    xdg_cache = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg_cache) if xdg_cache else Path.home() / ".cache"
    return base / "flask-hyper"


def state_dir() -> Path:
    """Return the folder that contains the CLI state file and the brokers' run folders.

    ``HYPER_DEVBROKER_STATE_DIR`` overrides the default ``<cache root>/devbroker``,
    which lets a test run its own broker beside another one.
    """
    override = os.environ.get(STATE_DIR_ENV)
    if override:
        return Path(override)
    return cache_root() / "devbroker"


def state_file() -> Path:
    """Return the JSON file where ``start`` records what it started."""
    return state_dir() / STATE_FILE_NAME


def runs_dir() -> Path:
    """Return the folder under which each started broker gets a fresh run folder."""
    return state_dir() / "runs"
