"""The cleaner and tokenizer hooks, exercised by a throwaway third-party plugin."""

from __future__ import annotations

from pathlib import Path

from kplug_text.components import Cleaner, Tokenizer
from kplug_text.tokenizer_files import load_tokenizer

import kplug
from kplug import testing
from kplug.context import RunContext
from kplug.plugins import registry


class Shout(Cleaner):
    def clean(self, texts):
        return [t.upper() if "drop" not in t else None for t in texts]


class WordConfig(kplug.Config):
    vocab_size: int | None = None


class WordTokenizer(Tokenizer):
    """Whitespace words; padding 0, unknown 1, end 2."""

    def __init__(self, config, ctx=None):
        self.special_ids = {"pad": 0, "unk": 1, "end": 2}

    def train(self, texts):
        self._set(sorted({w for t in texts for w in t.split()}))

    def _set(self, words):
        self.words = ["<pad>", "<unk>", "<end>", *words]
        self.vocabulary_size = len(self.words)

    def encode(self, text):
        index = {w: i for i, w in enumerate(self.words)}
        return [index.get(w, 1) for w in text.split()]

    def decode(self, ids):
        return " ".join(self.words[i] for i in ids if i > 2)

    def normalize(self, text):
        return " ".join(text.split())

    def save(self, directory):
        path = Path(directory) / "words.txt"
        path.write_text("\n".join(self.words[3:]))
        return path

    def load(self, path):
        self._set(Path(path).read_text().split("\n"))


class TextPlugin:
    @kplug.hookimpl
    def register_cleaners(self, register):
        register("hook_shout", lambda config, ctx: Shout(), summary="uppercase; drop 'drop'")

    @kplug.hookimpl
    def register_tokenizers(self, register):
        register("hook_words", WordTokenizer, config=WordConfig, summary="whitespace words")


def load(tmp_path, data):
    recipe = testing.recipe({"data": data, "model": {"name": "rnn"},
                             "objective": {"name": "causal_lm"}})  # fmt: skip
    return RunContext(recipe, registry()).build(recipe.data)


def test_hook_register_cleaners(tmp_path):
    (tmp_path / "d.txt").write_text("keep me\ndrop me\nkeep you\n")
    with testing.registered(TextPlugin(), name="text-hooks"):
        assert registry().get("cleaner", "hook_shout").plugin == "text-hooks"
        data = load(tmp_path, {"name": "text_files", "path": str(tmp_path / "d.txt"),
                               "txt_document": "line", "clean": ["hook_shout"],
                               "validation_fraction": 0, "test_fraction": 0})  # fmt: skip
    assert list(data.train[0]) == ["KEEP ME", "KEEP YOU"]
    assert data.report["cleaning"][0]["documents_removed"] == 1


def test_hook_register_tokenizers(tmp_path):
    (tmp_path / "d.txt").write_text("a b c\nb c d\n")
    with testing.registered(TextPlugin(), name="text-hooks"):
        result = testing.smoke_run(
            {"data": {"name": "text_files", "path": str(tmp_path / "d.txt"),
                      "txt_document": "line", "tokenizer": "hook_words",
                      "validation_fraction": 0, "test_fraction": 0, "batch_size": 2},
             "model": {"name": "rnn", "units": 4, "embedding_dim": 4},
             "objective": {"name": "causal_lm", "sequence_length": 2}},
            tmp_path / "runs",
        )  # fmt: skip
        tokenizer = load_tokenizer(result.directory)
    assert isinstance(tokenizer, WordTokenizer)
    assert tokenizer.decode(tokenizer.encode("a d zebra")) == "a d"
