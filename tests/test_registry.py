"""The registry and plugin loading: duplicates, broken plugins, backends, allowlist."""

from __future__ import annotations

import pytest

import kplug
from kplug import PluginError, testing
from kplug.registry import Component, Registry


def _component(name="x", plugin="a", **kw):
    return Component(kind="dataset", name=name, factory=lambda c, ctx: None,
                     config=kw.pop("config", kplug.EmptyConfig), summary="", backends=(),
                     plugin=plugin, **kw)  # fmt: skip


def test_duplicate_name_names_both_plugins_when_used():
    registry = Registry()
    registry.add(_component(plugin="first"))
    registry.add(_component(plugin="second"))  # recorded, not raised: other names still work
    registry.add(_component("y", plugin="second"))
    assert registry.get("dataset", "y").plugin == "second"
    with pytest.raises(PluginError, match="registered twice: by plugin 'first' and by plugin "
                       "'second'"):  # fmt: skip
        registry.get("dataset", "x")


def test_config_must_be_a_kplug_config():
    with pytest.raises(PluginError, match="not a kplug.Config"):
        Registry().add(_component(config=dict))


def test_unknown_name_suggests():
    registry = Registry()
    registry.add(_component("mnist"))
    with pytest.raises(kplug.KplugError, match="did you mean 'mnist'"):
        registry.get("dataset", "minst")


class Duplicate:
    @kplug.hookimpl
    def register_architectures(self, register):
        register("cnn", lambda config, ctx: None)


def test_plugin_duplicating_a_builtin_breaks_only_recipes_naming_it(capsys, caplog):
    from kplug.cli import main

    with testing.registered(Duplicate(), name="dup") as registry:
        assert "'cnn' is registered twice: by plugin 'vision' and by plugin 'dup'" in caplog.text
        assert registry.get("architecture", "rnn").plugin == "sequence"
        assert main(["plugins"]) == 0 and main(["list", "architecture"]) == 0
        assert "by plugin 'vision' and by plugin 'dup'" in capsys.readouterr().out
        with pytest.raises(kplug.RecipeError, match="by plugin 'vision' and by plugin 'dup'"):
            testing.recipe({"data": {"name": "digits"}, "model": {"name": "cnn"},
                            "objective": {"name": "classification"}})  # fmt: skip


class Broken:
    @kplug.hookimpl
    def register_datasets(self, register):
        raise RuntimeError("cannot find my data")


def test_a_plugin_that_raises_is_reported_and_others_work():
    with testing.registered(Broken(), name="broken") as registry:
        assert "cannot find my data" in registry.failed_plugins["broken"]
        assert registry.get("dataset", "mnist").plugin == "data"


class TFOnly:
    @kplug.hookimpl
    def register_datasets(self, register):
        register("tf_only", lambda c, ctx: None, backends=("tensorflow",))


def test_backend_mismatch_is_a_validation_error():
    with testing.registered(TFOnly(), name="tfonly"):
        with pytest.raises(kplug.RecipeError, match="works on the tensorflow backend, not 'jax'"):
            testing.recipe(
                {
                    "backend": "jax",
                    "data": {"name": "tf_only"},
                    "model": {"name": "cnn"},
                    "objective": {"name": "classification"},
                }  # fmt: skip
            )


def test_unknown_backend_name():
    class Bad:
        @kplug.hookimpl
        def register_datasets(self, register):
            register("b", lambda c, ctx: None, backends=("tensorfow",))

    with testing.registered(Bad(), name="bad") as registry:
        assert "unknown backends" in registry.failed_plugins["bad"]
        assert registry.get("dataset", "mnist").plugin == "data"
