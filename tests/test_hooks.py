"""Every hook in kplug/hookspecs.py and kplug/inference/hookspecs.py is exercised here
(test_hook_<name>) and documented in docs/plugins.md;
test_every_hook_is_tested_and_documented keeps it that way."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

import kplug
from kplug import hookspecs, testing
from kplug.cli import main
from kplug.inference import hookspecs as inference_hookspecs

ROOT = Path(__file__).resolve().parents[1]


def hook_names() -> list[str]:
    modules = (hookspecs, inference_hookspecs)
    return sorted(n for m in modules for n in dir(m) if hasattr(getattr(m, n), "kplug_spec"))


def test_every_hook_is_tested_and_documented():
    tests = "\n".join(p.read_text() for p in (ROOT / "tests").rglob("test_*.py"))
    docs = (ROOT / "docs" / "plugins.md").read_text()
    names = hook_names()
    assert {"register_datasets", "run_finished", "prediction_inputs"} <= set(names)
    untested = [n for n in names if f"def test_hook_{n}" not in tests]
    undocumented = [n for n in names if not re.search(rf"^### {n}$", docs, re.M)]
    assert not untested, f"hooks without a test_hook_<name> test: {untested}"
    assert not undocumented, f"hooks without a '### name' entry in docs/plugins.md: {undocumented}"


class ThrowawayPlugin:
    """One plugin implementing every hook, recording what happened."""

    def __init__(self):
        self.events: list[tuple[str, object]] = []
        self.epochs_seen = 0
        self.fit_calls = 0

    @kplug.hookimpl
    def register_datasets(self, register):
        def load(config, ctx):
            rng = np.random.default_rng(0)
            x = rng.standard_normal((64, 4)).astype("float32")
            y = (x.sum(axis=1) > 0).astype("float32")
            return kplug.Data(train=(x, y), validation=(x[:16], y[:16]), test=(x[:16], y[:16]),
                              spec=kplug.DataSpec(input_shape=(4,)))  # fmt: skip

        register("hook_points", load, summary="64 points, label = sign of the sum")

    @kplug.hookimpl
    def register_architectures(self, register):
        def build(config, ctx):
            import keras

            inputs = keras.Input(ctx.spec.input_shape)
            outputs = keras.layers.Dense(1, name="score")(inputs)
            return keras.Model(inputs, outputs)

        register("hook_linear", build)

    @kplug.hookimpl
    def register_objectives(self, register):
        class Regression(kplug.Objective):
            def loss(self, ctx):
                return "mse"

        register("hook_mse", lambda config, ctx: Regression())

    @kplug.hookimpl
    def register_strategies(self, register):
        from kplug_distribute.fit_strategy import FitStrategy

        plugin = self

        class Counting(FitStrategy):
            def fit(self, *args, **kwargs):
                plugin.fit_calls += 1
                return super().fit(*args, **kwargs)

        register("hook_counting", lambda config, ctx: Counting("hook_counting"))

    @kplug.hookimpl
    def register_compressors(self, register):
        class ZeroSmall(kplug.Compressor):
            def apply(self, model, ctx):
                for layer in model.layers:
                    layer.set_weights([np.where(abs(w) < 1e9, 0.0, w) for w in layer.get_weights()])
                return model

        register("hook_zero", lambda config, ctx: ZeroSmall())

    @kplug.hookimpl
    def register_tuners(self, register):
        class Config(kplug.Config):
            max_trials: int = 3

        register("hook_tuner", lambda config, ctx: None, config=Config, summary="a tuner")

    @kplug.hookimpl
    def register_callbacks(self, register):
        import keras

        plugin = self

        class Count(keras.callbacks.Callback):
            def on_epoch_end(self, epoch, logs=None):
                plugin.epochs_seen += 1

        register("hook_count", lambda config, ctx: Count())

    @kplug.hookimpl
    def register_exporters(self, register):
        class Weights(kplug.Exporter):
            def export(self, model, directory, ctx):
                path = directory / "weights.npy"
                np.save(path, model.layers[-1].get_weights()[0])
                return [path]

        register("hook_npy", lambda config, ctx: Weights())

    @kplug.hookimpl
    def register_commands(self, register):
        def configure(parser):
            parser.add_argument("--who", default="world")
            return lambda args: print(f"hello {args.who}") or 0

        register("hook-hello", configure, summary="say hello")

    @kplug.hookimpl
    def recipe_loaded(self, recipe):
        if recipe.name == "forbidden":
            raise kplug.RecipeError("recipes named 'forbidden' are refused by policy")
        self.events.append(("recipe_loaded", recipe.name))

    @kplug.hookimpl
    def run_started(self, run):
        self.events.append(("run_started", run.directory.path.exists()))

    @kplug.hookimpl
    def run_finished(self, run, result):
        self.events.append(("run_finished", result["status"]))

    @kplug.hookimpl
    def keras_objects(self):
        import keras

        @keras.saving.register_keras_serializable(package="hook_test")
        class Doubling(keras.layers.Layer):
            def call(self, x):
                return 2 * x

        return {"hook_test>Doubling": Doubling}


RECIPE = {
    "name": "hooks",
    "data": {"name": "hook_points", "batch_size": 16},
    "model": {"name": "hook_linear"},
    "objective": {"name": "hook_mse"},
    "strategy": {"name": "hook_counting"},
    "train": {"epochs": 2},
    "callbacks": ["hook_count"],
    "compression": ["hook_zero"],
    "export": ["hook_npy"],
}


@pytest.fixture(scope="module")
def ran(tmp_path_factory):
    plugin = ThrowawayPlugin()
    # A plugin whose run_finished raises, called before the throwaway's: it must not
    # keep the throwaway's run_finished from running (test_hook_run_finished).
    with testing.registered(plugin, name="throwaway"), \
         testing.registered(RunFinishedRaises(), name="raiser"):  # fmt: skip
        result = testing.smoke_run(RECIPE, tmp_path_factory.mktemp("runs"), smoke=False)
    return plugin, result


class RunFinishedRaises:
    @kplug.hookimpl
    def run_finished(self, run, result):
        raise RuntimeError("cannot reach the results server")


def test_hook_register_datasets(ran):
    plugin, result = ran
    report = result.directory.read_json("data_report.json")
    assert report["examples"] == {"train": 64, "validation": 16, "test": 16}


def test_hook_register_architectures(ran):
    _, result = ran
    assert (result.directory / "model.keras").is_file()


def test_hook_register_objectives(ran):
    _, result = ran
    assert set(result.metrics["test"]) == {"loss"}  # mse, no metrics


def test_hook_register_strategies(ran):
    plugin, result = ran
    assert plugin.fit_calls == 1
    assert result.directory.manifest()["strategy"]["name"] == "hook_counting"


def test_hook_register_compressors(ran):
    _, result = ran
    assert np.all(np.load(result.directory / "weights.npy") == 0)  # exported after zeroing


def test_hook_register_tuners(write):
    with testing.registered(ThrowawayPlugin(), name="throwaway"):
        recipe = testing.recipe({**RECIPE, "search": {"tuner": "hook_tuner", "max_trials": 5}})
        search = recipe.section("search")
        assert search.name == "hook_tuner" and search.config.max_trials == 5
        assert recipe.resolved()["search"] == {"tuner": "hook_tuner", "max_trials": 5}
        with pytest.raises(kplug.RecipeError, match="unknown tuner 'hook_tunr'"):
            testing.recipe({**RECIPE, "search": {"tuner": "hook_tunr"}})


def test_hook_register_callbacks(ran):
    plugin, _ = ran
    assert plugin.epochs_seen == 2


def test_hook_register_exporters(ran):
    _, result = ran
    assert (result.directory / "weights.npy").is_file()


def test_hook_register_commands(capsys):
    with testing.registered(ThrowawayPlugin(), name="throwaway"):
        assert main(["hook-hello", "--who", "kplug"]) == 0
    assert capsys.readouterr().out.strip() == "hello kplug"


def test_hook_recipe_loaded(ran):
    plugin, _ = ran
    assert ("recipe_loaded", "hooks") in plugin.events
    with testing.registered(ThrowawayPlugin(), name="throwaway"):
        with pytest.raises(kplug.RecipeError, match="refused by policy"):
            testing.recipe({**RECIPE, "name": "forbidden"})


def test_hook_run_started(ran):
    plugin, _ = ran
    assert ("run_started", True) in plugin.events


def test_hook_run_finished(ran, tmp_path):
    plugin, result = ran
    assert plugin.events[-1] == ("run_finished", "completed")
    failing = ThrowawayPlugin()
    with testing.registered(failing, name="throwaway"):
        bad = {**RECIPE, "model": {"name": "cnn"}}  # a CNN on 4-vectors cannot build
        with pytest.raises(kplug.KplugError):
            testing.smoke_run(bad, tmp_path)
    assert failing.events[-1] == ("run_finished", "failed")


def test_hook_keras_objects(tmp_path):
    import keras

    from kplug.training.models import load_model

    plugin = ThrowawayPlugin()
    with testing.registered(plugin, name="throwaway"):
        doubling = plugin.keras_objects()["hook_test>Doubling"]
        model = keras.Sequential([keras.Input((2,)), doubling()])
        model.save(tmp_path / "m.keras")
        loaded = load_model(tmp_path / "m.keras")
    assert np.allclose(loaded.predict(np.ones((1, 2)), verbose=0), 2.0)
