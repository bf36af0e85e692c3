"""`gan`, `dcgan`, the `adversarial` objective, the sample score and `kplug sample`."""

from __future__ import annotations

import csv
import math

import numpy as np
import pytest
from kplug_gan.grid import tile
from kplug_gan.quality import class_scores

import kplug
from kplug import testing
from kplug.cli import main

GAN_MNIST = {
    "name": "tiny-gan",
    "data": {"name": "mnist", "batch_size": 16, "limit": 64},
    "model": {"name": "gan", "generator_units": [32], "discriminator_filters": [8, 16]},
    "objective": {"name": "adversarial", "grid_samples": 16, "score_samples": 50,
                  "generator_ema": 0.9},
    "optimizer": {"name": "adam", "learning_rate": 2e-4, "beta_1": 0.5},
    "train": {"epochs": 2, "steps_per_epoch": 2, "verbose": 0},
}  # fmt: skip
DIGITS_CLASSIFIER = {
    "name": "digits-cnn",
    "data": {"name": "digits", "batch_size": 32},
    "model": {"name": "cnn", "filters": [8], "dense_units": 16},
    "objective": {"name": "classification"},
}


@pytest.fixture(scope="module")
def gan_run(tmp_path_factory):
    return testing.smoke_run(GAN_MNIST, tmp_path_factory.mktemp("runs"), smoke=False)


@pytest.fixture(scope="module")
def classifier_run(tmp_path_factory):
    return testing.smoke_run(DIGITS_CLASSIFIER, tmp_path_factory.mktemp("runs"))


