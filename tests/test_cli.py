"""The `kplug` command: fast commands stay TensorFlow-free; bad input exits 2 cleanly."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from kplug import testing
from kplug.cli import main

pytestmark = pytest.mark.xdist_group("cli")

NO_TF = """
import sys
from kplug.cli import main
code = main(sys.argv[1:])
heavy = sorted(m for m in ("tensorflow", "keras", "jax", "torch") if m in sys.modules)
print("HEAVY=" + ",".join(heavy))
sys.exit(code)
"""


@pytest.mark.parametrize(
    "args",
    [
        ["list"],
        ["list", "architectures", "--json"],
        ["describe", "cnn"],
        ["plugins", "--json"],
        ["validate", "{recipe}", "--print"],
        ["plan", "{recipe}"],
    ],
)
def test_fast_commands_do_not_import_tensorflow(args, minimal_recipe):
    args = [a.replace("{recipe}", str(minimal_recipe)) for a in args]
    result = subprocess.run([sys.executable, "-c", NO_TF, *args], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "HEAVY=\n" in result.stdout, result.stdout[-300:]


def test_list_shows_components(capsys):
    assert main(["list", "--json"]) == 0
    listed = {(c["kind"], c["name"]) for c in json.loads(capsys.readouterr().out)}
    assert {("dataset", "mnist"), ("architecture", "cnn"), ("objective", "classification"),
            ("strategy", "default")} <= listed  # fmt: skip


def test_describe_shows_parameters(capsys):
    assert main(["describe", "cnn"]) == 0
    out = capsys.readouterr().out
    assert "architecture cnn  (plugin vision" in out
    assert "filters" in out and "[32, 64, 64]" in out


def test_plugins_lists_hooks(capsys):
    assert main(["plugins", "--json"]) == 0
    plugins = {p["name"]: p for p in json.loads(capsys.readouterr().out)}
    assert plugins["vision"]["builtin"] is True
    assert "register_architectures" in plugins["vision"]["hooks"]


def test_plan_without_building(minimal_recipe, capsys):
    assert main(["plan", str(minimal_recipe), "data.batch_size=8", "--json"]) == 0
    plan = json.loads(capsys.readouterr().out)
    assert plan["train_examples"] == 64 and plan["steps_per_epoch"] == 8
    assert plan["per_replica_batch"] == 8 and plan["replicas"] == 1
    assert plan["parameters"] > 0 and plan["memory_estimate_mib"] > 0


def test_plan_estimate_equals_built_model(minimal_recipe, capsys):
    main(["plan", str(minimal_recipe), "--json"])
    estimated = json.loads(capsys.readouterr().out)
    main(["plan", str(minimal_recipe), "--json", "--build"])
    built = json.loads(capsys.readouterr().out)
    for key in ("parameters", "train_examples", "validation_examples", "steps_per_epoch"):
        assert estimated[key] == built[key], key


def test_validate_print_shows_resolved_recipe(minimal_recipe, capsys):
    assert main(["validate", str(minimal_recipe), "train.epochs=3", "--print"]) == 0
    out = capsys.readouterr().out
    assert "epochs: 3" in out and "kernel_size: 3" in out  # override and component default


def test_overrides_after_flags(minimal_recipe, capsys):
    assert main(["validate", str(minimal_recipe), "--print", "train.epochs=4"]) == 0
    assert "epochs: 4" in capsys.readouterr().out


def test_unknown_flag_is_a_usage_error(minimal_recipe):
    with pytest.raises(SystemExit) as info:
        main(["validate", str(minimal_recipe), "--bogus"])
    assert info.value.code == 2


# --- bad input: exit 2, one paragraph, no traceback, nothing written -------------------

BAD = {
    "malformed YAML": ("name: x\ndata: {name: mnist\n", [], ["bad.yaml:3", "invalid YAML"]),
    "unknown component": (
        "name: x\ndata: {name: mnist}\nmodel: {name: cnnn}\nobjective: {name: classification}\n",
        [],
        ["bad.yaml:3", "unknown architecture 'cnnn'", "did you mean 'cnn'", "registered:"],
    ),
    "wrong type": (
        "name: x\ndata: {name: mnist, batch_size: many}\nmodel: {name: cnn}\n"
        "objective: {name: classification}\n",
        [],
        ["bad.yaml:2", "data.batch_size", "valid integer"],
    ),
    "out of range": (
        "name: x\ndata: {name: mnist}\nmodel: {name: cnn, dropout: 1.5}\n"
        "objective: {name: classification}\n",
        [],
        ["bad.yaml:3", "model.dropout", "less than 1"],
    ),
    "unknown override key": (
        "name: x\ndata: {name: mnist}\nmodel: {name: cnn}\nobjective: {name: classification}\n",
        ["train.epochs=1", "model.filterz=[1]"],
        ["command line: model.filterz=[1]", "did you mean 'filters'"],
    ),
    "extends itself": ("extends: bad.yaml\nname: x\n", [], ["extends itself"]),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_input_exits_2_without_traceback(case, tmp_path, monkeypatch, capsys):
    text, overrides, fragments = BAD[case]
    recipe = tmp_path / "bad.yaml"
    recipe.write_text(text)
    monkeypatch.chdir(tmp_path)
    before = testing.files_under(tmp_path)
    code = main(["run", str(recipe), *overrides])
    captured = capsys.readouterr()
    assert code == 2
    for fragment in fragments:
        assert fragment in captured.err, captured.err
    assert "Traceback" not in captured.err + captured.out
    assert testing.files_under(tmp_path) == before  # nothing written, no run directory


def test_missing_recipe_file(tmp_path, capsys):
    assert main(["run", str(tmp_path / "nope.yaml")]) == 2
    assert "recipe file not found" in capsys.readouterr().err


def test_bad_input_in_a_real_process(tmp_path):
    (tmp_path / "r.yaml").write_text("name: r\ndata: {name: mnist}\nmodel: {name: cnnn}\n")
    result = testing.cli("run", str(tmp_path / "r.yaml"), cwd=tmp_path)
    testing.assert_user_error(result, "did you mean 'cnn'", "missing section `objective:`")
    assert not (tmp_path / "runs").exists()


def test_debug_shows_the_traceback(tmp_path):
    (tmp_path / "r.yaml").write_text("name: r\n")
    result = testing.cli("validate", str(tmp_path / "r.yaml"), "--debug")
    assert result.returncode != 0 and "Traceback" in result.stderr
