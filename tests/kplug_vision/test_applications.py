"""`vgg16` / `keras_application`: input adaptation, weights (file, none, imagenet offline,
corrupt), the frozen base, phase 2 unfreezing block 5, and augmentation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from kplug import DataSpec, RecipeError, testing
from kplug.cli import main
from kplug.context import RunContext
from kplug.plugins import registry
from kplug.training.models import load_model

ROOT = Path(__file__).resolve().parents[2]
VGG_RECIPE = str(ROOT / "recipes" / "vgg16_transfer.yaml")
MNIST = DataSpec(input_shape=(28, 28, 1), num_classes=10)


def build(model: dict, spec: DataSpec = MNIST):
    recipe = testing.recipe(
        {"data": {"name": "mnist"}, "model": model, "objective": {"name": "classification"}}
    )
    ctx = RunContext(recipe, registry())
    ctx.data = type("D", (), {"spec": spec})()
    return ctx.build(recipe.model), ctx


@pytest.fixture(scope="module")
def vgg_weights_file(tmp_path_factory):
    import keras

    base = keras.applications.VGG16(include_top=False, weights=None, input_shape=(32, 32, 3))
    path = tmp_path_factory.mktemp("weights") / "vgg16_base.weights.h5"
    base.save_weights(path)
    return path, {layer.name: layer.get_weights() for layer in base.layers if layer.weights}


def test_vgg16_from_a_weights_file_freezes_the_base_and_phase_two_trains_block5(
    vgg_weights_file, tmp_path
):
    path, initial = vgg_weights_file
    from kplug import load_recipe
    from kplug.runner import run

    result = run(load_recipe(VGG_RECIPE, [f"model.weights={path}"]), runs_root=tmp_path,
                 smoke=True, argv=["test"])  # fmt: skip
    assert result.status == "completed"
    model = load_model(result.directory / "model.keras")
    base = model.get_layer("base")
    for name, weights in initial.items():
        now = base.get_layer(name).get_weights()
        unchanged = all(np.array_equal(a, b) for a, b in zip(weights, now, strict=True))
        # blocks 1-4 stayed frozen in both phases; block 5 trained in phase 2
        assert unchanged == (not name.startswith("block5")), name
    first, second = result.directory.read_json("phases.json")
    assert first["trained_layers"] == ["dense1", "logits"]
    assert "base/block5_conv3" in second["trained_layers"]
    assert "base/block4_conv3" in second["frozen_layers"]
    assert second["learning_rate"] == pytest.approx(1e-4)
    kinds = [type(layer).__name__ for layer in model.layers[1:]]
    assert kinds == ["Concatenate", "Resizing", "Conv2D", "Functional", "Flatten",
                     "Dense", "Dense", "Activation"]  # fmt: skip
    # Only standard layers: plain Keras loads the model, the preprocessing included.
    x = np.random.default_rng(0).random((2, 28, 28, 1), dtype=np.float32)
    path = result.directory / "model.keras"
    expected = load_model(path, compile=False).predict(x, verbose=0)
    testing.assert_loads_without_kplug([(path, x, expected)], tmp_path)


def test_imagenet_without_network_or_cache_names_the_cache_and_the_alternative(tmp_path):
    # An unreachable proxy stands for "no network"; an empty KERAS_HOME for "no cache".
    env = {"KERAS_HOME": str(tmp_path / "keras"), "https_proxy": "http://127.0.0.1:9",
           "HTTPS_PROXY": "http://127.0.0.1:9", "no_proxy": "", "NO_PROXY": ""}  # fmt: skip
    result = testing.cli("run", VGG_RECIPE, "--smoke", "model.weights=imagenet",
                         "--runs-dir", str(tmp_path / "runs"), env=env)  # fmt: skip
    testing.assert_user_error(
        result, "ImageNet weights are not in the Keras cache", str(tmp_path / "keras" / "models"),
        "model.weights=/path/to/vgg16_notop.h5",
    )  # fmt: skip


def test_a_corrupt_weights_file_is_a_clear_error(tmp_path, capsys):
    bad = tmp_path / "vgg16.weights.h5"
    bad.write_bytes(b"not an HDF5 file" * 64)
    code = main(["run", VGG_RECIPE, "--smoke", f"model.weights={bad}",
                 "--runs-dir", str(tmp_path / "runs")])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    assert f"model.weights: cannot load {bad} into VGG16" in err and "save_weights" in err


def test_a_missing_weights_file_is_a_clear_error(tmp_path):
    with pytest.raises(Exception, match="is not a file"):
        build({"name": "vgg16", "weights": str(tmp_path / "nope.h5")})


def test_keras_application_shares_the_code_path():
    model, ctx = build({"name": "keras_application", "backbone": "MobileNetV2",
                        "weights": "none", "dense_units": [32]})  # fmt: skip
    assert model.output_shape == (None, 10)
    # the frozen preprocessing (a fixed 1x1 conv) is frozen with the backbone it feeds
    assert model.get_layer("base").name == "base"
    assert ctx.state["base_layers"] == ["preprocess", "base"]
    assert type(model.get_layer("pool")).__name__ == "GlobalAveragePooling2D"
    assert model.get_layer("resize").get_config()["height"] == 32


def test_backbones_are_the_keras_applications():
    import keras
    from kplug_vision.applications import BACKBONES

    assert set(BACKBONES) == {n for n in dir(keras.applications) if n[0].isupper()}
    with pytest.raises(RecipeError, match="model.backbone"):
        testing.recipe({"data": {"name": "mnist"}, "objective": {"name": "classification"},
                        "model": {"name": "keras_application", "backbone": "ResNet5"}})  # fmt: skip


def test_backbone_preprocess_is_the_applications_own():
    import keras
    from kplug_vision.backbone_preprocess import BackbonePreprocess

    x = np.random.default_rng(0).random((2, 4, 4, 3)).astype("float32")
    for backbone, module in (("VGG16", "vgg16"), ("MobileNetV2", "mobilenet_v2")):
        expected = getattr(keras.applications, module).preprocess_input(x * 255.0)
        got = BackbonePreprocess(backbone, input_scale=1.0)(x)
        np.testing.assert_allclose(keras.ops.convert_to_numpy(got), expected, rtol=1e-5)


@pytest.mark.parametrize("backbone", ["VGG16", "MobileNetV2", "EfficientNetB0", "ResNet50V2"])
@pytest.mark.parametrize("input_scale", [1.0, 255.0])
def test_standard_preprocess_equals_the_applications_own(backbone, input_scale):
    import keras
    from kplug_vision.backbone_preprocess import preprocess_function, standard_preprocess

    x = np.random.default_rng(0).random((2, 4, 4, 3)).astype("float32") * input_scale
    expected = preprocess_function(backbone)(x * (255.0 / input_scale))
    got = keras.ops.convert_to_numpy(standard_preprocess(backbone, input_scale)(x))
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-4)


def test_augmentation_is_active_in_training_only():
    import keras

    model, _ = build({"name": "cnn", "filters": [4], "augment": {
        "rotation": 0.2, "zoom": 0.2, "translation": 0.2, "flip": "horizontal"}})  # fmt: skip
    names = [layer.name for layer in model.layers]
    assert names[1:5] == ["augment_flip", "augment_rotation", "augment_zoom",
                          "augment_translation"]  # fmt: skip
    front = keras.Model(model.input, model.get_layer("augment_translation").output)
    x = np.random.default_rng(0).random((4, 28, 28, 1)).astype("float32")
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(front(x, training=False)), x)
    assert not np.allclose(keras.ops.convert_to_numpy(front(x, training=True)), x)


@pytest.mark.parametrize("config", [{}, {"input_size": 64, "dense_units": [32, 16]},
                                    {"pooling": "avg"}])  # fmt: skip
def test_vgg16_estimate_equals_built(config):
    model, _ = build({"name": "vgg16", "weights": "none", **config})
    estimate = testing.check_estimate("architecture", "vgg16", {"weights": "none", **config},
                                      {"input_shape": [28, 28, 1], "num_classes": 10})  # fmt: skip
    assert estimate["parameters"] == model.count_params()
