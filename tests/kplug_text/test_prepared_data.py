"""Streamed preparation into cached token shards: the same tokens as the in-memory path,
parallel equals inline, the cache (reuse, keys, --list/--clear, one preparation per tune
search), and bad input (exit 2 naming the file)."""

from __future__ import annotations

import fcntl
import json
import os
import resource
import subprocess
import sys
from pathlib import Path

import ftfy
import numpy as np
import pytest
from kplug_sequence.causal_lm import CausalLM, CausalLMConfig, token_stream
from kplug_text import preparation
from kplug_text.cleaners import fix_text
from kplug_text.text_files import TextFilesConfig, document_source
from kplug_text.token_shards import PaddedDocuments, TokenDocuments, TokenWindows

import kplug
from kplug import testing
from kplug.cli import main
from kplug.context import RunContext
from kplug.plugins import registry

PYDOC_CLEAN = [
    {"name": "strip_html"}, {"name": "normalize_unicode", "form": "NFKC"},
    {"name": "remove_characters"}, {"name": "collapse_whitespace", "keep_newlines": True},
    {"name": "length_filter", "min_characters": 20},
    {"name": "quality_filter", "min_alphabetic_ratio": 0.5, "max_repeated_line_ratio": 0.5},
    {"name": "exact_dedup"}, {"name": "minhash_dedup", "threshold": 0.8},
]  # fmt: skip
LM_CLEAN = [{"name": "normalize_unicode"}, {"name": "length_filter", "min_characters": 30},
            {"name": "exact_dedup"}, {"name": "minhash_dedup", "threshold": 0.8}]  # fmt: skip


@pytest.fixture
def cache(tmp_path, monkeypatch):
    folder = tmp_path / "cache"
    monkeypatch.setenv("KPLUG_DATA_CACHE", str(folder))
    return folder


def context(data: dict, objective: dict | None = None) -> RunContext:
    recipe = testing.recipe({"data": data, "model": {"name": "rnn"},
                             "objective": objective or {"name": "causal_lm"}})  # fmt: skip
    return RunContext(recipe, registry())


def load(data: dict) -> kplug.Data:
    ctx = context(data)
    return ctx.build(ctx.recipe.data)


def corpus(path: Path, documents: int = 300) -> Path:
    """A JSONL corpus with exact and near duplicates, short records and non-ASCII text."""
    rng = np.random.default_rng(0)
    words = ["the", "a", "model", "data", "token", "stream", "window", "shard", "cache"]
    lines = []
    for i in range(documents):
        text = " ".join(rng.choice(words, size=int(rng.integers(5, 120))))
        if i % 7 == 0:
            text = f"caf\u00c3\u00a9 &amp; \ufb01ne {i}\n" + text  # mojibake, entity, ligature
        lines.append(text)
        if i % 11 == 0:
            lines.append(text)  # exact duplicate
        if i % 13 == 0:
            lines.append(text + " end")  # near duplicate
    path.write_text("".join(json.dumps({"text": t}) + "\n" for t in lines), encoding="utf-8")
    return path


def test_fix_text_equals_ftfy_on_pydoc_and_tricky_lines():
    from pydoc_data.topics import topics

    config = ftfy.TextFixerConfig(normalization="NFKC")
    texts = [*topics.values(), "a &amp; b\n<p>x</p>\n&lt; caf\u00c3\u00a9\n",
             "caf\u00c3\u00a9 &amp;\nplain\n<b>\n&amp;", "x\r\ny\n\x1b[31mred\n", "\u00e9\n\n",
             "", "\n", "plain", "\ufb01 ligature\nok",
             "<a>\nplain\n&amp; caf\u00c3\u00a9"]  # fmt: skip
    for text in texts:
        assert fix_text(ftfy, text, config) == ftfy.fix_text(text, config), repr(text[:80])


def test_pydoc_shards_hold_the_token_stream_of_the_in_memory_encoding(cache):
    """lstm_pydoc and gpt_clm_pydoc train on the same tokens, windows and batches."""
    data = {"name": "pydoc_corpus", "document": "section", "clean": PYDOC_CLEAN,
            "tokenizer": {"name": "char"}}  # fmt: skip
    streamed, in_memory = load(data), load({**data, "stream": False})
    assert streamed.report["prepared"]["reused"] is False
    assert streamed.report["cleaning"] == [
        {**row, "seconds": streamed.report["cleaning"][i]["seconds"]}
        for i, row in enumerate(in_memory.report["cleaning"])
    ]
    end = streamed.spec.extras["tokenizer"].special_ids["end"]
    for split in ("train", "validation", "test"):
        documents, expected = getattr(streamed, split)[0], getattr(in_memory, split)[0]
        assert isinstance(documents, TokenDocuments) and len(documents) == len(expected)
        assert np.array_equal(documents.stream(), token_stream(expected, end))
    objective = CausalLM(CausalLMConfig(sequence_length=100), context(data))
    windows = objective.adapt(streamed, context(data))
    arrays = objective.adapt(in_memory, context(data))
    for split in ("train", "validation", "test"):
        got, want = getattr(windows, split), getattr(arrays, split)
        assert isinstance(got, TokenWindows) and len(got) == len(want[0])
        x, y = got.gather(np.arange(len(got)))
        assert np.array_equal(x, want[0]) and np.array_equal(y, want[1])


