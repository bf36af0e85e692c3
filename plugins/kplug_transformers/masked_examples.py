"""`MaskedExamples`: BERT's masking of encoder examples, drawn per example index, so a
batch is the same whichever run (or resumed run) asks for it."""

from __future__ import annotations

import contextlib
import random
import threading
from typing import Any

import numpy as np
from kplug_text.token_shards import IndexedExamples

# The generator draws from Python's global `random`, which `mask_example` seeds for one
# example at a time; the input pipeline gathers batches in several threads at once.
_PYTHON_RANDOM = threading.Lock()


class MaskedExamples(IndexedExamples):
    """The examples of `source` (packed windows or sentence pairs) with BERT's masking:
    keras-hub's `MaskedLMMaskGenerator` (selection rate, 80/10/10 mask/random/keep, special
    tokens never selected, at most `selection_length` per example) masks example `i` with
    Python's `random` seeded by `(*seed, i)`, the generator on its pure-Python path.
    Example `i`'s mask depends on nothing else, so streamed batches, a resumed run's and the
    arrays built in memory hold the same masks (static masking: the same every epoch).

    `gather` adds `mask_positions` to the inputs and the targets `mlm` (the original ids at
    those positions, 0 at unused slots, which the loss ignores) to the labels.

    Args:
        source: an object with `gather`, `take`, `__len__` and `output_signature`, whose
            inputs are the encoder's `token_ids`, `segment_ids` and `padding_mask`.
        generator: a `keras_hub.layers.MaskedLMMaskGenerator` with `mask_selection_length`.
        seed: the seed prefix, e.g. (run seed, split number).
    """

    def __init__(self, source: Any, generator: Any, seed: tuple[int, ...]):
        self.source, self.generator, self.seed = source, generator, tuple(seed)
        self.count = len(source)
        self.selection_length = int(generator.mask_selection_length)
        inputs, labels = source.output_signature
        selected = ((self.selection_length,), "int32")
        self.output_signature = ({**inputs, "mask_positions": selected},
                                 {**labels, "mlm": selected})  # fmt: skip

    def take(self, n: int) -> MaskedExamples:
        return MaskedExamples(self.source.take(n), self.generator, self.seed)

    def gather(self, indices: np.ndarray) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        indices = np.asarray(indices, dtype=np.int64)
        x, y = self.source.gather(indices)
        token_ids = np.array(x["token_ids"], dtype=np.int32)
        positions = np.zeros((len(indices), self.selection_length), np.int32)
        targets = np.zeros((len(indices), self.selection_length), np.int32)
        seeds = [(*self.seed, int(index)) for index in indices]
        for row, out in enumerate(mask_examples(self.generator, token_ids, seeds)):
            token_ids[row] = out["token_ids"]
            positions[row] = out["mask_positions"]
            targets[row] = out["mask_ids"]
        return {**x, "token_ids": token_ids, "mask_positions": positions}, {**y, "mlm": targets}


def mask_examples(generator: Any, token_ids: np.ndarray,
                  seeds: list[tuple[int, ...]]) -> list[dict[str, np.ndarray]]:  # fmt: skip
    """`generator` on each row of `token_ids` alone, with Python's `random` seeded by the
    row's seed; the global generator's state is put back after, so the run's own draws are
    undisturbed. A string seed is hashed with SHA-512: the draws do not depend on
    PYTHONHASHSEED. Returns each row's outputs as NumPy arrays.

    `generator.call`, not `generator(...)`: the layer's bookkeeping (name scope, autocast,
    input checks) is about 60 of the 86 microseconds of a one-example call, and a stateless
    preprocessing layer needs none of it (benchmarks/masking_cost.py)."""
    with _PYTHON_RANDOM, _numpy_outputs():
        state = random.getstate()
        outputs = []
        try:
            for ids, seed in zip(token_ids, seeds, strict=True):
                random.seed("mlm/" + "/".join(map(str, seed)))
                out = generator.call(ids)
                outputs.append({key: np.asarray(value) for key, value in out.items()})
        finally:
            random.setstate(state)
    return outputs


def _numpy_outputs() -> Any:
    """keras-hub's scope in which its preprocessing layers answer NumPy arrays rather than
    backend tensors: the same values, several times faster per example (converting four
    small outputs to tensors is most of a call; benchmarks/masking_cost.py). A private
    keras-hub name: without it, the tensors are converted back."""
    try:
        from keras_hub.src.utils.tensor_utils import no_convert_scope
    except ImportError:
        return contextlib.nullcontext()
    return no_convert_scope()
