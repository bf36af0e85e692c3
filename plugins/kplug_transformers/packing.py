"""Token streams to encoder inputs: segments, sentence pairs and `[CLS] A [SEP] B [SEP]`
packing (NumPy), shared by the `mlm`, `nsp`, `mlm_nsp` and classification objectives."""

from __future__ import annotations

from typing import Any

import numpy as np
from kplug_text.corpus import require_single_texts

import kplug


def special_id(tokenizer: Any, role: str, objective: str) -> int:
    """The id of `[CLS]`, `[SEP]` (the tokenizer's end token) or `[MASK]`."""
    ids = tokenizer.special_ids
    key = "end" if role == "[SEP]" else role
    if key not in ids:
        raise kplug.DataError(
            f"{objective} needs a {role} token, which this tokenizer lacks; use "
            "data.tokenizer: {name: wordpiece, ...} (it has [CLS], [SEP] and [MASK]), "
            "{name: pretrained_wordpiece, source: <preset>}, or bpe / unigram with "
            "extra_tokens: ['[CLS]', '[MASK]'] (their end token is the [SEP])."
        )
    return int(ids[key])


def tokenized_documents(data: kplug.Data, objective: str) -> None:
    """Refuse data that is not one tokenized text per document (sentence pairs too)."""
    require_single_texts(data.spec, objective, "{name: wordpiece, vocab_size: 4000}")


def tokenized_pairs(data: kplug.Data, objective: str) -> None:
    """Refuse data that is not tokenized sentence pairs."""
    if data.spec.extras.get("text_form") != "pairs":
        raise kplug.DataError(
            f"{objective} needs sentence pairs with a tokenizer: use a pair dataset "
            "(vader_pairs, or text_files with pair_column) and data.tokenizer; for one text "
            "per document use objective: {name: text_classification}."
        )


def document_tokens(documents: np.ndarray) -> list[np.ndarray]:
    """Each document's token ids, padding (id 0) dropped from padded rows."""
    out = []
    for ids in documents:
        ids = np.asarray(ids, dtype=np.int32)
        out.append(ids[ids != 0] if documents.ndim == 2 else ids)
    return out


def segments(documents: list[np.ndarray], length: int) -> list[list[np.ndarray]]:
    """Each document cut into consecutive segments of at most `length` tokens."""
    return [[ids[i : i + length] for i in range(0, len(ids), length)] for ids in documents]


def pack(
    first: list[np.ndarray], second: list[np.ndarray] | None, length: int, cls: int, sep: int
) -> dict[str, np.ndarray]:
    """`[CLS] A [SEP]` or `[CLS] A [SEP] B [SEP]`, padded to `length`; the longer
    segment is cut first when a pair does not fit. Returns the encoder's three inputs."""
    n = len(first)
    token_ids = np.zeros((n, length), np.int32)
    segment_ids = np.zeros((n, length), np.int32)
    for row in range(n):
        a = first[row]
        b = second[row] if second is not None else np.zeros(0, np.int32)
        room = length - (3 if second is not None else 2)
        while len(a) + len(b) > room:
            if len(a) >= len(b):
                a = a[:-1]
            else:
                b = b[:-1]
        ids = [cls, *a, sep] + ([*b, sep] if second is not None else [])
        token_ids[row, : len(ids)] = ids
        segment_ids[row, len(a) + 2 : len(ids)] = 1
    return {
        "token_ids": token_ids,
        "segment_ids": segment_ids,
        "padding_mask": (token_ids != 0).astype(np.int32),
    }
