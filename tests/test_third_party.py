"""A throwaway third-party plugin made available through a real entry point (a temporary
.dist-info on sys.path) shows up in `kplug list` and its components run in a recipe."""

from __future__ import annotations

import json
import os
import textwrap

import pytest

from kplug import testing

pytestmark = pytest.mark.xdist_group("third_party")

PLUGIN = """
import kplug
from pydantic import PositiveInt


class MLPConfig(kplug.Config):
    units: PositiveInt = 16


def build_mlp(config, ctx):
    import keras

    inputs = keras.Input(ctx.spec.input_shape)
    x = keras.layers.Flatten()(inputs)
    x = keras.layers.Dense(config.units, activation="relu", name="hidden")(x)
    outputs = keras.layers.Dense(ctx.spec.num_classes, activation="softmax", name="out")(x)
    return keras.Model(inputs, outputs)


@kplug.hookimpl
def register_architectures(register):
    register("third_mlp", build_mlp, config=MLPConfig, summary="a third-party MLP")
"""


@pytest.fixture
def site(tmp_path):
    """A folder with two installed-looking distributions: a working and a broken plugin."""
    root = tmp_path / "site"
    for dist, module, code in [
        ("kplug_third", "kplug_third", PLUGIN),
        ("kplug_broken", "kplug_broken", "raise ImportError('needs libfoo >= 2')\n"),
    ]:
        (root / module).mkdir(parents=True)
        (root / module / "__init__.py").write_text(code)
        info = root / f"{dist}-0.3.0.dist-info"
        info.mkdir()
        name = dist.replace("_", "-")
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.3.0\n")
        entry = module.split("_", 1)[1]
        (info / "entry_points.txt").write_text(f"[kplug]\n{entry} = {module}\n")
    return root


def env_with(site, **extra):
    path = os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")])
    return {"PYTHONPATH": path, **extra}


def test_third_party_plugin_is_listed_and_runs(site, tmp_path):
    listed = testing.cli("list", "architecture", "--json", env=env_with(site))
    assert listed.returncode == 0, listed.stderr
    names = {c["name"]: c["plugin"] for c in json.loads(listed.stdout)}
    assert names["third_mlp"] == "third"

    plugins = json.loads(testing.cli("plugins", "--json", env=env_with(site)).stdout)
    by_name = {p["name"]: p for p in plugins}
    assert by_name["third"]["version"] == "0.3.0" and not by_name["third"]["builtin"]
    assert "needs libfoo" in by_name["broken"]["error"]  # reported, others still work

    recipe = tmp_path / "r.yaml"
    recipe.write_text(
        textwrap.dedent("""\
        name: third
        data: {name: digits, batch_size: 32}
        model: {name: third_mlp, units: 8}
        objective: {name: classification}
    """)
    )
    run = testing.cli("run", str(recipe), "--smoke", "--runs-dir", str(tmp_path / "runs"),
                      env=env_with(site))  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    manifest = json.loads(next((tmp_path / "runs" / "third").glob("*/manifest.json")).read_text())
    assert "third" in manifest["plugins"]
    # Versions come from the loaded plugins' distributions and their requirements.
    assert manifest["versions"]["kplug-third"] == "0.3.0"
    assert manifest["versions"]["keras-hub"] and manifest["versions"]["pydantic"]


def test_allowlist_controls_third_party_loading(site):
    only_builtins = testing.cli("list", "--json", env=env_with(site, KPLUG_LOAD_PLUGINS=""))
    names = {c["name"] for c in json.loads(only_builtins.stdout)}
    assert "third_mlp" not in names and "cnn" in names
    allowed = testing.cli("list", "--json", env=env_with(site, KPLUG_LOAD_PLUGINS="kplug-third"))
    assert "third_mlp" in {c["name"] for c in json.loads(allowed.stdout)}
    plugins = testing.cli("plugins", "--json", env=env_with(site, KPLUG_LOAD_PLUGINS="third"))
    assert "broken" not in {p["name"] for p in json.loads(plugins.stdout)}


def test_recipe_naming_a_component_of_a_broken_plugin(site, tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("name: r\ndata: {name: digits}\nmodel: {name: broken_net}\n"
                      "objective: {name: classification}\n")  # fmt: skip
    result = testing.cli("validate", str(recipe), env=env_with(site))
    testing.assert_user_error(result, "unknown architecture 'broken_net'",
                              "plugins that failed to load: broken")  # fmt: skip


def test_an_import_failure_is_a_warning_with_its_traceback_under_debug(site):
    quiet = testing.cli("plugins", env=env_with(site))
    assert quiet.returncode == 0
    assert "plugin 'broken' failed and is left out: ImportError: needs libfoo" in quiet.stderr
    assert "Traceback" not in quiet.stderr and "--debug" in quiet.stderr
    debug = testing.cli("plugins", "--debug", env=env_with(site))
    assert "Traceback (most recent call last)" in debug.stderr
    assert 'raise ImportError("needs libfoo' in debug.stderr.replace("'", '"')
