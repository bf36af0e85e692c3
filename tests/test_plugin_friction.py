"""What a third-party plugin author ran into (issue 15's friction list), each fixed: the
reserved data-report keys, `kplug describe`'s types, validator messages and their origin,
overrides of bare-name components and of search-space keys, plugin callbacks' columns in
metrics.csv, and one epoch numbering in metrics.csv and train.log."""

from __future__ import annotations

import csv
from typing import Literal

import keras
import numpy as np
import pytest
from pydantic import Field, PositiveInt

import kplug
from kplug import testing
from kplug.cli.type_names import field_type
from kplug.stages import data_report

TINY = {
    "data": {"name": "synthetic", "shape": [8, 8, 1], "num_classes": 3, "train_examples": 48,
             "validation_examples": 16, "test_examples": 16, "batch_size": 16},
    "model": {"name": "cnn", "filters": [4], "dense_units": 8},
    "objective": {"name": "classification"},
    "train": {"epochs": 2},
}  # fmt: skip


class ExportConfig(kplug.Config):
    scale: PositiveInt = 1


class AddsColumn(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        logs["plugin_column"] = 10.0 + epoch


class FrictionPlugin:
    @kplug.hookimpl
    def register_exporters(self, register):
        register("scaled_export", lambda config, ctx: None, config=ExportConfig, summary="-")

    @kplug.hookimpl
    def register_callbacks(self, register):
        register("adds_column", lambda config, ctx: AddsColumn(), summary="-")


@pytest.fixture(scope="module")
def friction_plugin():
    with testing.registered(FrictionPlugin(), name="friction-test") as registry:
        yield registry


def test_a_datasets_report_cannot_replace_kplugs_split_counts():
    split = (np.zeros((4, 2), "float32"), np.zeros(4, "int64"))
    spec = kplug.DataSpec(input_shape=(2,), num_classes=2)
    mine = kplug.Data(split, None, None, spec, report={"rows_read": 4})
    assert data_report(mine) == {"examples": {"train": 4, "validation": 0, "test": 0},
                                 "rows_read": 4}  # fmt: skip
    clashing = kplug.Data(split, None, None, spec, report={"examples": 99})
    with pytest.raises(kplug.DataError, match="'examples'.*rename it"):
        data_report(clashing, "dataset 'tabular'")


def test_describe_writes_types_and_ranges_in_words():
    class Options(kplug.Config):
        sizes: list[PositiveInt] = [1]
        rate: float = Field(0.5, ge=0, lt=1)
        share: float | None = Field(None, gt=0, le=1)
        mode: Literal["fast", "exact"] = "fast"

    fields = Options.model_fields
    assert field_type(fields["sizes"]) == "list of int > 0"
    assert field_type(fields["rate"]) == "float in [0, 1)"
    assert field_type(fields["share"]) == "float in (0, 1] or null"
    assert field_type(fields["mode"]) == "one of 'fast', 'exact'"


def test_a_validators_message_blames_the_command_line_override(tmp_path):
    path = tmp_path / "phased.yaml"
    path.write_text(
        "name: phased\ndata: {name: digits}\nmodel: {name: cnn}\n"
        "objective: {name: classification}\ntrain:\n  phases: [{epochs: 1}, {epochs: 1}]\n"
    )
    with pytest.raises(kplug.RecipeError) as error:
        kplug.load_recipe(path, ["train.epochs=5"])
    message = str(error.value)
    assert "command line: train.epochs=5 (section at " in message
    assert "the phases add up to 2 epochs" in message
    assert "Value error" not in message


def test_a_component_given_by_bare_name_takes_overrides(friction_plugin):
    recipe = testing.recipe({**TINY, "export": ["scaled_export"]}, ["export.0.scale=3"])
    assert recipe.export[0].name == "scaled_export" and recipe.export[0].config.scale == 3


def test_search_space_keys_take_overrides():
    space = {"optimizer.learning_rate": [0.1, 0.01]}
    recipe = testing.recipe(
        {**TINY, "search": {"tuner": "random", "space": space}},
        ["search.space.optimizer.learning_rate=[0.5]", "search.space.model.dropout=[0.1]"],
    )
    assert recipe.raw["search"]["space"] == {
        "optimizer.learning_rate": [0.5],
        "model.dropout": [0.1],
    }


def test_plugin_callback_keys_are_metrics_csv_columns_and_epochs_count_from_1(
    friction_plugin, tmp_path
):
    run = testing.smoke_run({**TINY, "callbacks": ["adds_column"]}, tmp_path, smoke=False)
    with (run.directory / "metrics.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert [row["epoch"] for row in rows] == ["1", "2"]
    assert [float(row["plugin_column"]) for row in rows] == [10.0, 11.0]
    log = (run.directory / "train.log").read_text()
    assert "epoch 1/2:" in log and "epoch 2/2:" in log and "plugin_column=11" in log
