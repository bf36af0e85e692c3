"""`pydoc_corpus` and `text_files`: documents, splits, recipe validation and bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest
from kplug_text.pydoc_corpus import pydoc_documents

import kplug
from kplug import testing
from kplug.cli import main
from kplug.context import RunContext
from kplug.plugins import registry

REVIEWS = [
    ("a wonderful film, the actors are great and the story is moving", "pos"),
    ("boring plot and terrible acting, I left early", "neg"),
    ("great music, great fun, I loved every minute", "pos"),
    ("the worst film this year, dull and far too long", "neg"),
] * 6


def write_csv(path, rows=REVIEWS, header=("text", "label")):
    lines = [",".join(header)] + [f'"{text}",{label}' for text, label in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def load(data: dict) -> kplug.Data:
    recipe = testing.recipe({"data": data, "model": {"name": "rnn"},
                             "objective": {"name": "classification"}})  # fmt: skip
    ctx = RunContext(recipe, registry())
    return ctx.build(recipe.data)


def test_pydoc_documents_cover_the_topics_in_each_unit():
    topics, sections, paragraphs = (pydoc_documents(u) for u in ("topic", "section", "paragraph"))
    assert len(topics) == 79
    assert len(topics) < len(sections) < len(paragraphs)
    assert sum(map(len, topics)) > 450_000
    assert sections[0].startswith(topics[0][:30])


def test_pydoc_split_is_by_document_seeded_and_disjoint():
    data = {"name": "pydoc_corpus", "tokenizer": {"name": "char"}}
    first, again = load(data), load(data)
    other = load({**data, "split_seed": 1})
    sizes = {s: len(getattr(first, s)[0]) for s in ("train", "validation", "test")}
    assert sizes["validation"] == sizes["test"] == round(0.1 * sum(sizes.values()))
    assert first.spec.extras["text_form"] == "ragged" and first.train[1] is None
    as_text = {s: {first.spec.extras["tokenizer"].decode(ids) for ids in getattr(first, s)[0]}
               for s in ("train", "validation", "test")}  # fmt: skip
    assert not as_text["train"] & as_text["validation"]
    assert not as_text["train"] & as_text["test"]
    assert all(np.array_equal(a, b) for a, b in zip(first.test[0], again.test[0], strict=True))
    assert not all(np.array_equal(a, b) for a, b in zip(first.test[0], other.test[0],
                                                         strict=False))  # fmt: skip


def test_text_files_csv_with_labels_gives_padded_sequences_and_classes(tmp_path):
    path = write_csv(tmp_path / "reviews.csv")
    data = load({"name": "text_files", "path": str(path), "label_column": "label",
                 "tokenizer": {"name": "char"}, "sequence_length": 32})  # fmt: skip
    assert data.spec.class_names == ["neg", "pos"]
    x, y = data.train
    assert x.shape[1] == 32 and x.dtype == np.int32 and set(y) <= {0, 1}
    assert data.report["documents"]["input"] == len(REVIEWS)


def test_text_files_reads_jsonl_txt_folders_and_globs(tmp_path):
    (tmp_path / "a.jsonl").write_text(
        "\n".join(json.dumps({"body": t}) for t, _ in REVIEWS[:4]) + "\n", encoding="utf-8"
    )
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.txt").write_text("one line\nanother line\n\n", encoding="utf-8")
    whole = {"validation_fraction": 0, "test_fraction": 0}
    folder = load({"name": "text_files", "path": str(tmp_path), "text_column": "body",
                   "txt_document": "line", **whole})  # fmt: skip
    texts = list(folder.train[0])
    assert folder.spec.input_dtype == "string"
    assert texts == [t for t, _ in REVIEWS[:4]] + ["one line", "another line"]
    glob = load({"name": "text_files", "path": str(tmp_path / "**" / "*.txt"),
                 "validation_fraction": 0, "test_fraction": 0})  # fmt: skip
    assert list(glob.train[0]) == ["one line\nanother line\n\n"]


def data_recipe(tmp_path, data: str) -> str:
    path = tmp_path / "r.yaml"
    path.write_text(
        f"name: bad\ndata: {data}\nmodel: {{name: rnn}}\nobjective: {{name: classification}}\n",
        encoding="utf-8",
    )
    return str(path)


def test_non_utf8_file_is_a_user_error(tmp_path, capsys):
    path = tmp_path / "latin.txt"
    path.write_bytes("caf\xe9 au lait".encode("latin-1"))
    recipe = data_recipe(tmp_path, f"{{name: text_files, path: {path}}}")
    assert main(["data", recipe]) == 2
    err = capsys.readouterr().err
    assert "not valid utf-8 text (byte 3" in err and "iconv" in err


def test_missing_label_column_is_a_user_error(tmp_path, capsys):
    path = write_csv(tmp_path / "r.csv", header=("text", "sentiment"))
    recipe = data_recipe(tmp_path, f"{{name: text_files, path: {path}, label_column: label}}")
    assert main(["data", recipe]) == 2
    err = capsys.readouterr().err
    assert "r.csv:2: no label_column 'label'" in err and "text, sentiment" in err


def test_empty_corpus_after_cleaning_is_a_user_error_in_a_real_process(tmp_path):
    path = write_csv(tmp_path / "r.csv")
    recipe = data_recipe(
        tmp_path,
        f"{{name: text_files, path: {path}, clean: [{{name: length_filter, min_words: 500}}]}}",
    )
    testing.assert_user_error(
        testing.cli("data", recipe), "corpus is empty after cleaning", "length_filter"
    )


def test_vocab_size_larger_than_the_corpus_is_a_user_error(tmp_path, capsys):
    path = write_csv(tmp_path / "r.csv")
    recipe = data_recipe(
        tmp_path, f"{{name: text_files, path: {path}, tokenizer: {{name: bpe, vocab_size: 4000}}}}"
    )
    assert main(["data", recipe]) == 2
    assert "vocab_size 4000 is larger than the cleaned training corpus" in capsys.readouterr().err


def test_nested_cleaners_and_tokenizer_are_validated_with_file_and_line(tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text(
        "name: nested\n"
        "data:\n"
        "  name: pydoc_corpus\n"
        "  clean:\n"
        "    - strip_html\n"
        "    - {name: minhash_dedup, threshold: 2}\n"
        "    - {name: strip_htm}\n"
        "  tokenizer: {name: wordpiece, vocab_sise: 10}\n"
        "model: {name: rnn}\n"
        "objective: {name: causal_lm}\n",
        encoding="utf-8",
    )
    with pytest.raises(kplug.RecipeError) as error:
        kplug.load_recipe(recipe)
    problems = error.value.problems
    assert len(problems) == 3, problems
    assert f"{recipe}:6: data.clean.1.threshold:" in problems[0]
    assert f"{recipe}:7: data.clean.2.name: unknown cleaner 'strip_htm'" in problems[1]
    assert "did you mean 'strip_html'" in problems[1]
    assert f"{recipe}:8: data.tokenizer.vocab_sise:" in problems[2]
    assert "did you mean 'vocab_size'" in problems[2]


def test_resolved_recipe_fills_in_nested_defaults():
    data = {"name": "pydoc_corpus", "clean": ["exact_dedup"], "tokenizer": "char"}
    recipe = testing.recipe(
        {"data": data, "model": {"name": "rnn"}, "objective": {"name": "causal_lm"}}
    )
    data = recipe.resolved()["data"]
    assert data["clean"] == [{"name": "exact_dedup", "normalize": True}]
    assert data["tokenizer"]["name"] == "char" and data["tokenizer"]["pad_token"] == "<pad>"
    assert testing.recipe(recipe.resolved()).resolved() == recipe.resolved()


def test_kplug_data_prints_the_cleaning_table(tmp_path, capsys):
    path = write_csv(tmp_path / "r.csv", rows=REVIEWS[:4] * 2 + [("<b>bold</b> &amp; x", "pos")])
    recipe = data_recipe(
        tmp_path,
        f"{{name: text_files, path: {path}, label_column: label, "
        "clean: [strip_html, exact_dedup], tokenizer: char}",
    )
    assert main(["data", recipe]) == 0
    out = capsys.readouterr().out
    lines = {line.split()[0]: line.split() for line in out.splitlines() if line.strip()}
    # step, documents in, removed, characters removed, out, characters out, seconds
    assert lines["strip_html"][1:4] == ["9", "0", str(len("<b></b>") + len("amp;"))]
    assert lines["exact_dedup"][1:3] == ["9", "4"]
    assert "tokenizer:" in out
