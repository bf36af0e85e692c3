"""The quality figure of generated digits: what an MNIST classifier (the scorer) says.

Two numbers per set of samples, both from the scorer's softmax outputs:
- `confidence`: the mean over samples of the top class probability. Blurry or
  nonsense images get low values; clean digits high ones.
- `class_entropy`: the entropy (nats) of the histogram of predicted classes. A generator
  that collapses to a few digits gets a low value; ln(10) = 2.303 is the most a 10-class
  scorer can give (every digit equally often).

The scorer reads images in [0, 1] (the `mnist` dataset's default scale). It is a
classifier run of kplug (`objective.scorer`: a run directory or `.keras` file, e.g. from
`kplug run recipes/mnist_cnn.yaml`), or, by default, the same network as that recipe's
(`build_scorer`) trained in-process on the same labelled training split.
"""

from __future__ import annotations

from typing import Any

import numpy as np

import kplug


def class_scores(probabilities: np.ndarray) -> dict[str, Any]:
    """`confidence`, `class_entropy` (nats) and `class_histogram` of softmax outputs."""
    probabilities = np.asarray(probabilities, dtype=np.float64)
    classes = probabilities.shape[-1]
    counts = np.bincount(probabilities.argmax(axis=-1), minlength=classes)
    share = counts[counts > 0] / counts.sum()
    return {
        "confidence": float(probabilities.max(axis=-1).mean()),
        "class_entropy": max(0.0, float(-(share * np.log(share)).sum())),
        "class_histogram": counts.tolist(),
    }


def to_unit(images: np.ndarray) -> np.ndarray:
    """Generator output in [-1, 1] (tanh) to pixels in [0, 1]."""
    return np.clip((np.asarray(images, dtype=np.float32) + 1.0) / 2.0, 0.0, 1.0)


def build_scorer(image_shape: tuple[int, ...], num_classes: int) -> Any:
    """The classifier of recipes/mnist_cnn.yaml (the `cnn` architecture's default):
    Conv2D(32, 3x3) - MaxPool - Conv2D(64) - MaxPool - Conv2D(64) - Dense(64) - softmax."""
    import keras
    from keras import layers

    inputs = keras.Input(shape=image_shape, name="image")
    x = layers.Conv2D(32, 3, activation="relu", name="conv1")(inputs)
    x = layers.MaxPooling2D(2, name="pool1")(x)
    x = layers.Conv2D(64, 3, activation="relu", name="conv2")(x)
    x = layers.MaxPooling2D(2, name="pool2")(x)
    x = layers.Conv2D(64, 3, activation="relu", name="conv3")(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dense(64, activation="relu", name="dense1")(x)
    outputs = layers.Dense(num_classes, activation="softmax", dtype="float32", name="probs")(x)
    model = keras.Model(inputs, outputs, name="scorer")
    model.compile(
        optimizer=keras.optimizers.Adam(1e-3),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    return model


def train_scorer(
    train: tuple[np.ndarray, np.ndarray],
    *,
    num_classes: int,
    epochs: int,
    batch_size: int,
    steps_per_epoch: int | None = None,
) -> Any:
    """`build_scorer` fitted on labelled images in [0, 1]."""
    x, y = train
    model = build_scorer(tuple(x.shape[1:]), num_classes)
    model.fit(x, y, epochs=epochs, batch_size=batch_size, steps_per_epoch=steps_per_epoch,
              verbose=0)  # fmt: skip
    return model


def load_scorer(value: str, image_shape: tuple[int, ...], *, trust: bool = False) -> Any:
    """A classifier from a run directory, `runs/<name>` or `.keras` file, checked to read
    images of `image_shape` and give class probabilities."""
    from kplug import load_model, resolve_init_path

    path = resolve_init_path(value, key="objective.scorer")
    model = load_model(path, trust=trust, compile=False)
    wanted = tuple(image_shape)
    given = tuple(model.inputs[0].shape[1:]) if getattr(model, "inputs", None) else None
    outputs = tuple(model.outputs[0].shape[1:]) if getattr(model, "outputs", None) else ()
    if given not in (wanted, wanted[:2] if wanted[-1] == 1 else wanted):
        raise kplug.KplugError(
            f"objective.scorer: {path} reads inputs of shape {given}, but the generator makes "
            f"images of shape {wanted}; give a classifier trained on the same dataset."
        )
    if len(outputs) != 1 or not outputs[0] or outputs[0] < 2:
        raise kplug.KplugError(
            f"objective.scorer: {path} outputs shape {outputs}, not class probabilities; give "
            "a classification run (e.g. kplug run recipes/mnist_cnn.yaml)."
        )
    return model


def score(scorer: Any, images: np.ndarray, batch_size: int = 256) -> dict[str, Any]:
    """`class_scores` of the scorer's predictions for images in [0, 1]."""
    images = np.asarray(images, dtype=np.float32)
    if len(scorer.inputs[0].shape) == 3 and images.ndim == 4:  # a scorer of (28, 28) inputs
        images = images[..., 0]
    outputs = np.asarray(scorer.predict(images, batch_size=batch_size, verbose=0), np.float64)
    if outputs.min() < 0 or not np.allclose(outputs.sum(axis=-1), 1.0, atol=1e-3):
        # A classifier with a linear head (output_activation: linear) gives logits.
        outputs = np.exp(outputs - outputs.max(axis=-1, keepdims=True))
        outputs /= outputs.sum(axis=-1, keepdims=True)
    return class_scores(outputs)
