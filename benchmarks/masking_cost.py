"""Milliseconds per example of keras-hub's `MaskedLMMaskGenerator` called on one example at
a time: through the layer (`generator(ids)`, outputs converted to backend tensors), the
layer inside keras-hub's `no_convert_scope` (NumPy outputs), and `generator.call(ids)` in
that scope (what `MaskedExamples` does for streamed mlm batches); and of one call on a
batch of 32. Checks that the per-example ways give the same masks.

    KERAS_BACKEND=tensorflow .venv/bin/python benchmarks/masking_cost.py
    KERAS_BACKEND=jax .venv/bin/python benchmarks/masking_cost.py
"""

from __future__ import annotations

import random
import time

import numpy as np


def main() -> None:
    from keras_hub.layers import MaskedLMMaskGenerator
    from keras_hub.src.utils.tensor_utils import no_convert_scope

    generator = MaskedLMMaskGenerator(
        vocabulary_size=1000, mask_selection_rate=0.15, mask_token_id=4,
        mask_selection_length=15, unselectable_token_ids=[0, 2, 3],
    )  # fmt: skip
    rows = np.random.default_rng(0).integers(10, 1000, (640, 64)).astype(np.int32)
    generator(rows[0])  # warm up
    results = {}
    for name in ("layer call", "layer call, no_convert_scope", "call(), no_convert_scope"):
        masks = []
        start = time.perf_counter()
        for i, row in enumerate(rows):
            random.seed(f"mlm/0/0/{i}")
            if name == "layer call":
                out = generator(row)
            else:
                with no_convert_scope():
                    out = generator(row) if name.startswith("layer") else generator.call(row)
            masks.append(np.asarray(out["token_ids"]))
        results[name] = masks
        print(f"{name}: {(time.perf_counter() - start) / len(rows) * 1000:.3f} ms per example")
    start = time.perf_counter()
    for first in range(0, len(rows), 32):
        generator(rows[first : first + 32])
    print(f"batches of 32, layer call: {(time.perf_counter() - start) / len(rows) * 1000:.3f} "
          "ms per example")  # fmt: skip
    first, *others = results.values()
    same = all(np.array_equal(a, b) for other in others for a, b in zip(first, other, strict=True))
    print(f"same masks every way: {same}")


if __name__ == "__main__":
    main()
