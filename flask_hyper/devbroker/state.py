"""The CLI's JSON state file, which records what ``start`` started."""

import json
import os
from pathlib import Path
from typing import Any

from .errors import DevBrokerError
from .locations import state_file


def read_state() -> dict[str, Any] | None:
    """Return the recorded state, or None when no state file exists."""
    path = state_file()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None

    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise DevBrokerError(
            f"state file {path} is not valid JSON ({error}): stop any broker it "
            "started by hand, then delete the file"
        ) from error


def write_state(state: dict[str, Any]) -> Path:
    """Write ``state`` atomically to the state file and return its path."""
    path = state_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.write_text(json.dumps(state, indent=2) + "\n", encoding="utf-8")
    os.replace(partial, path)
    return path


def remove_state() -> None:
    """Delete the state file if it exists."""
    state_file().unlink(missing_ok=True)
