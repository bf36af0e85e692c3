"""Regression on a CSV table: a dataset, an MLP, a regression objective, a callback, an
exporter and lifecycle hooks."""

import json

from pydantic import Field, PositiveInt

import kplug

kplug.require_api("1.0")  # fails with a clear PluginError on a kplug without this API


# === Dataset: the rows of a CSV file, one column the target ===


class TableConfig(kplug.Config):
    path: str = Field(description="a CSV file with a header row")
    target: str = Field(description="the column to predict")
    test_fraction: float = Field(0.2, gt=0.0, lt=1.0, description="rows kept for testing")


def load_table(config: TableConfig, ctx: kplug.RunContext) -> kplug.Data:
    import numpy as np

    try:
        table = np.genfromtxt(config.path, delimiter=",", names=True, dtype="float32")
    except OSError as error:
        raise kplug.DataError(f"data.path: cannot read {config.path}: {error}") from None
    columns = list(table.dtype.names)
    if config.target not in columns:
        raise kplug.DataError(f"data.target: no column {config.target!r} in {config.path}; "
                              f"the columns are {', '.join(columns)}.")  # fmt: skip
    features = [name for name in columns if name != config.target]
    x = np.stack([table[name] for name in features], axis=1)
    y = table[config.target].reshape(-1, 1)
    test = max(1, int(len(x) * config.test_fraction))
    return kplug.Data(
        train=(x[test:], y[test:]),
        test=(x[:test], y[:test]),
        spec=kplug.DataSpec(input_shape=(len(features),), extras={"features": features}),
        report={"features": features, "target": config.target},
    )


# === Architecture: the hidden layers; the objective adds the output layer ===


class MLPConfig(kplug.Config):
    units: list[PositiveInt] = Field([32, 16], description="hidden layer sizes")
    dropout: float = Field(0.0, ge=0.0, lt=1.0)


def build_mlp(config: MLPConfig, ctx: kplug.RunContext):
    import keras  # heavy imports inside the factory, never at module import time

    inputs = keras.Input(shape=ctx.spec.input_shape)
    x = inputs
    for units in config.units:
        x = keras.layers.Dense(units, activation="relu")(x)
        x = keras.layers.Dropout(config.dropout)(x)
    return keras.Model(inputs, x, name="mlp")


# === Objective: one linear output, mean squared error ===


class Regression(kplug.Objective):
    monitor, mode = "val_loss", "min"

    def build(self, network, ctx):
        import keras

        outputs = keras.layers.Dense(1, dtype="float32", name="prediction")(network.output)
        return keras.Model(network.input, outputs, name="regression")

    def loss(self, ctx):
        return "mean_squared_error"

    def metrics(self, ctx):
        return ["mean_absolute_error"]


# === Callback: stop once the training loss is low enough ===


class StopAtLossConfig(kplug.Config):
    loss: float = Field(gt=0.0, description="stop when the epoch's training loss is below it")


def make_stop_at_loss(config: StopAtLossConfig, ctx: kplug.RunContext):
    import keras

    class StopAtLoss(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if (logs or {}).get("loss", float("inf")) < config.loss:
                self.model.stop_training = True

    return StopAtLoss()


# === Exporter: the weights as a NumPy archive ===


class NpzExporter(kplug.Exporter):
    def export(self, model, directory, ctx):
        import numpy as np

        path = directory / "weights.npz"
        np.savez(path, *model.get_weights())
        return [path]


# === Registration and lifecycle hooks ===


@kplug.hookimpl
def register_datasets(register):
    register("csv_table", load_table, config=TableConfig, summary="rows of a CSV file")


@kplug.hookimpl
def register_architectures(register):
    register("tabular_mlp", build_mlp, config=MLPConfig, summary="a multilayer perceptron")


@kplug.hookimpl
def register_objectives(register):
    register("regression", lambda config, ctx: Regression(), summary="mean squared error")


@kplug.hookimpl
def register_callbacks(register):
    register("stop_at_loss", make_stop_at_loss, config=StopAtLossConfig,
             summary="stop training once the loss is low enough")  # fmt: skip


@kplug.hookimpl
def register_exporters(register):
    register("npz", lambda config, ctx: NpzExporter(), summary="weights.npz")


@kplug.hookimpl
def recipe_loaded(recipe):
    if recipe.data.name == "csv_table" and recipe.objective.name != "regression":
        raise kplug.RecipeError(f"{recipe.source}: csv_table targets are numbers; "
                                "use objective: {name: regression}.")  # fmt: skip


@kplug.hookimpl
def run_started(run):
    run.state["tabular_started"] = True


@kplug.hookimpl
def run_finished(run, result):
    if run.directory is not None:
        summary = {"status": result["status"], "metrics": result["metrics"]}
        (run.directory / "tabular_summary.json").write_text(json.dumps(summary, indent=1))
