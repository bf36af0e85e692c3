"""The bad-input corpus (cases.yaml): malformed recipes, overrides, data files and saved
models. Each exits with code 2 and a kplug error naming the problem, without a traceback,
and writes no file outside a new run directory."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml
from setups import SETUPS

from kplug.cli import main
from kplug.errors import RunError
from kplug.rundir import RunDirectory

HERE = Path(__file__).resolve().parent
CASES = yaml.safe_load((HERE / "cases.yaml").read_text("utf-8"))
RUNS = "runs"

pytestmark = pytest.mark.xdist_group("bad_inputs")


def test_the_corpus_is_large_and_every_file_is_used():
    assert len(CASES) >= 150
    assert len({case["id"] for case in CASES}) == len(CASES), "case ids must be unique"
    assert all(case["setup"] in SETUPS for case in CASES if "setup" in case)
    used = {case.get("recipe") for case in CASES}
    bases = {"extends_cycle_b.yaml"}  # reached through extends_cycle_a.yaml
    unused = {p.name for p in (HERE / "recipes").iterdir()} - used - bases
    assert not unused, f"recipes no case runs: {sorted(unused)}"


def tree(root: Path) -> dict[Path, tuple[int, int] | None]:
    """Every path below `root`: files with (size, mtime), folders with None."""
    return {
        p.relative_to(root): (p.stat().st_size, p.stat().st_mtime_ns) if p.is_file() else None
        for p in root.rglob("*")
    }


@pytest.mark.parametrize("case", CASES, ids=[case["id"] for case in CASES])
def test_bad_input_exits_2_with_its_message(case, tmp_path, monkeypatch, capsys):
    shutil.copytree(HERE / "recipes", tmp_path / "recipes")
    shutil.copytree(HERE / "files", tmp_path / "files")
    (tmp_path / "files" / "empty_folder").mkdir()
    monkeypatch.chdir(tmp_path)
    if "setup" in case:
        SETUPS[case["setup"]](tmp_path)
    command = case.get("command", "run")
    argv = [command, str(Path("recipes") / case.get("recipe", ""))]
    if command == "run":
        argv += ["--runs-dir", case.get("runs_dir", RUNS)]
    argv += [_expand(arg) for arg in case.get("args", [])]
    argv = case.get("argv", argv)
    before = tree(tmp_path)

    try:
        code = main(argv)
    except SystemExit as exit_:  # argparse usage errors
        code = exit_.code
    captured = capsys.readouterr()

    assert code == 2, f"exit code {code}; stderr:\n{captured.err}"
    assert "Traceback" not in captured.err + captured.out, captured.err
    assert "internal error" not in captured.err, captured.err
    assert "error: " in captured.err
    for fragment in case["expect"]:
        assert fragment in captured.err, f"{fragment!r} not in:\n{captured.err}"
    assert_only_new_run_directories(before, tree(tmp_path), tmp_path)


def _expand(arg: str) -> str:
    """`KEY1000=1`: an override key 1,000 levels deep (too long to write in cases.yaml)."""
    return ".".join(["a"] * 1000) + "=1" if arg == "KEY1000=1" else arg


def assert_only_new_run_directories(before: dict, after: dict, root: Path) -> None:
    changed = [p for p, stat in before.items() if after.get(p, "gone") != stat]
    assert not changed, f"changed or removed: {changed}"
    new = sorted(set(after) - set(before))
    new_runs = {p for p in new if len(p.parts) == 3 and p.parts[0] == RUNS}
    for path in new:
        inside = path.parts[0] == RUNS and (
            len(path.parts) <= 2 or Path(*path.parts[:3]) in new_runs
        )
        assert inside, f"{path} was written outside a new run directory"
        assert len(path.parts) > 2 or after[path] is None, f"{path}: a file outside a run"
    for run_dir in new_runs:
        manifest = json.loads((root / run_dir / "manifest.json").read_text("utf-8"))
        assert manifest["status"] == "failed" and manifest["error"], manifest


@pytest.mark.parametrize("name", ["../escape", "/tmp/escape", "a/b", "..", ".", "", "a\x00b"])
def test_a_run_directory_stays_below_its_root(name, tmp_path):
    # Recipes validate their names; this guards callers that skip the recipe (plugins).
    root = tmp_path / "runs"
    with pytest.raises(RunError, match="cannot name a run directory"):
        RunDirectory.create(root, name)
    assert not any(tmp_path.rglob("*"))
