"""The hooks that let a plugin extend the contract: its own hooks (`add_hookspecs`),
component kinds (`component_kinds`) and recipe sections (`recipe_sections`), which is how
the built-in plugins add tokenizers, layout rules and `search:` without the core naming them."""

from __future__ import annotations

import types

import pytest

import kplug
from kplug import testing

# A plugin's own hookspec module, as a plugin would write it in its hookspecs.py.
own_hooks = types.ModuleType("own_hooks")


@kplug.hookspec
def register_metrics_sinks(register):
    """Register places to send metrics to."""


own_hooks.register_metrics_sinks = register_metrics_sinks


class Declaring:
    """Declares a hook, a component kind registered through it, and a recipe section."""

    @kplug.hookimpl
    def add_hookspecs(self, plugin_manager):
        plugin_manager.add_hookspecs(own_hooks)

    @kplug.hookimpl
    def component_kinds(self):
        return {"register_metrics_sinks": "metrics_sink"}

    @kplug.hookimpl
    def recipe_sections(self):
        return {"report_to": kplug.RecipeSection("metrics_sink", name_key="sink")}


class SinkConfig(kplug.Config):
    url: str = "http://localhost"


class Answering:
    """Another plugin registering a component of the declared kind."""

    @kplug.hookimpl(optionalhook=True)
    def register_metrics_sinks(self, register):
        register("http", lambda config, ctx: config.url, config=SinkConfig, summary="HTTP")


RECIPE = {"data": {"name": "digits"}, "model": {"name": "cnn"},
          "objective": {"name": "classification"}}  # fmt: skip


@pytest.fixture(scope="module")
def declared():  # once: pluggy keeps a hook's spec after its plugin is unregistered
    with testing.registered(Answering(), name="answering"), \
         testing.registered(Declaring(), name="declaring") as registry:  # fmt: skip
        yield registry


def test_a_plugin_section_is_unknown_without_its_plugin():  # runs before `declared` exists
    with pytest.raises(kplug.RecipeError, match="unknown section 'report_to'"):
        testing.recipe({**RECIPE, "report_to": {"sink": "http"}})


def test_hook_add_hookspecs(declared):
    from kplug.plugins import plugin_manager

    caller = plugin_manager().hook.register_metrics_sinks
    assert caller.spec is not None and caller.spec.namespace is own_hooks


def test_hook_component_kinds(declared):
    assert declared.get("metrics_sink", "http").plugin == "answering"
    assert "metrics_sink" in declared.components


def test_hook_recipe_sections(declared):
    recipe = testing.recipe({**RECIPE, "report_to": {"sink": "http", "url": "http://x"}})
    assert recipe.section("report_to").config.url == "http://x"
    assert recipe.resolved()["report_to"] == {"sink": "http", "url": "http://x"}
    with pytest.raises(kplug.RecipeError, match="report_to: must be a mapping with `sink:`"):
        testing.recipe({**RECIPE, "report_to": {"url": "http://x"}})