def test_parallel_workers_prepare_what_the_in_memory_path_gives(cache, tmp_path):
    path = corpus(tmp_path / "corpus.jsonl")
    data = {"name": "text_files", "path": str(path), "clean": LM_CLEAN,
            "tokenizer": {"name": "bpe", "vocab_size": 300}}  # fmt: skip
    before = preparation.PREPARATIONS["count"]
    parallel = load({**data, "workers": 2})
    in_memory = load({**data, "stream": False})
    rows = parallel.report["cleaning"]
    assert [r["documents_removed"] for r in rows] == [
        r["documents_removed"] for r in in_memory.report["cleaning"]
    ]
    assert rows[2]["documents_removed"] > 0 and rows[3]["documents_removed"] > 0
    assert [{k: v for k, v in r.items() if k != "seconds"} for r in rows] == [
        {k: v for k, v in r.items() if k != "seconds"} for r in in_memory.report["cleaning"]
    ]
    assert parallel.report["tokenizer"]["tokens"] == in_memory.report["tokenizer"]["tokens"]
    for split in ("train", "validation", "test"):
        got, want = getattr(parallel, split)[0], getattr(in_memory, split)[0]
        assert [d.tolist() for d in got] == [d.tolist() for d in want]
    # workers (and stream: true, the default's preparation) do not change the result, so
    # they are not part of the key: reused
    again = load({**data, "workers": 1, "stream": True})
    assert again.report["prepared"]["reused"] is True
    assert again.report["prepared"]["key"] == parallel.report["prepared"]["key"]
    assert preparation.PREPARATIONS["count"] == before + 1


def labelled_corpus(path: Path, documents: int = 200) -> Path:
    """`corpus` with a label (and skipped "-" labels) on every record."""
    corpus(path, documents)
    records = [json.loads(line) for line in path.read_text().splitlines()]
    labels = ["pos", "neg", "neutral", "-"]
    path.write_text("".join(json.dumps({**r, "label": labels[i % 7 % 4]}) + "\n"
                            for i, r in enumerate(records)), encoding="utf-8")  # fmt: skip
    return path


def test_labelled_text_prepares_the_padded_documents_and_labels_of_the_in_memory_path(
    cache, tmp_path
):
    path = labelled_corpus(tmp_path / "labelled.jsonl")
    data = {"name": "text_files", "path": str(path), "label_column": "label",
            "skip_labels": ["-"], "clean": LM_CLEAN, "workers": 2,
            "tokenizer": {"name": "bpe", "vocab_size": 300}}  # fmt: skip
    streamed, in_memory = load({**data, "stream": True}), load(data)
    assert load({**data, "stream": None}).report.get("prepared") is None  # null: in memory
    assert streamed.report["prepared"]["reused"] is False
    assert streamed.report["skipped_labels"] == in_memory.report["skipped_labels"]
    assert streamed.report["skipped_labels"]["-"] > 0
    assert streamed.report["documents"] == in_memory.report["documents"]
    assert in_memory.report["cleaning"][2]["documents_removed"] > 0  # dedup drops labels too
    assert streamed.spec.class_names == in_memory.spec.class_names == ["neg", "neutral", "pos"]
    assert streamed.spec.input_shape == in_memory.spec.input_shape
    assert streamed.spec.extras["text_form"] == "padded"
    for split in ("train", "validation", "test"):
        (x, y), (want_x, want_y) = getattr(streamed, split), getattr(in_memory, split)
        assert isinstance(x, PaddedDocuments) and x.shape == want_x.shape
        assert np.array_equal(np.asarray(x), want_x) and np.array_equal(y, want_y)
        assert np.array_equal(x[[3, 1]], want_x[[3, 1]]) and np.array_equal(x[-1], want_x[-1])
    cut = load({**data, "stream": True, "sequence_length": 7})
    assert cut.spec.input_shape == (7,)
    assert np.array_equal(np.asarray(cut.train[0]), np.asarray(streamed.train[0])[:, :7])


