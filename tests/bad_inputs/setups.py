"""Files the bad-input cases need that cannot be committed as they are: special files
(FIFOs, link loops), generated images, very large or very deep files, and damaged run
directories. `cases.yaml` names one with `setup:`; it runs in the case's folder (a copy of
this one) before the snapshot of the files."""

from __future__ import annotations

import io
import json
import os
import struct
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np

SETUPS: dict[str, Callable[[Path], None]] = {}


def setup(function: Callable[[Path], None]) -> Callable[[Path], None]:
    SETUPS[function.__name__] = function
    return function


# --- image folders: files/images/{cat,dog}/ with one good PNG each, plus one bad file ---


def _png(width: int = 4, height: int = 4) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(np.full((height, width, 3), 128, np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


def _images(root: Path) -> Path:
    for label in ("cat", "dog"):
        (root / "files" / "images" / label).mkdir(parents=True)
        (root / "files" / "images" / label / "good.png").write_bytes(_png())
    return root / "files" / "images" / "cat"


@setup
def image_truncated_png(root: Path) -> None:
    (_images(root) / "truncated.png").write_bytes(_png(64, 64)[:60])


@setup
def image_corrupt_png(root: Path) -> None:
    data = bytearray(_png(16, 16))
    data[40:60] = b"\x00" * 20  # the signature is fine, the chunks are not
    (_images(root) / "corrupt.png").write_bytes(bytes(data))


@setup
def image_apple_double(root: Path) -> None:
    # macOS metadata beside a copied image: Keras lists it, it is not a PNG.
    (_images(root) / "._good.png").write_bytes(b"\x00\x05\x16\x07" + b"\x00" * 60)


@setup
def image_link_loop(root: Path) -> None:
    folder = _images(root)
    os.symlink("b.png", folder / "a.png")
    os.symlink("a.png", folder / "b.png")


@setup
def image_broken_link(root: Path) -> None:
    os.symlink("no_such_file.png", _images(root) / "gone.png")


@setup
def image_fifo(root: Path) -> None:
    os.mkfifo(_images(root) / "pipe.png")  # opening it would wait for a writer forever


@setup
def image_huge(root: Path) -> None:
    # A valid PNG header that claims 20000 x 20000 pixels (a decompression bomb).
    header = struct.pack(">IIBBBBB", 20000, 20000, 8, 2, 0, 0, 0)
    chunk = b"IHDR" + header
    ihdr = struct.pack(">I", len(header)) + chunk + struct.pack(">I", zlib.crc32(chunk))
    idat_data = zlib.compress(b"\x00" * 64)
    idat = (struct.pack(">I", len(idat_data)) + b"IDAT" + idat_data
            + struct.pack(">I", zlib.crc32(b"IDAT" + idat_data)))  # fmt: skip
    iend = struct.pack(">I", 0) + b"IEND" + struct.pack(">I", zlib.crc32(b"IEND"))
    (_images(root) / "bomb.png").write_bytes(b"\x89PNG\r\n\x1a\n" + ihdr + idat + iend)


@setup
def image_png_named_jpg(root: Path) -> None:
    (_images(root) / "photo.jpg").write_bytes(_png())


@setup
def image_empty_file(root: Path) -> None:
    (_images(root) / "empty.png").write_bytes(b"")


@setup
def image_truncated_gif(root: Path) -> None:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(np.zeros((32, 32), np.uint8)).save(buffer, format="GIF")
    (_images(root) / "cut.gif").write_bytes(buffer.getvalue()[:30])


# --- recipes too large, too many files, too deep ----------------------------------------


@setup
def extends_diamond(root: Path) -> None:
    # Each level extends the one below twice: 2**22 loads if each file is read per edge.
    folder = root / "recipes"
    (folder / "level_0.yaml").write_text((folder / "good.yaml").read_text()
                                         + "optimizer: {learning_rate: -1}\n")  # fmt: skip
    for level in range(1, 23):
        below = f"level_{level - 1}.yaml"
        (folder / f"level_{level}.yaml").write_text(f"extends: [{below}, {below}]\n")


@setup
def extends_many_files(root: Path) -> None:
    folder = root / "recipes"
    (folder / "chain_0.yaml").write_text((folder / "good.yaml").read_text())
    for n in range(1, 80):
        (folder / f"chain_{n}.yaml").write_text(f"extends: chain_{n - 1}.yaml\n")


@setup
def recipe_too_large(root: Path) -> None:
    text = (root / "recipes" / "good.yaml").read_text()
    padding = "".join(f"# padding line {n:08d} of a recipe far larger than any page\n"
                      for n in range(40_000))  # fmt: skip
    (root / "recipes" / "large.yaml").write_text(text + padding)


@setup
def recipe_deep_block_mapping(root: Path) -> None:
    lines = [f"{' ' * n}k{n}:" for n in range(1200)]
    (root / "recipes" / "deep_block.yaml").write_text("name: deep\n" + "\n".join(lines) + " 1\n")


# --- data files -----------------------------------------------------------------------


@setup
def csv_huge_field(root: Path) -> None:
    field = "x" * (17 << 20)  # beyond text_files' 16 MiB field limit
    (root / "files" / "huge_field.csv").write_text(f"text,label\n{field},pos\nfine,neg\n")


@setup
def jsonl_deep_record(root: Path) -> None:
    deep = '{"a": ' * 100_000 + "1" + "}" * 100_000
    (root / "files" / "deep.jsonl").write_text('{"text": "fine", "label": "a"}\n' + deep + "\n")


@setup
def data_path_fifo(root: Path) -> None:
    os.mkfifo(root / "files" / "pipe.csv")  # reading it would wait for a writer forever


# --- damaged run directories ----------------------------------------------------------


def _run(root: Path, *, objective: str = "classification") -> Path:
    """files/run: a run directory as `kplug run` leaves it after one checkpoint."""
    from kplug.training import checkpoints

    run = root / "files" / "run"
    run.mkdir(parents=True)
    from kplug import load_recipe

    recipe = load_recipe(root / "recipes" / "good.yaml").to_yaml()
    assert "objective:\n  name: classification\n" in recipe
    if objective != "classification":
        section = f"objective:\n  name: {objective}\n  sequence_length: 8\n"
        recipe = recipe.replace("objective:\n  name: classification\n", section)
    (run / "recipe.resolved.yaml").write_text(recipe)
    (run / "manifest.json").write_text(json.dumps({"name": "good", "status": "interrupted"}))
    meta = {"epoch": 0, "step_in_epoch": 1, "global_step": 1, "steps_per_epoch": 2,
            "history": {}, "variables": {"model": [], "optimizer": [], "metrics": []},
            "rng": {"numpy": ["MT19937", 0, 0, 0.0], "python": [3, [0], None]}}  # fmt: skip
    checkpoints.write_checkpoint(run, {"rng/numpy_keys": np.arange(3)}, meta, keep=2)
    return run


@setup
def run_manifest_not_json(root: Path) -> None:
    (_run(root) / "manifest.json").write_text('{"name": "good", "stat')


@setup
def run_manifest_a_list(root: Path) -> None:
    (_run(root) / "manifest.json").write_text("[1, 2]")


@setup
def run_manifest_binary(root: Path) -> None:
    (_run(root) / "manifest.json").write_bytes(b"\xff\xfe\x00junk")


@setup
def run_manifest_a_folder(root: Path) -> None:
    manifest = _run(root) / "manifest.json"
    manifest.unlink()
    manifest.mkdir()


@setup
def run_checkpoint_edited(root: Path) -> None:
    meta = _run(root) / "checkpoints" / "step-000000001.json"
    meta.write_text(meta.read_text().replace('"epoch": 0', '"epoch": 1'))


@setup
def run_without_recipe(root: Path) -> None:
    (_run(root) / "recipe.resolved.yaml").unlink()


@setup
def run_recipe_a_list(root: Path) -> None:
    (_run(root) / "recipe.resolved.yaml").write_text("- 1\n- 2\n")


@setup
def run_plain(root: Path) -> None:
    _run(root)


def _language_model_run(root: Path, metadata: object, vocabulary: bool = True) -> Path:
    """files/run as a causal_lm run with a model file, its tokenizer folder damaged."""
    run = _run(root, objective="causal_lm")
    (run / "model.keras").write_bytes(b"not read: the tokenizer fails first")
    folder = run / "tokenizer"
    folder.mkdir()
    if vocabulary:
        (folder / "vocab.txt").write_text("a\nb\n")
    text = metadata if isinstance(metadata, str) else json.dumps(metadata)
    (folder / "kplug_tokenizer.json").write_text(text)
    return run


@setup
def tokenizer_path_escapes(root: Path) -> None:
    (root / "secret.txt").write_text("a\nb\n")
    _language_model_run(root, {"name": "char", "config": {}, "file": "../../../secret.txt"})


@setup
def tokenizer_link_escapes(root: Path) -> None:
    (root / "secret.txt").write_text("a\nb\n")
    run = _language_model_run(root, {"name": "char", "config": {}, "file": "link.txt"})
    os.symlink(root / "secret.txt", run / "tokenizer" / "link.txt")


@setup
def tokenizer_absolute_path(root: Path) -> None:
    _language_model_run(root, {"name": "char", "config": {}, "file": "/etc/hostname"})


@setup
def tokenizer_not_json(root: Path) -> None:
    _language_model_run(root, '{"name": "char", ')


@setup
def tokenizer_unknown_name(root: Path) -> None:
    _language_model_run(root, {"name": "no_such_tokenizer", "config": {}, "file": "vocab.txt"})


@setup
def tokenizer_missing_vocabulary(root: Path) -> None:
    _language_model_run(root, {"name": "char", "config": {}, "file": "vocab.txt"},
                        vocabulary=False)  # fmt: skip


@setup
def tokenizer_config_not_object(root: Path) -> None:
    _language_model_run(root, {"name": "char", "config": [1], "file": "vocab.txt"})
