"""`kplug predict` on a `question_answering` run: the answer span of each question.

Inputs (hook `prediction_inputs`, for the QA datasets): `.jsonl` or SQuAD `.json` files
of `{context, question}` records (answers, if any, are checked and ignored), or
`--text QUESTION --pair CONTEXT`. They are tokenized with the run's saved tokenizer;
the rows (hook `prediction_rows`) hold each question, its answer text and the answer's
`[start, end)` characters in the context, from the windows and span search of training
(question_answering.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from kplug_text.tokenizer_files import load_tokenizer

import kplug
from kplug_transformers.packing import special_id
from kplug_transformers.qa_data import QADataConfig, QARecord, read_qa_file, tokenize_records
from kplug_transformers.question_answering import QuestionAnswering, best_spans, predict_logits

PREDICT_BATCH = 32


def qa_prediction_inputs(config: Any, paths: list[Path], texts: list[str], pairs: list[str],
                         run_dir: Path) -> kplug.Data | None:  # fmt: skip
    if not isinstance(config, QADataConfig):
        return None
    if len(pairs) != len(texts):
        raise kplug.DataError(
            "this run answers questions about a context: give each --text QUESTION a --pair "
            "CONTEXT, or .jsonl / SQuAD .json files of {context, question} records."
        )
    records = [QARecord(str(n), context, question, [])
               for n, (question, context) in enumerate(zip(texts, pairs, strict=True))]  # fmt: skip
    for path in paths:
        files = sorted(p for p in path.rglob("*") if p.suffix in (".json", ".jsonl"))
        for file in files if path.is_dir() else [path]:
            records.extend(read_qa_file(str(file), require_answers=False))
    tokenizer = load_tokenizer(run_dir)
    tokenize_records(records, tokenizer)
    x = np.empty(len(records), dtype=object)
    x[:] = records
    spec = kplug.DataSpec(input_dtype="int32", vocabulary_size=tokenizer.vocabulary_size,
                          extras={"tokenizer": tokenizer, "text_form": "qa"})  # fmt: skip
    return kplug.Data(train=(x, None), spec=spec, report={"inputs": [r.question for r in records]})


def answer_rows(config: Any, model: Any, inputs: kplug.Data) -> list[dict[str, Any]]:
    """Each question's answer: the best span over its windows, in characters."""
    records = inputs.train[0]
    tokenizer = inputs.spec.extras["tokenizer"]
    objective = QuestionAnswering(config, None)
    windows = objective.make_windows(
        records, special_id(tokenizer, "[CLS]", "kplug predict"),
        special_id(tokenizer, "[SEP]", "kplug predict"),
    )  # fmt: skip
    logits = predict_logits(model, windows, len(records), PREDICT_BATCH)
    spans = best_spans(records, windows, logits, config.max_answer_tokens)
    rows = []
    for number, record in enumerate(records):
        start, end = spans.get(number, (0, 0))
        rows.append({"id": record.id, "input": record.question,
                     "answer": record.context[start:end], "answer_start": start,
                     "answer_end": end})  # fmt: skip
    return rows
