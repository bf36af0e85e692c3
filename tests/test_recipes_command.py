"""`kplug recipes` lists the shipped recipes; `kplug recipes copy` copies one (with the
recipes it extends) and never overwrites; the wheel ships them (pyproject data-files)."""

from __future__ import annotations

from pathlib import Path

import pytest

from kplug import load_recipe, testing
from kplug.cli import main

ROOT = Path(__file__).resolve().parents[1]


def test_recipes_lists_every_shipped_recipe_with_its_description(capsys):
    assert main(["recipes"]) == 0
    out = capsys.readouterr().out
    shipped = sorted(p for p in (ROOT / "recipes").rglob("*.yaml") if not p.name.startswith("_"))
    for path in shipped:
        assert str(path.relative_to(ROOT / "recipes").with_suffix("")) in out
    line = next(x for x in out.splitlines() if x.startswith("mnist_cnn "))
    assert "CNN on the 5,000 embedded MNIST digits" in line


def test_recipes_copy_brings_the_base_and_never_overwrites(tmp_path, capsys):
    assert main(["recipes", "copy", "transfer/scratch_digits_5_9", str(tmp_path)]) == 0
    copied = tmp_path / "scratch_digits_5_9.yaml"
    assert (tmp_path / "_digits_5_9.yaml").is_file()
    assert (
        load_recipe(copied).name
        == load_recipe(ROOT / "recipes/transfer/scratch_digits_5_9.yaml").name
    )
    testing.assert_main_user_error(capsys, ["recipes", "copy", "transfer/scratch_digits_5_9",
                                            str(tmp_path)], "exists")  # fmt: skip
    testing.assert_main_user_error(capsys, ["recipes", "copy", "mnist_cnnn"], "unknown recipe")


def test_the_wheel_installs_every_recipe_folder():
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    globs = [g for files in config["tool"]["setuptools"]["data-files"].values() for g in files]
    folders = {p.parent for p in (ROOT / "recipes").rglob("*.yaml")}
    assert {(ROOT / g).parent for g in globs} == folders
