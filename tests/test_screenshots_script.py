"""docs/screenshots.py (the README's pictures, by hand: too slow for the suite) runs and names
only pictures the README shows, so a renamed picture cannot leave the README pointing at a stale file."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "docs" / "screenshots.py"


def run(*args: str) -> str:
    done = subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_help_runs():
    assert "--only NAME" in run("--help")


def test_every_picture_it_makes_is_in_the_readme():
    names = run("--list").split()
    readme = (ROOT / "README.md").read_text()
    assert len(names) >= 10
    assert [n for n in names if f"docs/img/{n}.png" not in readme] == []
