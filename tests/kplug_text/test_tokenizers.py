"""Tokenizers round-trip on the pydoc corpus, save and load, and refuse impossible sizes."""

from __future__ import annotations

import pytest
from kplug_text.components import Tokenizer
from kplug_text.pydoc_corpus import pydoc_documents
from kplug_text.tokenizer_files import load_tokenizer, save_tokenizer, train_tokenizer

import kplug
from kplug.context import RunContext
from kplug.plugins import registry


@pytest.fixture(scope="module")
def corpus() -> dict[str, list[str]]:
    docs = pydoc_documents("section")
    return {"train": docs[::3], "held_out": docs[1::3]}


def entry(name: str, **params) -> dict:
    """A resolved tokenizer entry, as a recipe's `tokenizer:` holds it."""
    component = registry().get("tokenizer", name)
    return {"name": name, **component.config.model_validate(params).model_dump()}


def train(name: str, texts: list[str], **params) -> Tokenizer:
    return train_tokenizer(entry(name, **params), texts, RunContext(recipe=None,
                                                                  registry=registry()))  # fmt: skip


# name, parameters, whether decode(encode(text)) is the text itself (else normalized)
TOKENIZERS = [
    ("char", {}, True),
    ("byte", {}, True),
    ("bpe", {"vocab_size": 800}, True),
    ("wordpiece", {"vocab_size": 500, "lowercase": True}, False),
    ("sentencepiece", {"vocab_size": 800}, False),
]


@pytest.mark.parametrize(("name", "params", "exact"), TOKENIZERS, ids=[t[0] for t in TOKENIZERS])
def test_round_trip_on_the_corpus_and_after_save_and_load(name, params, exact, corpus, tmp_path):
    tokenizer = train(name, corpus["train"], **params)
    assert tokenizer.special_ids["pad"] == 0
    texts = corpus["train"]
    encoded = tokenizer.encode_batch(texts)
    for text, ids in zip(texts, encoded, strict=True):
        assert ids and max(ids) < tokenizer.vocabulary_size
        expected = text if exact else tokenizer.normalize(text)
        assert tokenizer.decode(ids) == expected
    if not exact:  # normalization changes text, but keeps its words
        assert any(tokenizer.normalize(t) != t for t in texts)
    if "vocab_size" in params:  # keras-hub's WordPiece learner may land up to 5% short
        assert 0.95 * params["vocab_size"] <= tokenizer.vocabulary_size <= params["vocab_size"]
    save_tokenizer(tokenizer, entry(name, **params), tmp_path / "tokenizer")
    loaded = load_tokenizer(tmp_path)
    assert type(loaded) is type(tokenizer)
    assert loaded.encode_batch(corpus["held_out"][:20]) == tokenizer.encode_batch(
        corpus["held_out"][:20]
    )
    assert loaded.special_ids == tokenizer.special_ids


def test_char_tokenizer_lowercases_and_maps_unseen_characters_to_unknown(corpus):
    tokenizer = train("char", ["abc ABC"], lowercase=True)
    assert tokenizer.vocabulary_size == 3 + 4  # pad, unk, end; a b c space
    ids = tokenizer.encode("Cab?")
    assert ids[-1] == tokenizer.special_ids["unk"]
    assert tokenizer.decode(ids) == "cab\ufffd"


@pytest.mark.parametrize(
    ("name", "params", "most"),
    [
        ("char", {"vocab_size": 50}, r"yields 16 tokens"),  # 13 characters, 3 special
        ("bpe", {"vocab_size": 5000}, "vocab_size 5000 is larger than"),
        ("sentencepiece", {"vocab_size": 5000}, "at most"),
        ("wordpiece", {"vocab_size": 5000}, "vocab_size 5000 is larger than"),
    ],
)
def test_vocab_size_larger_than_the_corpus_supports_is_a_data_error(name, params, most):
    small = ["the cat sat on the mat", "the dog sat on the log"] * 5
    with pytest.raises(kplug.DataError, match=most):
        train(name, small, **params)


def test_a_vocabulary_file_is_loaded_instead_of_training(tmp_path):
    vocabulary = ["[PAD]", "[UNK]", "[SEP]", "[CLS]", "[MASK]", "the", "cat", "sat", "##s"]
    path = tmp_path / "vocab.txt"
    path.write_text("\n".join(vocabulary) + "\n", encoding="utf-8")
    loaded = train("wordpiece", ["never trained on"], vocabulary_file=str(path))
    assert loaded.vocabulary == vocabulary
    assert loaded.encode("the cats sat") == [5, 6, 8, 7]
    assert loaded.decode(loaded.encode("the cats sat dog")) == "the cats sat [UNK]"
    with pytest.raises(kplug.DataError, match="does not exist"):
        train("wordpiece", ["unused"], vocabulary_file=str(tmp_path / "missing.txt"))
