"""Plugin isolation, as pytest's: a plugin that fails is reported by name and leaves the
other plugins, and the commands that do not use its components, working."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys

import pluggy
import pytest

import kplug
from kplug import hookspecs, plugins, testing
from kplug.cli import build_parser, main
from kplug.inference import hookspecs as inference_hookspecs


class FinishRaises:
    @kplug.hookimpl
    def run_finished(self, run, result):
        raise RuntimeError("cannot reach the results server")


class FinishRecords:
    def __init__(self):
        self.results = []

    @kplug.hookimpl
    def run_finished(self, run, result):
        self.results.append(result["status"])


def test_a_raising_run_finished_is_reported_and_the_others_still_run(caplog):
    recorder = FinishRecords()
    with testing.registered(recorder, name="recorder"), \
         testing.registered(FinishRaises(), name="raiser"):  # fmt: skip
        plugins.call_lifecycle("run_finished", run=None, result={"status": "completed"})
    assert recorder.results == ["completed"]  # called although `raiser` (called first) raised
    assert "plugin 'raiser': run_finished raised RuntimeError: cannot reach" in caplog.text


class BadCommands:
    @kplug.hookimpl
    def register_commands(self, register):
        register("run", lambda parser: lambda args: 0)  # a core command's name
        raise RuntimeError("half registered")


def test_commands_of_a_broken_plugin_leave_the_others(capsys):
    with testing.registered(BadCommands(), name="badcmd"):
        assert main(["list", "strategy"]) == 0  # the core's and other plugins' commands work
        help_text = build_parser().format_help()
    assert all(command in help_text for command in ("tune", "launch", "generate"))
    err = capsys.readouterr().err
    assert "plugin 'badcmd': command 'run' is taken by kplug; left out" in err
    assert "plugin 'badcmd' failed and is left out: register_commands raised RuntimeError" in err


def test_registered_accepts_an_installed_plugin():
    import kplug_vision.plugin

    with testing.registered(kplug_vision.plugin) as registry:
        assert registry.get("architecture", "cnn").plugin == "vision"
    assert plugins.plugin_manager().is_registered(kplug_vision.plugin)  # still loaded
    with pytest.raises(kplug.PluginError, match="already registered as 'vision'"):
        with testing.registered(object(), name="vision"):
            pass


@pytest.fixture
def fresh_plugins(monkeypatch):
    """Plugins loaded again under a changed environment, and again after the test."""
    plugins.reset()
    yield monkeypatch
    monkeypatch.undo()
    plugins.reset()


def test_a_typo_in_the_allowlist_names_the_plugins_that_exist(fresh_plugins, caplog):
    fresh_plugins.setenv("KPLUG_LOAD_PLUGINS", "kplug-mpl")
    with caplog.at_level(logging.WARNING):
        plugins.plugin_manager()
    assert "KPLUG_LOAD_PLUGINS names 'kplug-mpl', which no installed distribution" in caplog.text
    assert "the plugins are: " in caplog.text and "vision" in caplog.text


def test_an_essential_plugin_cannot_be_disabled(fresh_plugins, caplog):
    fresh_plugins.setenv("KPLUG_DISABLE_PLUGINS", "distribute,gan")
    registry = plugins.registry()
    assert "plugin 'distribute' is essential to kplug and cannot be disabled" in caplog.text
    assert registry.get("strategy", "default").plugin == "distribute"
    assert "dcgan" not in registry.names("architecture")  # gan is left out


def test_hooks_of_a_plugin_that_is_not_loaded_are_optional():
    """The transformers plugin answers layout_rules and registers tokenizers; without the
    plugins that declare those hooks it still loads, validates and registers."""
    import kplug_transformers.plugin

    pm = pluggy.PluginManager("kplug")
    pm.add_hookspecs(hookspecs)
    pm.add_hookspecs(inference_hookspecs)
    pm.hook.add_hookspecs.call_historic(kwargs={"plugin_manager": pm})
    pm.register(kplug_transformers.plugin, name="transformers")
    pm.check_pending()  # no "unknown hook" error
    registry = plugins._build_registry(pm)
    assert "bert" in registry.names("architecture") and "tokenizer" not in registry.components


def test_a_closed_stdout_ends_quietly():
    """`kplug plugins --json | head`: the reader is gone before kplug writes."""
    read, write = os.pipe()
    os.close(read)
    try:
        command = [sys.executable, "-m", "kplug", "plugins", "--json"]
        result = subprocess.run(command, stdout=write, stderr=subprocess.PIPE, text=True,
                                timeout=120)  # fmt: skip
    finally:
        os.close(write)
    assert "BrokenPipeError" not in result.stderr and "internal error" not in result.stderr
    assert result.returncode == 141, result.stderr


def test_plugins_json_works_beside_a_broken_plugin(capsys):
    with testing.registered(BadCommands(), name="badcmd"):
        assert main(["plugins", "--json"]) == 0
    names = {p["name"] for p in json.loads(capsys.readouterr().out)}
    assert {"vision", "badcmd"} <= names


class StartRaises:
    @kplug.hookimpl
    def run_started(self, run):
        raise KeyError("tracking_uri")


def test_a_raising_run_started_fails_the_run_naming_the_plugin():
    with testing.registered(StartRaises(), name="tracker"):
        with pytest.raises(kplug.PluginError, match="plugin 'tracker': run_started raised "
                           "KeyError: 'tracking_uri'"):  # fmt: skip
            plugins.call_lifecycle("run_started", fail=True, run=None)
