"""Helpers shared by several test modules."""

import json
import os
import site
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path


def run_without_hf_rnn(code: str, tmp_path: Path) -> dict:
    """Run `code` where only the environment's installed packages are importable, and return its last JSON line.

    `-I -S` skips site-packages processing, so the editable install's import hook (a .pth file) never runs; the
    site-packages folders are then put on sys.path as plain folders. The code must check that hf_rnn is absent.
    """
    bootstrap = f"import sys\nsys.path.extend({site.getsitepackages()!r})\n"
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path),
        "HF_HUB_OFFLINE": "1",
        "HF_MODULES_CACHE": str(tmp_path / "modules"),
        "OMP_NUM_THREADS": "1",
    }
    result = subprocess.run(
        [sys.executable, "-I", "-S", "-c", bootstrap + code],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    assert "Do you wish to run the custom code?" not in result.stdout  # nothing may stop at a prompt
    return json.loads(result.stdout.strip().splitlines()[-1])


def all_numbers(data) -> Iterator[int | float]:
    """Every number in a JSON-like structure of dicts and lists."""
    if isinstance(data, dict):
        for value in data.values():
            yield from all_numbers(value)
    elif isinstance(data, list):
        for value in data:
            yield from all_numbers(value)
    elif isinstance(data, (int, float)) and not isinstance(data, bool):
        yield data
