"""Open-book extractive QA: `question_answering`'s `retrieve_passages` reads each question
against the passages a retriever finds for it, not against its given context.

The corpus is every distinct context of the data set (all splits, as an open-domain
corpus holds the test documents too; the questions stay held out). Each question's `k`
most similar passages (`kplug_retrieval.passages.PassageIndex`: tf-idf, SVD, faiss) are
joined, most similar first, into its new context. Its answer moves with its own passage
when that one is retrieved; otherwise the answer is the first occurrence of the answer
text in the retrieved passages (distant supervision, as in DrQA), or none: such a
training question is dropped, a validation or test one is kept and scored against its
gold answers (the model can then only be wrong).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from kplug_text.components import Tokenizer
from pydantic import Field, PositiveInt

import kplug
from kplug_transformers.qa_data import SPLITS, QARecord, tokenize_records

SEPARATOR = "\n\n"


class RetrievePassages(kplug.Config):
    k: PositiveInt = Field(3, description="passages retrieved per question, joined")
    dimension: PositiveInt = Field(256, description="SVD components of the tf-idf vectors")


def retrieve_contexts(data: kplug.Data, options: RetrievePassages,
                      tokenizer: Tokenizer) -> tuple[kplug.Data, dict[str, Any]]:  # fmt: skip
    """`data` with each record's context replaced by its retrieved passages (tokenized),
    and a report: per split, the share of questions whose own passage was retrieved and
    whose answer text is in the retrieved passages."""
    from kplug_retrieval.passages import PassageIndex

    splits = {name: list(getattr(data, name)[0]) for name in SPLITS
              if getattr(data, name) is not None}  # fmt: skip
    passages = list(dict.fromkeys(r.context for part in splits.values() for r in part))
    index = PassageIndex(passages, options.dimension)
    replaced, report = {}, {}
    for name, records in splits.items():
        found = index.search([r.question for r in records], options.k)
        kept, own, answerable = [], 0, 0
        for record, numbers in zip(records, found, strict=True):
            chosen = [passages[i] for i in numbers if i >= 0]
            answers = relocated(record, chosen)
            own += record.context in chosen
            answerable += bool(answers)
            if answers or name != "train":
                kept.append(QARecord(record.id, SEPARATOR.join(chosen), record.question, answers))
        tokenize_records(kept, tokenizer)
        replaced[name] = (_objects(kept), None)
        report[name] = {
            "questions": len(records),
            "own_passage_retrieved": round(own / max(1, len(records)), 4),
            "answer_in_passages": round(answerable / max(1, len(records)), 4),
        }
    summary = {"k": options.k, "passages": len(passages), "dimension": int(index.index.d),
               "splits": report}  # fmt: skip
    return data.replace(**replaced), summary


def relocated(record: QARecord, chosen: list[str]) -> list[tuple[str, int]]:
    """The record's answers as spans of `SEPARATOR.join(chosen)` (see the module doc)."""
    if record.context in chosen:
        position = chosen.index(record.context)
        offset = sum(len(p) + len(SEPARATOR) for p in chosen[:position])
        return [(text, start + offset) for text, start in record.answers]
    if not record.answers:
        return []
    text = record.answers[0][0]
    start = SEPARATOR.join(chosen).find(text)
    return [(text, start)] if start >= 0 else []


def _objects(records: list[QARecord]) -> np.ndarray:
    out = np.empty(len(records), dtype=object)
    out[:] = records
    return out
