"""``convscope --version`` and every ``--help`` answer at once: no torch (nor numpy) is
imported to build the parser, the help texts are plain text (no reST markup from module
docstrings), the version is the package metadata's, and ``import convscope`` gives its
sub-packages as attributes lazily (``cs.explain.GradCAM``)."""

from __future__ import annotations

import ast
import importlib.metadata
import json
import os
import pkgutil
import re
import subprocess
import sys
from pathlib import Path

import convscope
from convscope.cli import commands

ROOT = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
COMMANDS = sorted(m.name for m in pkgutil.iter_modules(commands.__path__))
REST = re.compile(r"``|:[a-z]+:`")  # literals and roles such as :meth:`Trace.to_json`

# In a fresh interpreter: parse --version, --help and every CMD --help, record each exit code
# and text, and which heavy modules that imported.
PROBE = """
import contextlib, io, json, sys
import convscope.cli.main as m
results = {}
for argv in [["--version"], ["--help"]] + [[c, "--help"] for c in sys.argv[1:]]:
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        try:
            m.main(argv)
            code = None
        except SystemExit as exc:
            code = exc.code
    results[" ".join(argv)] = [code, buf.getvalue()]
print(json.dumps({"results": results, "heavy": sorted(n for n in ("torch", "numpy", "matplotlib", "PIL")
                                                       if n in sys.modules)}))
"""


def test_version_and_every_help_import_no_torch_exit_0_and_are_plain_text():
    assert {
        "attribute",
        "demo",
        "evaluate",
        "examples",
        "explain",
        "features",
        "report",
        "sanity",
        "serve",
        "summary",
        "train",
    } <= set(COMMANDS)
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, *COMMANDS], capture_output=True, text=True, timeout=120, env=ENV, cwd=ROOT
    )
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["heavy"] == []
    results = report["results"]
    assert results["--version"] == [0, f"convscope {importlib.metadata.version('convscope')}\n"]
    for argv, (code, text) in results.items():
        assert code == 0, argv
        if argv != "--version":
            assert text.startswith("usage: convscope"), argv
            assert not REST.search(text), (argv, REST.findall(text))


def test_version_command_imports_no_torch():
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "convscope", "--version"],
        capture_output=True,
        text=True,
        timeout=60,
        env=ENV,
        cwd=ROOT,
    )
    assert proc.returncode == 0 and proc.stdout == f"convscope {convscope.__version__}\n"
    imported = {line.rsplit("|", 1)[-1].strip() for line in proc.stderr.splitlines() if line.startswith("import time")}
    assert "convscope.cli.main" in imported  # -X importtime did report
    assert not {name for name in imported if name.split(".")[0] in ("torch", "numpy")}


def test_subpackages_are_lazy_attributes():
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            (
                "import sys, convscope as cs; assert 'torch' not in sys.modules; "
                "names = ['analysis', 'data', 'explain', 'features', 'models', 'render', 'train', 'trace']; "
                "got = [getattr(cs, n) for n in names]; "
                "print(cs.explain.GradCAM.__name__, cs.features.visualize.__name__, callable(cs.trace), "
                "cs.models.load_model is cs.load_model, sorted(set(names) - set(dir(cs))))"
            ),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env=ENV,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["GradCAM", "visualize", "True", "True", "[]"]


def test_type_checking_imports_name_exactly_the_lazy_exports():
    """The TYPE_CHECKING block is what type checkers see; the lazy tables are what runs."""
    tree = ast.parse(Path(convscope.__file__).read_text(encoding="utf-8"))
    block = next(node for node in tree.body if isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING")
    seen = {
        alias.asname or alias.name for node in block.body if isinstance(node, ast.ImportFrom) for alias in node.names
    }
    assert seen == set(convscope._EXPORTS) | set(convscope._SUBPACKAGES)
    assert set(convscope.__all__) == seen | {"__version__"}
