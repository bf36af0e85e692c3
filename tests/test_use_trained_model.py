"""After training, on image runs: inference.json, curves.png, report.md, TensorBoard,
`kplug predict` (image files, a folder, arrays), `kplug evaluate`, `kplug compare`, bad
inputs, and model.keras loading in a process without kplug."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

import kplug
from kplug import testing
from kplug.cli import main
from kplug.runner import run

LIMIT = ["data.limit=64", "data.batch_size=16"]


@pytest.fixture(scope="module")
def cnn_run(tmp_path_factory):
    """The shipped CNN recipe, smoke-sized, run by the `kplug` command with its output
    piped (as to a log file)."""
    root = tmp_path_factory.mktemp("cnn")
    small = ["model.filters=[4, 8]", "model.dense_units=8"]
    result = testing.cli("run", "recipes/mnist_cnn.yaml", "--smoke", *LIMIT, *small,
                         "--runs-dir", str(root))  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    directory = Path(result.stdout.strip().splitlines()[-1])
    return SimpleNamespace(directory=directory, output=result.stdout + result.stderr)


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory):
    """A second image run (8x8 digits), with TensorBoard and a learning-rate schedule."""
    root = tmp_path_factory.mktemp("digits")
    recipe = testing.recipe({
        "name": "digits-cnn",
        "data": {"name": "digits", "batch_size": 16, "limit": 64, "validation_split": 0.25},
        "model": {"name": "cnn", "filters": [4], "dense_units": 8},
        "objective": {"name": "classification"},
        "optimizer": {"name": "adam", "schedule": {"name": "cosine", "warmup_steps": 2}},
        "train": {"epochs": 2, "tensorboard": True},
    })  # fmt: skip
    return run(recipe, runs_root=root, argv=["test"])


def mnist_images(folder, count=4):
    """The first MNIST test images as PNG files, their raw pixels and labels."""
    from kplug_data.mnist import mnist_path
    from PIL import Image

    table = np.loadtxt(mnist_path(), delimiter=",", dtype=np.uint8, max_rows=count)
    folder.mkdir(parents=True, exist_ok=True)
    for i, row in enumerate(table):
        Image.fromarray(row[:-1].reshape(28, 28)).save(folder / f"digit{i}.png")
    return table[:, :-1].reshape(-1, 28, 28, 1), table[:, -1]


def test_piped_output_has_no_escape_codes_and_no_tensorflow_log_lines(cnn_run):
    output = cnn_run.output
    assert "\x1b" not in output
    native = [
        line
        for line in output.splitlines()
        if re.match(r"[IWEF]\d{4} ", line) or "absl::" in line or "oneDNN" in line
    ]
    assert not native, native
    epochs = [line for line in output.splitlines() if re.match(r"\d+/\d+ - .*loss", line)]
    assert len(epochs) == 1, output  # one plain line for the one smoke epoch
    assert "kplug: stage fit" in output


def test_a_run_writes_inference_json_curves_and_report(cnn_run):
    directory = cnn_run.directory
    inference = json.loads((directory / "inference.json").read_text())
    assert inference["class_names"] == [str(d) for d in range(10)]
    assert inference["data"]["input_shape"] == [28, 28, 1]
    assert inference["preprocessing"]["scale"] == pytest.approx(1 / 255)
    assert (directory / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    report = (directory / "report.md").read_text()
    assert "## Final metrics" in report and "| test | accuracy |" in report
    assert "Confusion matrix" in report and "| class | precision | recall | F1 |" in report
    classes = json.loads((directory / "test_classes.json").read_text())
    assert sum(map(sum, classes["confusion_matrix"])) == classes["examples"] > 0


def test_predict_image_files_equal_arrays_and_the_model(cnn_run, tmp_path, capsys):
    from kplug.training.models import load_model

    pixels, _ = mnist_images(tmp_path / "images")
    np.save(tmp_path / "pixels.npy", pixels)
    out = tmp_path / "p.jsonl"
    assert main(["predict", str(cnn_run.directory), str(tmp_path / "images"), "--out", str(out),
                 "--top-k", "2"]) == 0  # fmt: skip
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["input"] for r in rows] == [f"digit{i}.png" for i in range(4)]
    model = load_model(cnn_run.directory / "model.keras", compile=False)
    expected = model.predict(pixels.astype("float32") / 255, verbose=0)
    for row, p in zip(rows, expected, strict=True):
        assert row["class"] == str(int(np.argmax(p)))
        assert row["probability"] == pytest.approx(float(p.max()), abs=1e-5)
        assert len(row["top_k"]) == 2 and row["top_k"][0][0] == row["class"]
    capsys.readouterr()
    assert main(["predict", str(cnn_run.directory), str(tmp_path / "pixels.npy")]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "input,class,probability,top_k" and len(lines) == 5
    assert [line.split(",")[1] for line in lines[1:]] == [r["class"] for r in rows]


def test_evaluate_gives_the_models_accuracy_on_the_split(cnn_run, capsys):
    from kplug_data.mnist import MnistConfig, load_mnist

    from kplug.training.models import load_model

    assert main(["evaluate", str(cnn_run.directory), "data.limit=32"]) == 0
    printed = json.loads(capsys.readouterr().out)
    (record_path,) = (cnn_run.directory / "evaluations").glob("*.json")
    record = json.loads(record_path.read_text())
    assert record["examples"] == printed["examples"] == 32 and record["split"] == "test"
    x, y = load_mnist(MnistConfig(), None).test
    model = load_model(cnn_run.directory / "model.keras", compile=False)
    predicted = np.argmax(model.predict(x[:32], verbose=0), axis=1)
    assert record["metrics"]["accuracy"] == pytest.approx(float(np.mean(predicted == y[:32])))


def test_predict_bad_inputs_are_user_errors(cnn_run, tmp_path, capsys):
    from PIL import Image

    directory = str(cnn_run.directory)
    Image.fromarray(np.zeros((28, 28, 3), np.uint8)).save(tmp_path / "rgb.png")
    (tmp_path / "empty.npy").write_bytes(b"")
    np.save(tmp_path / "three.npy", np.zeros((2, 28, 28, 3), np.float32))
    (tmp_path / "notes.txt").write_text("a digit\n")
    unfinished = tmp_path / "unfinished"
    shutil.copytree(cnn_run.directory, unfinished)
    manifest = json.loads((unfinished / "manifest.json").read_text())
    (unfinished / "manifest.json").write_text(json.dumps({**manifest, "status": "running"}))
    cases = [
        (["predict", str(unfinished), str(tmp_path / "rgb.png")], "has not finished"),
        (["predict", directory, "--text", "seven"], "not text"),
        (["predict", directory, str(tmp_path / "notes.txt")], "cannot read .txt files"),
        (["predict", directory, str(tmp_path / "rgb.png")], "has 3 channel(s)"),
        (["predict", directory, str(tmp_path / "three.npy")], "wrong channel count"),
        (["predict", directory, str(tmp_path / "empty.npy")], "empty.npy"),
        (["evaluate", directory, "model.filters=[2]"], "changes only the data section"),
    ]
    for args, fragment in cases:
        testing.assert_main_user_error(capsys, args, fragment)


def test_tensorboard_writes_train_and_validation_events_and_hparams(digits_run):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.hparams import plugin_data_pb2

    folder = digits_run.directory / "tensorboard"
    for split in ("train", "validation"):
        events = EventAccumulator(str(folder / split)).Reload()
        assert "epoch_loss" in events.Tags()["tensors"], events.Tags()
    contents = EventAccumulator(str(folder)).Reload().PluginTagToContent("hparams")
    starts = [plugin_data_pb2.HParamsPluginData.FromString(c).session_start_info
              for c in contents.values()]  # fmt: skip
    (start,) = [s for s in starts if s.hparams]
    assert start.hparams["optimizer.schedule.name"].string_value == "cosine"
    assert start.hparams["train.epochs"].number_value == 2


def test_compare_prints_differing_keys_and_metrics_and_plots(cnn_run, digits_run, tmp_path,
                                                             capsys):  # fmt: skip
    plot = tmp_path / "both.png"
    assert main(["compare", str(cnn_run.directory), str(digits_run.directory),
                 "--plot", str(plot)]) == 0  # fmt: skip
    out = capsys.readouterr().out
    assert "recipe data.name" in out and "mnist" in out and "digits" in out
    assert "test.accuracy" in out and "recipe seed" not in out
    assert plot.read_bytes()[:4] == b"\x89PNG"


def test_models_load_in_plain_keras_without_kplug(cnn_run, digits_run, tmp_path):
    from kplug.training.models import load_model

    cases = []
    for result, shape in ((cnn_run, (3, 28, 28, 1)), (digits_run, (3, 8, 8, 1))):
        path = result.directory / "model.keras"
        x = np.random.default_rng(0).random(shape, dtype=np.float32)
        cases.append((path, x, load_model(path, compile=False).predict(x, verbose=0)))
    testing.assert_loads_without_kplug(cases, tmp_path)


class ZerosInputs:
    """A throwaway plugin: one all-zero image as the input of mnist runs."""

    @kplug.hookimpl
    def prediction_inputs(self, dataset, inference):
        if dataset != "mnist":
            return None
        spec = kplug.DataSpec(input_shape=(28, 28, 1), num_classes=10,
                              class_names=inference["class_names"])  # fmt: skip
        x = np.zeros((1, 28, 28, 1), np.float32)
        return kplug.Data(train=(x, None), spec=spec, report={"inputs": ["zeros"]})


class ZerosRows(ZerosInputs):
    """... and rows of its own for classification runs."""

    @kplug.hookimpl
    def prediction_rows(self, objective, model, inputs):
        if objective != "classification":
            return None
        scores = model.predict(inputs.train[0], verbose=0)
        return [{"input": name, "score_sum": round(float(s.sum()), 3)}
                for name, s in zip(inputs.report["inputs"], scores, strict=True)]  # fmt: skip


def test_hook_prediction_inputs_reads_a_plugins_inputs(cnn_run, tmp_path, capsys):
    with testing.registered(ZerosInputs(), "zeros"):
        assert main(["predict", str(cnn_run.directory), str(tmp_path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "input,class,probability,top_k" and lines[1].startswith("zeros,")
    assert len(lines) == 2


def test_hook_prediction_rows_replaces_class_rows(cnn_run, tmp_path, capsys):
    with testing.registered(ZerosRows(), "zeros"):
        assert main(["predict", str(cnn_run.directory), str(tmp_path)]) == 0
    assert capsys.readouterr().out.splitlines() == ["input,score_sum", "zeros,1.0"]


class PinLimit:
    """Pins a data option for `kplug evaluate`, as the text plugin pins its tokenizer."""

    @kplug.hookimpl
    def evaluation_overrides(self, recipe, inference, run_dir):
        assert inference["dataset"] == recipe.data.name == "mnist" and run_dir.is_dir()
        return ["data.limit=8"]


def test_hook_evaluation_overrides_pin_the_runs_data(cnn_run, tmp_path, capsys):
    run_dir = tmp_path / "run"
    shutil.copytree(cnn_run.directory, run_dir)  # the shared run's evaluations stay as they are
    shutil.rmtree(run_dir / "evaluations", ignore_errors=True)  # other tests' evaluations
    with testing.registered(PinLimit(), "pin_limit"):
        assert main(["evaluate", str(run_dir)]) == 0
    assert json.loads(capsys.readouterr().out)["examples"] == 8
    (record_path,) = (run_dir / "evaluations").glob("*.json")
    assert json.loads(record_path.read_text())["data"]["limit"] == 8


class AddFields:
    @kplug.hookimpl
    def inference_fields(self, run, directory):
        assert directory == run.directory.path
        return {"my_plugin": {"labels": "my_labels.txt"}, "format": 99}


class BrokenFields:
    @kplug.hookimpl
    def inference_fields(self):
        raise RuntimeError("no fields today")


def test_hook_inference_fields_add_entries_but_not_kplugs(minimal_recipe, runs_root, caplog):
    with (
        testing.registered(AddFields(), "add_fields"),
        testing.registered(BrokenFields(), "broken"),
    ):
        result = run(kplug.load_recipe(minimal_recipe), runs_root=runs_root, smoke=True)
    assert result.status == "completed"
    meta = json.loads((result.directory / "inference.json").read_text())
    assert meta["my_plugin"] == {"labels": "my_labels.txt"}
    assert meta["format"] == 1  # kplug's own key wins
    assert "broken" in caplog.text and "no fields today" in caplog.text  # named, not silent
