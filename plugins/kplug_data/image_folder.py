"""`image_folder`: images in one folder per class, read by
`keras.utils.image_dataset_from_directory` into a cached `tf.data` pipeline.

```
path/
  cat/  001.jpg  002.png ...
  dog/  001.jpg ...
```
Before the model is built, every class folder is checked: it must hold at least one
image and only image files (.bmp .gif .jpeg .jpg .png), each a regular file (not a FIFO,
a device or a broken or looping link: those are refused without being opened) that
starts like its format, is at most `MAX_PIXELS` pixels and decodes (Pillow, in parallel
threads; a file checked once is remembered by size and mtime in the kplug cache folder).
Hidden files (`._cat.png`, which macOS leaves) are checked too: Keras reads them.
"""

from __future__ import annotations

import json
import os
import stat
from concurrent.futures import ThreadPoolExecutor
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
# Larger images are refused before decoding (TensorFlow's decoder and memory give out).
MAX_PIXELS = 64 * 1024 * 1024


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
        files = _listed_files(folder)
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
        out[folder.name] = images
    check_images([p for images in out.values() for p in images], what)
    return out


def _listed_files(folder: Path) -> list[Path]:
    """The files below `folder` as Keras lists them (os.walk, links to folders not
    followed), hidden ones included; entries that are not folders, links included."""
    found = []
    for root, _, names in os.walk(folder, followlinks=False):
        found.extend(Path(root) / name for name in names)
    return sorted(found)


def check_images(images: list[Path], what: str) -> None:
    """Check every image (see the module doc); a DataError names the first bad one."""
    cache = _CheckCache()
    keys = {image: _regular_file_key(image, what) for image in images}
    todo = [image for image in images if not cache.known(keys[image])]
    with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
        problems = list(pool.map(_image_problem, todo))
    for image, problem in zip(todo, problems, strict=True):
        if problem:
            raise kplug.DataError(f"{what}: {image}: {problem}; remove, resize or replace it.")
    cache.remember([keys[image] for image in todo])


def _regular_file_key(image: Path, what: str) -> str:
    """`path:size:mtime` of a regular file; special files are refused without opening
    them (reading a FIFO would wait for a writer forever)."""
    try:
        info = os.stat(image)
    except OSError as error:
        raise kplug.DataError(
            f"{what}: {image} cannot be read ({error.strerror}: a broken or looping link?); "
            "remove it."
        ) from None
    if not stat.S_ISREG(info.st_mode):
        raise kplug.DataError(
            f"{what}: {image} is not a regular file (a FIFO, socket or device named like an "
            "image); remove it."
        )
    return f"{os.path.realpath(image)}:{info.st_size}:{info.st_mtime_ns}"


def _image_problem(image: Path) -> str:
    """What is wrong with one image file, or ""."""
    from PIL import Image

    try:
        with image.open("rb") as handle:
            head = handle.read(8)
            if not head.startswith(SIGNATURES[image.suffix.lower()]):
                return (
                    f"not a {image.suffix.lower()[1:].upper()} image (it does not start like "
                    "one: a truncated download, another format or not an image at all)"
                )
            handle.seek(0)
            with Image.open(handle) as picture:
                width, height = picture.size
                if width * height > MAX_PIXELS:
                    return (
                        f"{width}x{height} pixels, more than image_folder decodes ({MAX_PIXELS:,})"
                    )
                picture.load()
    except Image.DecompressionBombError:
        return f"too many pixels to decode (more than {MAX_PIXELS:,})"
    except (OSError, SyntaxError, ValueError) as error:
        return f"cannot be decoded ({type(error).__name__}: {error}): corrupt or truncated"
    return ""


class _CheckCache:
    """The images already checked (`path:size:mtime` keys), in the kplug cache folder
    (`KPLUG_CACHE_DIR`, default ~/.cache/kplug); a cache that cannot be read or written
    only costs a new check."""

    def __init__(self):
        root = os.environ.get("KPLUG_CACHE_DIR") or Path.home() / ".cache" / "kplug"
        self.path = Path(root) / "checked_images.json"
        try:
            self.keys = set(json.loads(self.path.read_text("utf-8")))
        except (OSError, ValueError, TypeError):
            self.keys = set()

    def known(self, key: str) -> bool:
        return key in self.keys

    def remember(self, keys: list[str]) -> None:
        if not keys:
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            temporary = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
            temporary.write_text(json.dumps(sorted(self.keys | set(keys))), encoding="utf-8")
            os.replace(temporary, self.path)  # readers see the old list or the new one
        except OSError:
            pass


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
