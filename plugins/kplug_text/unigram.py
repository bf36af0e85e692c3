"""`sentencepiece`: a SentencePiece unigram language-model tokenizer."""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Literal

from pydantic import Field

import kplug
from kplug_text.components import Tokenizer
from kplug_text.vocabulary import TokenizerConfig

TOO_HIGH = re.compile(r"value <= (\d+)")
# SentencePiece skips longer training sentences; documents are fed line by line.
MAX_SENTENCE_BYTES = 1 << 16


class SentencePieceConfig(TokenizerConfig):
    vocab_size: int = Field(2000, gt=0, description="pieces, special tokens included")
    model_type: Literal["unigram", "bpe"] = Field("unigram", description="SentencePiece model")
    character_coverage: float = Field(
        1.0, gt=0.0, le=1.0, description="share of characters the vocabulary must cover"
    )
    end_token: str = "</s>"


class SentencePieceTokenizer(Tokenizer):
    """SentencePiece; `decode(encode(text))` is the text after its NFKC normalization,
    where runs of whitespace (line breaks included) become one space."""

    def __init__(self, config: SentencePieceConfig, ctx: kplug.RunContext | None = None):
        self.config = config
        self.processor = None

    def train(self, texts: list[str]) -> None:
        import sentencepiece as spm

        c = self.config
        lines = (line for text in texts for line in text.splitlines() if line.strip())
        model = io.BytesIO()
        try:
            spm.SentencePieceTrainer.train(
                sentence_iterator=lines,
                model_writer=model,
                vocab_size=c.vocab_size,
                model_type=c.model_type,
                character_coverage=c.character_coverage,
                normalization_rule_name="nmt_nfkc_cf" if c.lowercase else "nmt_nfkc",
                pad_id=0, unk_id=1, eos_id=2, bos_id=-1,
                pad_piece=c.pad_token, unk_piece=c.unk_token, eos_piece=c.end_token,
                user_defined_symbols=c.extra_tokens,
                max_sentence_length=MAX_SENTENCE_BYTES,
                minloglevel=2,
            )  # fmt: skip
        except RuntimeError as error:
            most = TOO_HIGH.search(str(error))
            if most:
                raise kplug.DataError(
                    f"tokenizer 'sentencepiece': vocab_size {c.vocab_size} is larger than the "
                    f"cleaned training corpus supports (at most {most.group(1)}). Lower "
                    "data.tokenizer.vocab_size, or use a larger corpus."
                ) from None
            raise kplug.DataError(f"SentencePiece training failed: {error}") from None
        self._set(model.getvalue())

    def _set(self, model: bytes) -> None:
        import sentencepiece as spm

        self.model = model
        self.processor = spm.SentencePieceProcessor(model_proto=model)
        self.vocabulary_size = self.processor.get_piece_size()
        self.special_ids = {"pad": self.processor.pad_id(), "unk": self.processor.unk_id(),
                            "end": self.processor.eos_id()}  # fmt: skip
        self.special_ids.update(
            {t: self.processor.piece_to_id(t) for t in self.config.extra_tokens}
        )

    def normalize(self, text: str) -> str:
        # SentencePiece writes spaces as U+2581 and adds one before the text; decode
        # turns them back and drops that first one.
        return self.processor.normalize(text).replace("\u2581", " ").removeprefix(" ")

    def encode(self, text: str) -> list[int]:
        return self.processor.encode(text)

    def encode_batch(self, texts: list[str]) -> list[list[int]]:
        return self.processor.encode(texts)

    def decode(self, ids: list[int]) -> str:
        return self.processor.decode([int(i) for i in ids])

    def in_graph(self):
        """The TensorFlow twin of `encode_batch`: keras-hub's `SentencePieceTokenizer`
        (tf-text's SentencePiece op) with the same model proto."""
        from keras_hub.tokenizers import SentencePieceTokenizer as KerasHubSentencePiece

        from kplug_text.graph_tokenizers import KerasHubIds

        return KerasHubIds(KerasHubSentencePiece(proto=self.model, dtype="int32"))

    def save(self, directory: Path) -> Path:
        path = Path(directory) / "sentencepiece.model"
        path.write_bytes(self.model)
        return path

    def load(self, path: Path) -> None:
        try:
            self._set(Path(path).read_bytes())
        except (RuntimeError, OSError) as error:
            raise kplug.DataError(f"{path}: not a SentencePiece model: {error}") from None
