"""`synthetic_tokens`: documents of random-walk token ids for language-model benchmarks.

Each document walks a fixed random cycle through the vocabulary from a random start, a
fraction `noise` of its tokens replaced by uniform random ones: a language model can learn
it (the next token follows from the current one), so its loss shows training works, and
it needs no corpus, tokenizer training or TensorFlow. The splits have the form of
tokenized text (`text_form: padded`, a tokenizer in the spec), so `causal_lm` trains on it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from kplug_text.components import Tokenizer
from pydantic import Field, NonNegativeInt, PositiveInt

import kplug

# Ids 0-2 are the padding, unknown and end-of-text tokens, as in kplug's tokenizers.
SPECIAL = {"pad": 0, "unk": 1, "end": 2}


class SyntheticTokensConfig(kplug.Config):
    vocabulary_size: int = Field(256, ge=8, description="token ids, the 3 special ones included")
    document_length: PositiveInt = Field(1024, description="tokens per document")
    train_documents: PositiveInt = 256
    validation_documents: NonNegativeInt = 16
    test_documents: NonNegativeInt = 16
    noise: float = Field(0.1, ge=0.0, le=1.0, description="fraction of random tokens")
    data_seed: int = Field(0, description="seed of the generated tokens")


class SyntheticTokenizer(Tokenizer):
    """Names token `i` as `t<i>`: enough to decode what a model generates."""

    def __init__(self, vocabulary_size: int):
        self.vocabulary_size = vocabulary_size
        self.special_ids = dict(SPECIAL)

    def encode(self, text: str) -> list[int]:
        return [int(word[1:]) for word in text.split() if word[1:].isdigit()]

    def decode(self, ids: list[int]) -> str:
        return " ".join(f"t{i}" for i in ids)

    def save(self, directory: Path) -> Path:
        path = Path(directory) / "synthetic_tokens.txt"
        path.write_text(f"{self.vocabulary_size}\n")
        return path

    def load(self, path: Path) -> None:
        self.vocabulary_size = int(Path(path).read_text())


def load_synthetic_tokens(config: SyntheticTokensConfig, ctx: kplug.RunContext) -> kplug.Data:
    rng = np.random.default_rng(config.data_seed)
    ordinary = config.vocabulary_size - len(SPECIAL)
    cycle = rng.permutation(ordinary) + len(SPECIAL)

    def split(documents: int):
        if documents == 0:
            return None
        starts = rng.integers(0, ordinary, size=(documents, 1))
        tokens = cycle[(starts + np.arange(config.document_length)) % ordinary]
        noisy = rng.random(tokens.shape) < config.noise
        tokens[noisy] = rng.integers(len(SPECIAL), config.vocabulary_size, size=noisy.sum())
        return tokens.astype(np.int32), None

    spec = kplug.DataSpec(
        input_shape=(config.document_length,),
        vocabulary_size=config.vocabulary_size,
        input_dtype="int32",
        extras={"text_form": "padded", "tokenizer": SyntheticTokenizer(config.vocabulary_size)},
    )
    return kplug.Data(
        train=split(config.train_documents),
        validation=split(config.validation_documents),
        test=split(config.test_documents),
        spec=spec,
        report={"documents": {"train": config.train_documents,
                              "validation": config.validation_documents,
                              "test": config.test_documents}},
    )  # fmt: skip


def estimate_synthetic_tokens(config: SyntheticTokensConfig, facts: dict) -> dict:
    return {
        "train_examples": config.train_documents,
        "validation_examples": config.validation_documents,
        "test_examples": config.test_documents,
        "input_shape": [config.document_length],
        "vocabulary_size": config.vocabulary_size,
    }
