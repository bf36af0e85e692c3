"""`recipe_loaded` fires once per recipe that enters kplug, not per recipe kplug derives."""

from __future__ import annotations

import kplug
from kplug import testing
from kplug.runner import smoke_recipe


class CountLoads:
    def __init__(self):
        self.names: list[str] = []

    @kplug.hookimpl
    def recipe_loaded(self, recipe):
        self.names.append(recipe.name)


def test_a_smoke_run_of_a_loaded_recipe_fires_it_once(minimal_recipe, runs_root):
    counter = CountLoads()
    with testing.registered(counter, name="count_loads"):
        result = kplug.run(minimal_recipe, smoke=True, runs_root=runs_root)
    assert result.status == "completed"
    assert counter.names == ["tiny"]


def test_derived_recipes(minimal_recipe):
    counter = CountLoads()
    with testing.registered(counter, name="count_loads"):
        recipe = kplug.load_recipe(minimal_recipe)
        assert counter.names == ["tiny"]
        smoke_recipe(recipe)  # kplug's own shortening: the same recipe
        assert counter.names == ["tiny"]
        recipe.with_overrides(["name=other"])  # derived by kplug (a tune trial's recipe)
        assert counter.names == ["tiny"]
        kplug.load_recipe(minimal_recipe, ["name=again"])  # loaded: a recipe enters kplug
        assert counter.names == ["tiny", "again"]


def test_validation_takes_its_registry_and_fires_no_hook(minimal_recipe):
    from kplug.plugins import registry
    from kplug.recipe import load_recipe

    counter = CountLoads()
    with testing.registered(counter, name="count_loads"):
        validating = registry()
        recipe = load_recipe(minimal_recipe, registry=validating)
    assert recipe.name == "tiny" and counter.names == []
    assert recipe.registry is validating
