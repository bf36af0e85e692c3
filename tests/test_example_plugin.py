"""The example plugin of docs/plugins.md is a real package (tests/example_plugin): it
installs through a `kplug` entry point (a .dist-info made from its pyproject.toml, on
PYTHONPATH as in test_third_party.py), its own tests pass against that installation, and
the docs show exactly its files."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import tomllib

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "tests" / "example_plugin"
FILES = ["pyproject.toml", "kplug_tabular/__init__.py", "tests/test_tabular.py"]

pytestmark = pytest.mark.xdist_group("third_party")


def install(site: Path) -> dict[str, str]:
    """Make the example look installed: its .dist-info (METADATA, entry_points.txt from
    pyproject.toml) in `site`; returns the environment that sees it."""
    project = tomllib.loads((EXAMPLE / "pyproject.toml").read_text())["project"]
    info = site / f"{project['name'].replace('-', '_')}-{project['version']}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {project['name']}\nVersion: {project['version']}\n"
        + "".join(f"Requires-Dist: {r}\n" for r in project["dependencies"])
    )
    entry_points = "".join(f"{k} = {v}\n" for k, v in project["entry-points"]["kplug"].items())
    (info / "entry_points.txt").write_text(f"[kplug]\n{entry_points}")
    path = os.pathsep.join([str(site), str(EXAMPLE), os.environ.get("PYTHONPATH", "")])
    return {**os.environ, "PYTHONPATH": path, "TF_CPP_MIN_LOG_LEVEL": "2"}


def test_the_example_plugin_installs_and_passes_its_tests(tmp_path):
    env = install(tmp_path / "site")
    # test_classification_on_a_table_is_refused runs `kplug validate` in a child process:
    # it passes only if the entry point loaded the plugin there (its recipe_loaded refuses).
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:xdist",
         "--rootdir", str(EXAMPLE), str(EXAMPLE / "tests")],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "3 passed" in result.stdout


def documented_files() -> dict[str, str]:
    """`path`: followed by a fenced block, in the example section of docs/plugins.md."""
    text = (ROOT / "docs" / "plugins.md").read_text("utf-8")
    blocks = re.findall(r"^`([\w./]+)`:\n\n```\w*\n(.*?)^```$", text, re.M | re.S)
    return dict(blocks)


def test_the_docs_show_the_example_plugin_as_it_is():
    documented = documented_files()
    for name in FILES:
        assert name in documented, f"docs/plugins.md does not show {name}"
        assert documented[name] == (EXAMPLE / name).read_text(), (
            f"docs/plugins.md's {name} differs from tests/example_plugin/{name}; copy it over"
        )
