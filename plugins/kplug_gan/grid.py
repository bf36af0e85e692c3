"""Sample grids: images tiled into one PNG, written with matplotlib (no display needed)."""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np


def tile(images: np.ndarray, columns: int | None = None, pad: int = 2) -> np.ndarray:
    """Images `(n, height, width, channels)` in [0, 1] as one grid image, `columns` wide
    (default: a square), separated by `pad` pixels of 1.0 (white)."""
    images = np.clip(np.asarray(images, dtype=np.float32), 0.0, 1.0)
    if images.ndim == 3:
        images = images[..., None]
    n, height, width, channels = images.shape
    columns = columns or math.ceil(math.sqrt(n))
    rows = math.ceil(n / columns)
    grid = np.ones(
        (rows * (height + pad) + pad, columns * (width + pad) + pad, channels), np.float32
    )
    for index, image in enumerate(images):
        top = pad + (index // columns) * (height + pad)
        left = pad + (index % columns) * (width + pad)
        grid[top : top + height, left : left + width] = image
    return grid


def write_png(path: str | os.PathLike, images: np.ndarray, *, scale: int = 2) -> Path:
    """Write `images` (in [0, 1]) as a grid PNG, each pixel `scale` x `scale`; the file
    appears whole or not at all (written beside it, then renamed)."""
    from matplotlib import image as mpimg  # pyplot not needed: no figure, no backend

    path = Path(path)
    grid = tile(images)
    grid = np.repeat(np.repeat(grid, scale, axis=0), scale, axis=1)
    temporary = path.with_name(f".{path.name}.tmp")
    try:
        if grid.shape[-1] == 1:
            mpimg.imsave(temporary, grid[..., 0], cmap="gray", vmin=0.0, vmax=1.0, format="png")
        else:
            mpimg.imsave(temporary, grid, format="png")
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
    return path
