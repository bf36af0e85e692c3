"""Prediction inputs of the image and array datasets (hook `prediction_inputs`).

Inputs are image files (.png .jpg .jpeg .bmp .gif), a folder of them, or arrays (.npy
of shape (n, *input_shape) or one example; .csv with one flattened example per row).
Arrays hold raw values as the dataset's source does (MNIST pixels 0..255, digits grey
levels 0..16, synthetic values as they are); images are 0..255 pixels, converted to that
range. Then each dataset's own preprocessing applies: its normalisation, and for images
the run's image size (bilinear resizing, as Keras' image loading does) and colour mode.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

import kplug
from kplug_data.image_folder import CHANNELS, FORMATS

ARRAY_SUFFIXES = (".npy", ".csv")
# The largest raw value of each dataset's source; images (0..255) are scaled to it.
RAW_MAX = {"mnist": 255.0, "digits": 16.0, "image_folder": 255.0}
DATASETS = (*RAW_MAX, "synthetic")


def read_prediction_inputs(
    dataset: str, config: Any, paths: list[Path], texts: list[str], inference: dict[str, Any]
) -> kplug.Data | None:
    if dataset not in DATASETS:
        return None
    shape = tuple(inference["data"]["input_shape"])
    kind = "images or arrays" if dataset in RAW_MAX else "arrays"
    if texts:
        raise kplug.DataError(
            f"this run's model (dataset {dataset}) reads {kind} of shape {list(shape)}, not "
            f"text; give {_accepted(dataset)} instead of --text."
        )
    examples: list[np.ndarray] = []
    names: list[str] = []
    for file in _files(paths, dataset):
        if file.suffix.lower() in ARRAY_SUFFIXES:
            rows = _array_rows(file, shape)
            examples.extend(rows)
            names.extend(f"{file.name}[{i}]" for i in range(len(rows)))
        else:
            examples.append(_image(file, dataset, config, shape))
            names.append(file.name)
    x = np.stack(examples).astype(np.float32) if examples else np.zeros((0, *shape), np.float32)
    if dataset in RAW_MAX and getattr(config, "normalize", False):
        x = x / RAW_MAX[dataset]
    class_names = inference.get("class_names")
    spec = kplug.DataSpec(
        input_shape=shape,
        num_classes=len(class_names) if class_names else None,
        class_names=class_names,
    )
    return kplug.Data(train=(x, None), spec=spec, report={"inputs": names})


def _accepted(dataset: str) -> str:
    if dataset in RAW_MAX:
        return f"image files ({' '.join(FORMATS)}), a folder of them, or .npy/.csv arrays"
    return ".npy or .csv arrays"


def _files(paths: list[Path], dataset: str) -> list[Path]:
    suffixes = (*ARRAY_SUFFIXES, *(FORMATS if dataset in RAW_MAX else ()))
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            found = sorted(
                p
                for p in path.rglob("*")
                if p.is_file() and p.suffix.lower() in suffixes and not p.name.startswith(".")
            )
            if not found:
                raise kplug.DataError(
                    f"{path}: no input files in this folder; dataset "
                    f"{dataset} reads {_accepted(dataset)}."
                )
            files.extend(found)
        elif path.suffix.lower() in suffixes:
            files.append(path)
        else:
            raise kplug.DataError(
                f"{path}: this run's model (dataset {dataset}) cannot read {path.suffix or 'this'}"
                f" files; it reads {_accepted(dataset)}."
            )
    return files


def _array_rows(file: Path, shape: tuple[int, ...]) -> list[np.ndarray]:
    if file.stat().st_size == 0:
        raise kplug.DataError(f"{file} is empty; give at least one example.")
    try:
        if file.suffix.lower() == ".npy":
            array = np.load(file, allow_pickle=False)
        else:
            array = np.loadtxt(file, delimiter=",", dtype=np.float32, ndmin=2)
    except (ValueError, EOFError, OSError) as error:
        raise kplug.DataError(f"{file}: not a readable numeric array ({error}).") from None
    if array.size == 0:
        raise kplug.DataError(f"{file} is empty; give at least one example.")
    size = int(np.prod(shape))
    if file.suffix.lower() == ".csv":
        if array.shape[1] != size:
            raise kplug.DataError(
                f"{file}: rows have {array.shape[1]} values; this model takes {size} per "
                f"example (shape {list(shape)}, flattened), without a label column."
            )
        return list(array.reshape(-1, *shape))
    if tuple(array.shape) == shape:
        return [array]
    if tuple(array.shape[1:]) != shape:
        problem = (
            "the wrong channel count" if array.shape[1:-1] == shape[:-1] else "the wrong shape"
        )
        raise kplug.DataError(
            f"{file}: arrays of shape {list(array.shape)} have {problem}; this model takes "
            f"examples of shape {list(shape)} ({shape[-1]} channel(s)): give (n, "
            f"{', '.join(map(str, shape))}) or one example."
        )
    return list(array)


def _image(file: Path, dataset: str, config: Any, shape: tuple[int, ...]) -> np.ndarray:
    import tensorflow as tf

    data = file.read_bytes()
    if not data:
        raise kplug.DataError(f"{file} is empty; give an image file.")
    try:
        decoded = tf.io.decode_image(data, expand_animations=False)
    except (tf.errors.InvalidArgumentError, ValueError):
        raise kplug.DataError(f"{file}: not a readable image ({' '.join(FORMATS)}).") from None
    channels = shape[-1]
    if dataset == "image_folder":
        # As in training: Keras decodes every image into the run's colour mode.
        decoded = tf.io.decode_image(
            data, channels=CHANNELS[config.color_mode], expand_animations=False
        )
    elif decoded.shape[-1] != channels:
        raise kplug.DataError(
            f"{file}: the image has {decoded.shape[-1]} channel(s) but this model takes "
            f"{channels} ({'grayscale' if channels == 1 else 'colour'} images of "
            f"{shape[0]}x{shape[1]}); convert it, e.g. with Pillow: "
            "Image.open(path).convert('L').save(path)."
        )
    image = tf.cast(decoded, tf.float32)
    if tuple(image.shape[:2]) != tuple(shape[:2]):
        if getattr(config, "crop_to_aspect_ratio", False):
            from keras.utils import smart_resize

            image = smart_resize(image, shape[:2])
        else:
            image = tf.image.resize(image, shape[:2], method="bilinear")
    return image.numpy() * (RAW_MAX[dataset] / 255.0)