def test_a_label_column_on_txt_files_is_refused_when_streamed(cache, tmp_path):
    (tmp_path / "a.txt").write_text("some text to classify\n")
    data = {"name": "text_files", "path": str(tmp_path / "a.txt"), "label_column": "label",
            "stream": True, "tokenizer": {"name": "char"}}  # fmt: skip
    with pytest.raises(kplug.DataError, match=r"a\.txt: \.txt files have no columns"):
        load(data)
    assert not [p for p in cache.iterdir() if not p.name.startswith(".lock-")]


def test_a_changed_source_file_is_a_new_key_and_list_and_clear_manage_the_cache(
    cache, tmp_path, capsys
):
    path = corpus(tmp_path / "corpus.jsonl", documents=60)
    data = {"name": "text_files", "path": str(path), "tokenizer": {"name": "char"}}
    first = load(data)
    path.write_text(path.read_text() + json.dumps({"text": "one more document"}) + "\n")
    second = load(data)
    assert second.report["prepared"]["reused"] is False
    assert second.report["prepared"]["key"] != first.report["prepared"]["key"]
    assert main(["data", "--list", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert {r["key"] for r in rows} == {first.report["prepared"]["key"],
                                        second.report["prepared"]["key"]}  # fmt: skip
    assert all(r["state"] == "complete" and r["dataset"] == "text_files" for r in rows)
    assert main(["data", "--clear"]) == 0
    assert "removed 2 prepared datasets" in capsys.readouterr().out
    assert not any(cache.iterdir())


TUNE = """\
name: tune-lm
seed: 3
data: {name: pydoc_corpus, document: paragraph, tokenizer: {name: char}, batch_size: 32,
       limit: 2}
model: {name: rnn, units: 8, embedding_dim: 8}
objective: {name: causal_lm, sequence_length: 20}
train: {epochs: 1, steps_per_epoch: 2, validation_steps: 1, verbose: 0, jit_compile: false}
search: {tuner: random, max_trials: 3, space: {optimizer.learning_rate: [0.001, 0.003, 0.01]}}
"""


def test_a_tune_search_of_three_trials_prepares_its_data_once(cache, write, tmp_path):
    before = preparation.PREPARATIONS["count"]
    recipe = write("tune.yaml", TUNE)
    assert main(["tune", str(recipe), "--directory", str(tmp_path / "tune")]) == 0
    trials = json.loads((tmp_path / "tune" / "results.json").read_text())["trials"]
    assert len(trials) == 3
    assert preparation.PREPARATIONS["count"] == before + 1
    reports = [json.loads((Path(t["runs"][0]) / "data_report.json").read_text())
               for t in trials]  # fmt: skip
    assert len({r["prepared"]["key"] for r in reports}) == 1
    assert sum(r["prepared"]["reused"] for r in reports) == 2


def test_two_processes_preparing_the_same_key_prepare_it_once(cache, write, tmp_path, capsys):
    """The second `kplug data` waits on the key's lock, then reuses the first one's work."""
    recipe = lm_recipe(write, corpus(tmp_path / "c.jsonl", documents=40))
    assert main(["data", str(recipe), "--json"]) == 0  # only to learn the key
    key = json.loads(capsys.readouterr().out)["prepared"]["key"]
    fresh = tmp_path / "fresh-cache"
    fresh.mkdir()
    env = {**os.environ, "KPLUG_DATA_CACHE": str(fresh)}
    command = [sys.executable, "-m", "kplug", "data", str(recipe), "--json"]
    with open(fresh / f".lock-{key}", "a+b") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # both processes start while the key is locked
        processes = [subprocess.Popen(command, env=env, stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, text=True)
                     for _ in range(2)]  # fmt: skip
        for process in processes:  # each says it waits before going on
            line = process.stderr.readline()
            while line and "another process is preparing" not in line:
                line = process.stderr.readline()
            assert key in line
        fcntl.flock(lock, fcntl.LOCK_UN)
    reports = []
    for process in processes:
        out, err = process.communicate(timeout=300)
        assert process.returncode == 0, err
        reports.append(json.loads(out)["prepared"])
    assert sorted(r["reused"] for r in reports) == [False, True]
    assert {r["key"] for r in reports} == {key}
    assert sorted(p.name for p in fresh.iterdir()) == sorted([key, f".lock-{key}"])


# ---------------------------------------------------------------------------------------
# Bad input: exit 2 naming the file, nothing left in the cache as if complete
# ---------------------------------------------------------------------------------------

LM_RECIPE = """\
name: lm
data: {{name: text_files, path: {path}, tokenizer: {{name: char}}, clean: {clean}}}
model: {{name: rnn, units: 8, embedding_dim: 8}}
objective: {{name: causal_lm, sequence_length: 20}}
"""


def lm_recipe(write, path: Path, clean: str = "[]") -> Path:
    return write("lm.yaml", LM_RECIPE.format(path=path, clean=clean))


def complete_entries(cache: Path) -> list[Path]:
    return [p for p in cache.glob("*/COMPLETE")] if cache.is_dir() else []


def leftovers(cache: Path) -> list[Path]:
    """What a failed preparation left in the cache, but the key's (empty) lock file."""
    return [p for p in cache.iterdir() if not p.name.startswith(".lock-")]


def test_a_corpus_that_cleans_to_nothing(cache, write, tmp_path, capsys):
    path = corpus(tmp_path / "short.jsonl", documents=20)
    recipe = lm_recipe(write, path, "[{name: length_filter, min_characters: 100000}]")
    testing.assert_main_user_error(capsys, ["data", str(recipe)], str(path), "length_filter",
                                   "empty after cleaning")  # fmt: skip
    assert complete_entries(cache) == [] and leftovers(cache) == []


@pytest.mark.parametrize("change", ["disappears", "changes"])
def test_a_file_that_disappears_or_changes_during_preparation(cache, tmp_path, change):
    first, second = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    corpus(first, documents=10), corpus(second, documents=10)
    source = document_source(TextFilesConfig(path=str(tmp_path / "*.jsonl")))
    documents = source.read()
    next(documents)  # reading the first file has begun
    if change == "disappears":
        second.unlink()
    else:
        second.write_text(second.read_text() + json.dumps({"text": "late"}) + "\n")
    with pytest.raises(kplug.DataError, match=f"{second}.*{change[:-1]}"):
        list(documents)


def test_a_full_disk_while_writing_shards(cache, write, tmp_path):
    path = corpus(tmp_path / "big.jsonl", documents=3000)
    recipe = lm_recipe(write, path)

    def small_files():  # in the child: no file may grow past 256 KB (a full disk)
        resource.setrlimit(resource.RLIMIT_FSIZE, (256_000, 256_000))

    result = subprocess.run([sys.executable, "-m", "kplug", "data", str(recipe)],
                            capture_output=True, text=True, preexec_fn=small_files,
                            timeout=300)  # fmt: skip
    testing.assert_user_error(result, "cannot write the prepared data to", str(cache),
                              "KPLUG_DATA_CACHE")  # fmt: skip
    assert complete_entries(cache) == [] and leftovers(cache) == []


def test_a_cache_folder_that_is_not_writable(write, tmp_path, monkeypatch, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("KPLUG_DATA_CACHE", str(blocker / "cache"))
    recipe = lm_recipe(write, corpus(tmp_path / "c.jsonl", documents=10))
    testing.assert_main_user_error(capsys, ["data", str(recipe)], str(blocker / "cache"),
                                   "not writable", "KPLUG_DATA_CACHE")  # fmt: skip


def test_a_corrupt_shard_found_at_training_time(cache, write, tmp_path, capsys):
    recipe = lm_recipe(write, corpus(tmp_path / "c.jsonl", documents=40))
    assert main(["data", str(recipe)]) == 0
    (tokens,) = cache.glob("*/train.tokens")
    data = bytearray(tokens.read_bytes())
    data[len(data) // 2] ^= 0xFF
    tokens.write_bytes(bytes(data))
    capsys.readouterr()
    testing.assert_main_user_error(capsys, ["run", str(recipe), "--runs-dir",
                                            str(tmp_path / "runs")],
                                   str(tokens), "damaged", "kplug data --clear")  # fmt: skip


def test_a_corrupt_labels_file_found_when_the_data_is_opened(cache, write, tmp_path, capsys):
    path = labelled_corpus(tmp_path / "labelled.jsonl", documents=40)
    recipe = write("labelled.yaml", f"""\
name: labelled
data: {{name: text_files, path: {path}, label_column: label, stream: true,
       tokenizer: {{name: char}}}}
model: {{name: rnn}}
objective: {{name: classification}}
""")  # fmt: skip
    assert main(["data", str(recipe)]) == 0
    (labels,) = cache.glob("*/train.labels.npy")
    data = bytearray(labels.read_bytes())
    data[-1] ^= 0x01
    labels.write_bytes(bytes(data))
    capsys.readouterr()
    testing.assert_main_user_error(capsys, ["data", str(recipe)], str(labels), "damaged",
                                   "kplug data --clear")  # fmt: skip


def test_progress_is_plain_periodic_lines_when_not_on_a_terminal(caplog):
    from kplug_text.progress import Progress

    progress = Progress("cleaning", total_bytes=4_000_000, every=0.0)
    with caplog.at_level("INFO", logger="kplug"):
        progress.update(1_000_000, 10)
        progress.update(1_000_000, 10)
        progress.finish()
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 3 and "\r" not in "".join(lines)
    assert lines[1].startswith("cleaning: 20 documents, 2.0 MB, ") and "50%, ETA" in lines[1]
    assert "MB/s in " in lines[2]