def test_a_short_run_writes_sample_grids_finite_losses_and_scores(gan_run):
    directory = gan_run.directory
    assert [p.name for p in sorted((directory / "samples").iterdir())] == [
        "epoch_001.png", "epoch_002.png"
    ]  # fmt: skip
    from matplotlib import image

    grid = image.imread(directory / "samples" / "epoch_002.png")
    assert grid.shape[:2] == (2 * (4 * 30 + 2), 2 * (4 * 30 + 2))  # 4x4 samples, 2x scale
    assert grid.std() > 0.01  # not blank
    with open(directory / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 2
    for row in rows:
        assert all(math.isfinite(float(row[k])) for k in ("d_loss", "g_loss", "d_accuracy"))
        assert 0.0 < float(row["sample_confidence"]) <= 1.0
        assert 0.0 <= float(row["sample_class_entropy"]) <= math.log(10) + 1e-9
        assert 0.0 < float(row["sample_confidence_raw"]) <= 1.0  # the non-averaged weights
    report = gan_run.metrics["gan"]
    assert report["samples"]["count"] == 50 and sum(report["samples"]["class_histogram"]) == 50
    assert report["real_test_images"]["count"] == 64
    assert set(gan_run.metrics["test"]) == {"d_loss", "g_loss", "d_accuracy"}
    assert (directory / "scorer.keras").is_file() and report["scorer"] == "scorer.keras"


def test_the_saved_gan_loads_safely_with_both_optimizers(gan_run):
    from kplug_gan.gan_model import GAN

    from kplug.training.models import load_model

    loaded = load_model(gan_run.directory / "model.keras")  # safe_mode=True, compiled
    assert isinstance(loaded, GAN) and loaded.latent_dim == 100
    assert loaded.d_optimizer is not loaded.g_optimizer
    assert float(loaded.d_optimizer.learning_rate) == pytest.approx(2e-4)
    assert float(loaded.g_optimizer.beta_1) == pytest.approx(0.5)
    noise = np.random.default_rng(0).standard_normal((3, 100)).astype("float32")
    images = loaded.generator.predict(noise, verbose=0)
    assert images.shape == (3, 28, 28, 1) and np.abs(images).max() <= 1.0


def test_a_train_step_updates_each_network_with_its_own_optimizer():
    import keras
    from kplug_gan.gan_model import GAN

    generator = keras.Sequential([keras.Input((4,)), keras.layers.Dense(6, activation="tanh"),
                                  keras.layers.Reshape((2, 3, 1))])  # fmt: skip
    discriminator = keras.Sequential([keras.Input((2, 3, 1)), keras.layers.Flatten(),
                                      keras.layers.Dense(1, activation="sigmoid")])  # fmt: skip
    gan = GAN(generator, discriminator)
    gan.compile(d_optimizer=keras.optimizers.SGD(0.1), g_optimizer=keras.optimizers.SGD(0.1))
    before_g = [w.numpy().copy() for w in generator.weights]
    before_d = [w.numpy().copy() for w in discriminator.weights]
    real = np.random.default_rng(0).uniform(-1, 1, (8, 2, 3, 1)).astype("float32")
    logs = gan.train_on_batch(real, return_dict=True)
    assert set(logs) == {"d_loss", "g_loss", "d_accuracy"}
    assert int(gan.d_optimizer.iterations) == 1 and int(gan.g_optimizer.iterations) == 1
    assert all(
        not np.allclose(a, w.numpy()) for a, w in zip(before_g, generator.weights, strict=True)
    )
    assert all(
        not np.allclose(a, w.numpy()) for a, w in zip(before_d, discriminator.weights, strict=True)
    )


def test_the_generator_moving_average_follows_each_step_and_swaps():
    import keras
    from kplug_gan.gan_model import GAN

    generator = keras.Sequential([keras.Input((4,)), keras.layers.Dense(6, activation="tanh"),
                                  keras.layers.Reshape((2, 3, 1))])  # fmt: skip
    discriminator = keras.Sequential([keras.Input((2, 3, 1)), keras.layers.Flatten(),
                                      keras.layers.Dense(1, activation="sigmoid")])  # fmt: skip
    gan = GAN(generator, discriminator, generator_ema=0.75)
    gan.compile(d_optimizer=keras.optimizers.SGD(0.1), g_optimizer=keras.optimizers.SGD(0.1))
    before = [w.numpy().copy() for w in generator.trainable_weights]
    real = np.random.default_rng(0).uniform(-1, 1, (8, 2, 3, 1)).astype("float32")
    gan.train_on_batch(real)
    after = [w.numpy().copy() for w in generator.trainable_weights]
    averages = [a.numpy().copy() for a in gan.ema_weights]
    for b, a, m in zip(before, after, averages, strict=True):
        assert not np.allclose(a, b)
        np.testing.assert_allclose(m, 0.75 * b + 0.25 * a, rtol=1e-5, atol=1e-6)
    gan.swap_ema()
    for w, m in zip(generator.trainable_weights, averages, strict=True):
        np.testing.assert_allclose(w.numpy(), m)
    gan.swap_ema()
    for w, a in zip(generator.trainable_weights, after, strict=True):
        np.testing.assert_allclose(w.numpy(), a)
    assert GAN.from_config(gan.get_config()).generator_ema == 0.75


def test_kplug_sample_draws_a_seeded_grid_from_the_run_directory(gan_run, tmp_path, capsys):
    out = tmp_path / "grid.png"
    args = ["sample", str(gan_run.directory), "-n", "9", "--out", str(out), "--score"]
    assert main(args) == 0
    printed = capsys.readouterr().out.splitlines()
    assert printed[-1] == str(out) and printed[0].startswith("confidence=")
    from matplotlib import image

    assert image.imread(out).shape[:2] == (2 * (3 * 30 + 2), 2 * (3 * 30 + 2))
    first = out.read_bytes()
    assert main([*args, "--force"]) == 0
    assert out.read_bytes() == first  # same seed, same samples
    assert main([*args, "--force", "--seed", "1"]) == 0
    assert out.read_bytes() != first


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["-n", "0"], "-n must be between 1 and 4096"),
        (["-n", "-3"], "-n must be between 1 and 4096"),
        (["--out", "{tmp}/grid.jpg"], "give a file name ending .png"),
        (["--out", "{tmp}/missing/grid.png"], "does not exist"),
        (["--out", "{tmp}/taken.png"], "exists; pass --force"),
    ],
)
def test_kplug_sample_bad_input_exits_2(gan_run, tmp_path, capsys, extra, message):
    (tmp_path / "taken.png").write_bytes(b"keep me")
    args = [a.replace("{tmp}", str(tmp_path)) for a in extra]
    if "--out" not in args:
        args += ["--out", str(tmp_path / "grid.png")]
    assert main(["sample", str(gan_run.directory), *args]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert (tmp_path / "taken.png").read_bytes() == b"keep me"
    assert not (tmp_path / "grid.png").exists()


def test_kplug_sample_refuses_a_run_that_is_not_a_gan(classifier_run, tmp_path, capsys):
    out = tmp_path / "grid.png"
    assert main(["sample", str(classifier_run.directory), "--out", str(out)]) == 2
    assert "'classification' run" in capsys.readouterr().err
    assert main(["sample", str(tmp_path / "nowhere"), "--out", str(out)]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert not out.exists()


def test_kplug_sample_refuses_a_scorer_for_other_images(gan_run, classifier_run, tmp_path, capsys):
    out = tmp_path / "grid.png"
    args = ["sample", str(gan_run.directory), "--out", str(out), "--score",
            "--scorer", str(classifier_run.directory)]  # fmt: skip
    assert main(args) == 2
    assert "reads inputs of shape (8, 8, 1)" in capsys.readouterr().err
    assert not out.exists()


def test_a_classifier_run_scores_the_samples_and_a_mismatched_one_is_refused(
    classifier_run, tmp_path
):
    digits_gan = {
        "data": {"name": "digits", "batch_size": 16},
        "model": {"name": "dcgan", "generator_filters": [16, 8], "discriminator_filters": [8]},
        "objective": {"name": "adversarial", "scorer": str(classifier_run.directory),
                      "grid_samples": 4},
    }  # fmt: skip
    result = testing.smoke_run(digits_gan, tmp_path / "runs")
    assert result.metrics["gan"]["scorer"] == str(classifier_run.directory)
    assert not (result.directory / "scorer.keras").exists()  # none trained
    assert (result.directory / "samples" / "epoch_001.png").is_file()
    mnist_gan = {**GAN_MNIST, "objective": {"name": "adversarial",
                                            "scorer": str(classifier_run.directory)}}  # fmt: skip
    with pytest.raises(kplug.KplugError, match=r"reads inputs of shape \(8, 8, 1\)"):
        testing.smoke_run(mnist_gan, tmp_path / "runs")


@pytest.mark.parametrize(
    ("model", "objective", "message"),
    [
        ({"name": "cnn", "filters": [8]}, "adversarial", "needs a GAN architecture"),
        ({"name": "gan"}, "classification", "set objective: {name: adversarial}"),
        ({"name": "gan"}, "adversarial", "set model.padding: same"),
        ({"name": "dcgan", "generator_filters": [8, 8, 8, 8]}, "adversarial", "multiples of 16"),
    ],
)
def test_mismatched_components_exit_2(write, tmp_path, capsys, model, objective, message):
    import yaml

    recipe = {"name": "bad", "data": {"name": "digits"}, "model": model,
              "objective": {"name": objective}, "train": {"epochs": 1}}  # fmt: skip
    path = write("bad.yaml", yaml.safe_dump(recipe))
    assert main(["run", str(path), "--runs-dir", str(tmp_path / "runs")]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_bad_objective_options_are_refused_at_validation(write):
    path = write("r.yaml", "name: r\ndata: {name: mnist}\nmodel: {name: gan}\n"
                           "objective: {name: adversarial, label_smoothing: 0.7}\n")  # fmt: skip
    testing.assert_user_error(testing.cli("validate", str(path)), "objective.label_smoothing")


@pytest.mark.parametrize("name", ["gan", "dcgan"])
def test_estimates_match_the_built_parameter_counts(name):
    from kplug_gan.dcgan import DCGANConfig, build_dcgan
    from kplug_gan.gan import ADVERSARIAL_STATE, GANConfig, build_gan

    build, config = (build_gan, GANConfig()) if name == "gan" else (build_dcgan, DCGANConfig())
    for shape in ((28, 28, 1), (32, 32, 3)):
        spec = kplug.DataSpec(input_shape=shape, num_classes=10)
        ctx = kplug.RunContext(recipe=None, registry=None, data=kplug.Data(None, spec=spec))
        ctx.state[ADVERSARIAL_STATE] = True
        networks = build(config, ctx)
        estimate = testing.check_estimate("architecture", name, config.model_dump(),
                                          {"input_shape": list(shape)})  # fmt: skip
        assert estimate["generator_parameters"] == networks["generator"].count_params()
        assert estimate["discriminator_parameters"] == networks["discriminator"].count_params()
        assert networks["generator"].outputs[0].shape[1:] == shape


def test_class_scores_and_grid_tiling():
    uniform = np.eye(10)[np.arange(100) % 10] * 0.9 + 0.01
    scores = class_scores(uniform)
    assert scores["confidence"] == pytest.approx(0.91)
    assert scores["class_entropy"] == pytest.approx(math.log(10))
    collapsed = class_scores(np.tile([0.5, 0.3, 0.2], (7, 1)))
    assert collapsed["class_entropy"] == 0.0 and collapsed["class_histogram"] == [7, 0, 0]
    grid = tile(np.zeros((5, 4, 4, 1)), pad=1)
    assert grid.shape == (2 * 5 + 1, 3 * 5 + 1, 1)  # 2 rows of 3 cells for 5 images
    assert grid[1:5, 1:5].max() == 0.0 and grid[0].min() == 1.0 and grid[-5:-1, -5:-1].min() == 1
