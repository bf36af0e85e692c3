"""Image data: the `classes:`/`fraction:` filters of the array datasets, `image_folder`
(real PNG files) and `tfds` (tiny real TFDS datasets prepared into a temporary data_dir),
with their bad inputs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from kplug import DataError, testing
from kplug.cli import main
from kplug.context import RunContext
from kplug.plugins import registry


def load(data: dict):
    recipe = testing.recipe({"data": data, "model": {"name": "cnn"},
                             "objective": {"name": "classification"}})  # fmt: skip
    return RunContext(recipe, registry()).build(recipe.data)


# --- classes / fraction -------------------------------------------------------------


def test_classes_relabel_in_the_order_given_and_fraction_is_stratified():
    full = load({"name": "mnist"})
    data = load({"name": "mnist", "classes": [5, 6, 7, 8, 9], "fraction": 0.1})
    assert data.spec.num_classes == 5 and data.spec.class_names == ["5", "6", "7", "8", "9"]
    assert data.report["classes"]["label_map"] == {"5": 0, "6": 1, "7": 2, "8": 3, "9": 4}
    x, y = data.train
    full_y = full.train[1]
    for new, old in enumerate([5, 6, 7, 8, 9]):
        assert (y == new).sum() == max(1, round((full_y == old).sum() * 0.1))
    # the test split stays whole: every test 5-9, relabelled
    assert len(data.test[1]) == np.isin(full.test[1], [5, 6, 7, 8, 9]).sum()
    assert set(np.unique(data.test[1])) == {0, 1, 2, 3, 4}
    again = load({"name": "mnist", "classes": [5, 6, 7, 8, 9], "fraction": 0.1})
    np.testing.assert_array_equal(again.train[0], x)  # deterministic (fraction_seed)
    other = load({"name": "mnist", "classes": [5, 6, 7, 8, 9], "fraction": 0.1,
                  "fraction_seed": 1})  # fmt: skip
    assert not np.array_equal(other.train[0], x)
    assert data.report["fraction"]["train_after"] == len(y)


def test_unknown_classes_are_a_data_error():
    with pytest.raises(DataError, match=r"data.classes: \[10\] are not labels"):
        load({"name": "digits", "classes": [9, 10]})


# --- image_folder --------------------------------------------------------------------


def write_pngs(root: Path, counts: dict[str, int], size: int = 12) -> Path:
    from PIL import Image

    rng = np.random.default_rng(0)
    for index, (name, count) in enumerate(counts.items()):
        folder = root / name
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(count):
            pixels = rng.integers(0, 80, (size, size, 3)) + 170 * index
            Image.fromarray(pixels.clip(0, 255).astype(np.uint8)).save(folder / f"{i}.png")
    return root


def test_image_folder_trains_a_cnn_with_augmentation(tmp_path):
    root = write_pngs(tmp_path / "images", {"dark": 10, "light": 10})
    result = testing.smoke_run(
        {"data": {"name": "image_folder", "path": str(root), "image_size": [16, 16],
                  "batch_size": 4, "test_fraction": 0.25},
         "model": {"name": "cnn", "filters": [4], "dense_units": 8,
                   "augment": {"flip": "horizontal", "rotation": 0.1}},
         "objective": {"name": "classification"}},
        tmp_path / "runs",
    )  # fmt: skip
    report = result.directory.read_json("data_report.json")
    assert report["class_names"] == ["dark", "light"]
    assert report["examples"] == {"train": 15, "validation": 0, "test": 5}
    assert result.metrics["test"]["accuracy"] >= 0.0


def test_image_folder_values_and_spec(tmp_path):
    root = write_pngs(tmp_path / "images", {"a": 3, "b": 2})
    data = load({"name": "image_folder", "path": str(root), "image_size": [8, 8],
                 "color_mode": "grayscale", "test_fraction": 0.0})  # fmt: skip
    assert data.spec.input_shape == (8, 8, 1) and data.spec.num_classes == 2
    images = list(data.train.as_numpy_iterator())
    assert len(images) == 5 and data.test is None
    assert all(x.dtype == np.float32 and x.min() >= 0.0 and x.max() <= 1.0 for x, _ in images)
    assert sorted(int(y) for _, y in images) == [0, 0, 0, 1, 1]


@pytest.mark.parametrize(
    "problem, fragment",
    [
        ("missing", "the image folder {root} does not exist"),
        ("empty_class", "the class folder {root}/empty holds no images"),
        ("text_file", "{root}/a/notes.txt is not an image"),
        ("corrupt_png", "{root}/a/broken.png: not a PNG image"),
    ],
)
def test_image_folder_bad_inputs_are_clear_errors(problem, fragment, tmp_path, capsys):
    root = tmp_path / "images"
    if problem != "missing":
        write_pngs(root, {"a": 2, "b": 2})
    if problem == "empty_class":
        (root / "empty").mkdir()
    if problem == "text_file":
        (root / "a" / "notes.txt").write_text("not an image")
    if problem == "corrupt_png":
        (root / "a" / "broken.png").write_bytes(b"<html>404</html>")
    recipe = tmp_path / "r.yaml"
    recipe.write_text(
        f"name: r\ndata: {{name: image_folder, path: '{root}', image_size: [8, 8]}}\n"
        "model: {name: cnn, filters: [4]}\nobjective: {name: classification}\n"
    )
    assert main(["data", str(recipe)]) == 2
    err = capsys.readouterr().err
    assert fragment.format(root=root) in err and "Traceback" not in err


def test_ignore_other_files_skips_them(tmp_path):
    root = write_pngs(tmp_path / "images", {"a": 2, "b": 2})
    (root / "a" / "notes.txt").write_text("not an image")
    data = load({"name": "image_folder", "path": str(root), "image_size": [8, 8],
                 "test_fraction": 0.0, "ignore_other_files": True})  # fmt: skip
    assert data.report["files_per_class"] == {"a": 2, "b": 2}


# --- tfds ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tfds_dir(tmp_path_factory):
    """Two tiny real TFDS datasets (images; text) prepared into a data_dir."""
    import tensorflow_datasets as tfds
    from etils import epath

    data_dir = tmp_path_factory.mktemp("tfds")
    # Where TFDS looks for a builder's metadata files (README, checksums): a builder
    # defined outside a package must say.
    metadata = epath.Path(data_dir / "metadata")
    metadata.mkdir()

    class KplugTinyImages(tfds.core.GeneratorBasedBuilder):
        VERSION = tfds.core.Version("1.0.0")
        pkg_dir_path = metadata

        def _info(self):
            return self.dataset_info_from_configs(
                features=tfds.features.FeaturesDict({
                    "image": tfds.features.Image(shape=(8, 8, 1)),
                    "label": tfds.features.ClassLabel(names=["dark", "light"]),
                }),
                supervised_keys=("image", "label"),
            )  # fmt: skip

        def _split_generators(self, dl_manager):
            return {"train": self._generate_examples(48, 0), "test": self._generate_examples(16, 1)}

        def _generate_examples(self, n, seed):
            rng = np.random.default_rng(seed)
            for i in range(n):
                image = rng.integers(0, 80, (8, 8, 1)) + 170 * (i % 2)
                yield i, {"image": image.astype(np.uint8), "label": i % 2}

    class KplugTinyText(tfds.core.GeneratorBasedBuilder):
        VERSION = tfds.core.Version("1.0.0")
        pkg_dir_path = metadata

        def _info(self):
            return self.dataset_info_from_configs(
                features=tfds.features.FeaturesDict({
                    "text": tfds.features.Text(),
                    "label": tfds.features.ClassLabel(names=["neg", "pos"]),
                }),
                supervised_keys=("text", "label"),
            )  # fmt: skip

        def _split_generators(self, dl_manager):
            return {"train": self._generate_examples(), "test": self._generate_examples()}

        def _generate_examples(self):
            for i, text in enumerate(["awful film", "great film", "dull plot", "fine plot"]):
                yield i, {"text": text, "label": i % 2}

    for builder in (KplugTinyImages, KplugTinyText):
        builder(data_dir=str(data_dir)).download_and_prepare()
    return data_dir


def test_tfds_images_train_through_the_real_loader(tfds_dir, tmp_path):
    result = testing.smoke_run(
        {"data": {"name": "tfds", "dataset": "kplug_tiny_images", "data_dir": str(tfds_dir),
                  "batch_size": 8, "validation_split": 0.25},
         "model": {"name": "cnn", "filters": [4], "padding": "same", "dense_units": 8},
         "objective": {"name": "classification"}},
        tmp_path,
    )  # fmt: skip
    report = result.directory.read_json("data_report.json")
    assert report["splits"] == {"train": 48, "test": 16}
    # 12 of 48 held out for validation, then the smoke limit of 4 batches (32)
    assert report["examples"] == {"train": 32, "validation": 12, "test": 16}


def test_tfds_serves_text_label_pairs(tfds_dir):
    data = load({"name": "tfds", "dataset": "kplug_tiny_text", "data_dir": str(tfds_dir)})
    assert data.spec.input_dtype == "string" and data.spec.class_names == ["neg", "pos"]
    pairs = [(x.decode(), int(y)) for x, y in data.train.as_numpy_iterator()]
    assert sorted(pairs) == [("awful film", 0), ("dull plot", 0), ("fine plot", 1),
                             ("great film", 1)]  # fmt: skip


def test_tfds_unknown_name_lists_close_names(tmp_path, capsys):
    recipe = tmp_path / "r.yaml"
    recipe.write_text(
        f"name: r\ndata: {{name: tfds, dataset: mnistt, data_dir: '{tmp_path}'}}\n"
        "model: {name: cnn}\nobjective: {name: classification}\n"
    )
    assert main(["data", str(recipe)]) == 2
    err = capsys.readouterr().err
    assert "unknown TFDS dataset 'mnistt'; did you mean mnist" in err and "Traceback" not in err


def test_tfds_not_prepared_says_how_to_prepare(tmp_path, capsys):
    recipe = tmp_path / "r.yaml"
    recipe.write_text(
        f"name: r\ndata: {{name: tfds, dataset: mnist, data_dir: '{tmp_path}'}}\n"
        "model: {name: cnn}\nobjective: {name: classification}\n"
    )
    assert main(["data", str(recipe)]) == 2
    err = capsys.readouterr().err
    assert "TFDS 'mnist' is not prepared in" in err and "tfds build mnist --data_dir" in err
    assert "Traceback" not in err and not any(tmp_path.glob("mnist/*/*.tfrecord*"))
