import json

import kplug_tabular
import pytest

import kplug
from kplug import testing


def write_table(path, rows=64):
    lines = ["x1,x2,y"] + [f"{i / rows},{(i % 7) / 7},{2 * i / rows + (i % 7) / 7}"
                           for i in range(rows)]  # fmt: skip
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def test_regression_trains_exports_and_reports(tmp_path):
    recipe = {
        "data": {"name": "csv_table", "path": write_table(tmp_path / "t.csv"), "target": "y",
                 "batch_size": 16},
        "model": {"name": "tabular_mlp", "units": [8]},
        "objective": {"name": "regression"},
        "callbacks": [{"name": "stop_at_loss", "loss": 100.0}],
        "export": ["npz"],
        "train": {"epochs": 3},
    }  # fmt: skip
    with testing.registered(kplug_tabular, name="tabular"):
        result = testing.smoke_run(recipe, tmp_path / "runs")
    assert (result.directory / "weights.npz").is_file()
    summary = json.loads((result.directory / "tabular_summary.json").read_text())
    assert summary["status"] == "completed"
    assert summary["metrics"]["test"]["mean_absolute_error"] >= 0
    epochs = (result.directory / "metrics.csv").read_text().strip().splitlines()[1:]
    assert len(epochs) == 1  # stop_at_loss stopped after the first epoch


def test_a_missing_target_column_is_a_data_error(tmp_path):
    config = kplug_tabular.TableConfig(path=write_table(tmp_path / "t.csv"), target="price")
    with pytest.raises(kplug.DataError, match="data.target: no column 'price'.*x1, x2, y"):
        kplug_tabular.load_table(config, ctx=None)


def test_classification_on_a_table_is_refused(tmp_path):
    (tmp_path / "r.yaml").write_text(
        "name: r\ndata: {name: csv_table, path: t.csv, target: y}\n"
        "model: {name: tabular_mlp}\nobjective: {name: classification}\n"
    )
    result = testing.cli("validate", str(tmp_path / "r.yaml"))
    testing.assert_user_error(result, "csv_table targets are numbers")
