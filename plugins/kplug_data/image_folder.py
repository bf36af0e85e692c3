"""`image_folder`: images in one folder per class, read by
`keras.utils.image_dataset_from_directory` into a cached `tf.data` pipeline.

```
path/
  cat/  001.jpg  002.png ...
  dog/  001.jpg ...
```
Before anything is decoded, every class folder is checked: it must hold at least one
image, only image files (.bmp .gif .jpeg .jpg .png), and each must start like one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, PositiveInt

import kplug

FORMATS = (".bmp", ".gif", ".jpeg", ".jpg", ".png")
# The first bytes of each format (what the decoder needs to recognize it).
SIGNATURES = {
    ".png": (b"\x89PNG\r\n\x1a\n",),
    ".jpg": (b"\xff\xd8\xff",),
    ".jpeg": (b"\xff\xd8\xff",),
    ".gif": (b"GIF87a", b"GIF89a"),
    ".bmp": (b"BM",),
}
CHANNELS = {"grayscale": 1, "rgb": 3, "rgba": 4}


class ImageFolderConfig(kplug.Config):
    path: str = Field(description="a folder with one subfolder of images per class")
    test_path: str | None = Field(
        None, description="a folder of the same classes for the test split; null: hold out "
        "test_fraction of `path`"
    )  # fmt: skip
    test_fraction: Annotated[float, Field(ge=0.0, lt=1.0)] = Field(
        0.2, description="fraction of `path` held out for testing (without test_path)"
    )
    split_seed: int = Field(0, description="seed of the file order and the held-out test split")
    image_size: Annotated[list[PositiveInt], Field(min_length=2, max_length=2)] = Field(
        [64, 64], description="[height, width] every image is resized to"
    )
    color_mode: Literal["grayscale", "rgb", "rgba"] = "rgb"
    crop_to_aspect_ratio: bool = Field(False, description="crop instead of distorting")
    normalize: bool = Field(True, description="scale pixels from 0..255 to 0..1")
    cache: bool | str = Field(
        True, description="true: keep decoded images in memory after the first epoch; a "
        "path: cache them in that file; false: decode every epoch"
    )  # fmt: skip
    ignore_other_files: bool = Field(
        False, description="skip files that are not images instead of refusing the folder"
    )


def class_folders(path: Path, what: str, ignore_other_files: bool) -> dict[str, list[Path]]:
    """`{class name: image files}` of a class-per-folder directory, checked.

    Raises:
        kplug.DataError: a missing folder, no class folders, an empty class folder, a file
            that is not an image.
    """
    if not path.exists():
        raise kplug.DataError(
            f"{what}: the image folder {path} does not exist (cwd {Path.cwd()}); give a folder "
            "with one subfolder of images per class."
        )
    if not path.is_dir():
        raise kplug.DataError(f"{what}: {path} is a file; give a folder of class folders.")
    classes = sorted(p for p in path.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not classes:
        raise kplug.DataError(
            f"{what}: {path} has no class folders; put the images of each class in a "
            f"subfolder named after it ({path}/cat/1.jpg, {path}/dog/1.jpg)."
        )
    out: dict[str, list[Path]] = {}
    for folder in classes:
        files = sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.startswith("."))
        images = [p for p in files if p.suffix.lower() in FORMATS]
        others = [p for p in files if p.suffix.lower() not in FORMATS]
        if others and not ignore_other_files:
            raise kplug.DataError(
                f"{what}: {others[0]} is not an image ({len(others)} such file(s) in "
                f"{folder}); image_folder reads {' '.join(FORMATS)}. Remove them, or set "
                "data.ignore_other_files: true to skip them."
            )
        if not images:
            raise kplug.DataError(
                f"{what}: the class folder {folder} holds no images; add some or remove the "
                "folder (every subfolder is a class)."
            )
        for image in images:
            _check_signature(image, what)
        out[folder.name] = images
    return out


def _check_signature(image: Path, what: str) -> None:
    with image.open("rb") as handle:
        head = handle.read(8)
    if not head.startswith(SIGNATURES[image.suffix.lower()]):
        raise kplug.DataError(
            f"{what}: {image} is not a {image.suffix.lower()[1:].upper()} image (it does not "
            "start like one: a truncated download, another format or not an image at all); "
            "remove or replace it."
        )


def load_image_folder(config: ImageFolderConfig, ctx: kplug.RunContext) -> kplug.Data:
    import keras
    import tensorflow as tf

    path = Path(config.path).expanduser()
    train_files = class_folders(path, "data.path", config.ignore_other_files)
    class_names = list(train_files)
    options = {"labels": "inferred", "label_mode": "int", "class_names": class_names,
               "color_mode": config.color_mode, "batch_size": None,
               "image_size": tuple(config.image_size),
               "crop_to_aspect_ratio": config.crop_to_aspect_ratio, "verbose": False}  # fmt: skip
    report: dict = {"source": str(path), "class_names": class_names,
                    "files_per_class": {k: len(v) for k, v in train_files.items()}}  # fmt: skip
    if config.test_path is not None:
        test_path = Path(config.test_path).expanduser()
        test_files = class_folders(test_path, "data.test_path", config.ignore_other_files)
        unknown = sorted(set(test_files) - set(class_names))
        if unknown:
            raise kplug.DataError(
                f"data.test_path: {test_path} has classes that {path} has not: {unknown}."
            )
        train = keras.utils.image_dataset_from_directory(
            path, shuffle=True, seed=config.split_seed, **options
        )
        test = keras.utils.image_dataset_from_directory(test_path, shuffle=False, **options)
        report["test_source"] = str(test_path)
    elif config.test_fraction:
        train, test = keras.utils.image_dataset_from_directory(
            path, shuffle=True, seed=config.split_seed, validation_split=config.test_fraction,
            subset="both", **options,
        )  # fmt: skip
    else:
        train = keras.utils.image_dataset_from_directory(
            path, shuffle=True, seed=config.split_seed, **options
        )
        test = None
    scale = 1.0 / 255.0 if config.normalize else 1.0

    def prepare(dataset, name: str):
        if dataset is None:
            return None
        dataset = dataset.map(lambda x, y: (tf.cast(x, tf.float32) * scale, y),
                              num_parallel_calls=tf.data.AUTOTUNE)  # fmt: skip
        if config.cache is True:
            return dataset.cache()
        if config.cache:
            return dataset.cache(f"{config.cache}.{name}")
        return dataset

    spec = kplug.DataSpec(
        input_shape=(*config.image_size, CHANNELS[config.color_mode]),
        num_classes=len(class_names),
        class_names=class_names,
        extras={"preprocessing": {
            "image_size": list(config.image_size), "color_mode": config.color_mode,
            "resize": "crop_to_aspect_ratio" if config.crop_to_aspect_ratio else "bilinear",
            "scale": scale}},
    )  # fmt: skip
    return kplug.Data(train=prepare(train, "train"), test=prepare(test, "test"), spec=spec,
                      report=report)  # fmt: skip
