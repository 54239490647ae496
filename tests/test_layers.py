"""The apps' layers import downward only (CONTRIBUTING.md, [tool.importlinter] in pyproject.toml)."""

import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LINT = "import sys; from importlinter.cli import lint_imports; sys.exit(lint_imports(config_filename='pyproject.toml'))"


def lint(tree):
    return subprocess.run([sys.executable, "-c", LINT], cwd=tree, env={"PYTHONPATH": str(tree), "PATH": "/usr/bin:/bin"},
                          capture_output=True, text=True)


def test_it_keeps_the_layers_of_the_tree():
    result = lint(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Contracts: 1 kept, 0 broken." in result.stdout


def lint_with(tmp_path, imports):
    """Lint a copy of the tree with `imports` ({module path: import line}) appended."""
    packages = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["root_packages"]
    for package in packages:
        shutil.copytree(ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__", "migrations"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    for path, line in imports.items():
        with open(tmp_path / path, "a") as module:
            module.write(f"\n{line}  # noqa\n")
    return lint(tmp_path)


def test_it_breaks_on_an_upward_import(tmp_path):
    """The import the state service once had: store.py ringing the portal's feed."""
    result = lint_with(tmp_path, {"state/store.py": "from portal import feed"})
    assert result.returncode != 0
    assert "BROKEN" in result.stdout and "state.store -> portal.feed" in result.stdout


def test_it_breaks_on_a_cycle_between_sibling_apps(tmp_path):
    """api and portal share a layer: neither may import the other, so a cycle breaks the contract both ways."""
    result = lint_with(tmp_path, {"api/views.py": "from portal import wire", "portal/views.py": "from api import errors"})
    assert result.returncode != 0
    assert "BROKEN" in result.stdout
    assert "api.views -> portal.wire" in result.stdout and "portal.views -> api.errors" in result.stdout
