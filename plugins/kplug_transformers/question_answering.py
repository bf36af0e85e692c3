"""`question_answering`: extractive QA (SQuAD) with a start/end span head on an encoder.

Each question and its context become windows `[CLS] question [SEP] context part [SEP]`
(segment 0, then 1), `sequence_length` tokens; a context longer than the room left by
the question is cut into overlapping parts that start every `doc_stride` tokens, as in
BERT's SQuAD recipe. A dense layer on every token's output gives a start and an end
logit; the loss is the mean of the start and end cross-entropies, the target the first
answer's tokens, or `[CLS]` (position 0) in a window that does not hold the whole answer.

The answer of a question is the best span over all its windows: start and end inside the
context part, start <= end, at most `max_answer_tokens` long, the highest start + end
logit; it maps back to characters through the tokens' spans (qa_data.py). `report`
scores validation and test answers with SQuAD v1.1's exact match and F1 (metrics.json
`exact_match` and `f1`, of the test split) and writes `predictions_<split>.json` (question
id -> answer text, the format of SQuAD's official evaluation script).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from pydantic import Field, PositiveInt, model_validator

import kplug
from kplug_transformers.encoder_objective import SPLITS, EncoderObjective, crossentropy
from kplug_transformers.packing import special_id
from kplug_transformers.qa_retrieval import RetrievePassages, retrieve_contexts
from kplug_transformers.squad_metrics import squad_scores


class QuestionAnsweringConfig(kplug.Config):
    sequence_length: PositiveInt = Field(
        256, description="tokens per window: [CLS] question [SEP] context part [SEP]"
    )
    doc_stride: PositiveInt = Field(
        128, description="tokens between the starts of a long context's overlapping parts"
    )
    max_question_tokens: PositiveInt = Field(64, description="longer questions are cut")
    max_answer_tokens: PositiveInt = Field(30, description="longest predicted answer")
    dropout: float = Field(0.1, ge=0.0, lt=1.0, description="dropout before the span head")
    retrieve_passages: RetrievePassages | None = Field(
        None,
        description="open-book QA: read each question against its k most similar passages "
        "of the data set's contexts (tf-idf + faiss), not its given context; null: off",
    )

    @model_validator(mode="after")
    def _room_for_context(self) -> QuestionAnsweringConfig:
        if self.max_question_tokens + 3 >= self.sequence_length:
            raise ValueError(
                "sequence_length must exceed max_question_tokens + 3 ([CLS] and two [SEP]), "
                "leaving room for the context"
            )
        return self


@dataclass
class Windows:
    """A split's windows: the encoder inputs, the span targets, and for each window its
    record and the context token index of its first context position."""

    inputs: dict[str, np.ndarray]
    targets: np.ndarray
    record: np.ndarray
    context_start: np.ndarray
    offset: np.ndarray


class QuestionAnswering(EncoderObjective):
    """Start/end span logits over every position; monitors validation loss."""

    name = "question_answering"
    monitor = "val_loss"
    mode = "min"

    def check_text_form(self, data: kplug.Data) -> None:
        if data.spec.extras.get("text_form") != "qa":
            raise kplug.DataError(
                "question_answering needs question/context/answer records: use data.name: "
                "qa_files (SQuAD .json or .jsonl) or pydoc_qa."
            )

    def adapt(self, data: kplug.Data, ctx: kplug.RunContext) -> kplug.Data:
        self.windows: dict[str, Windows] = {}
        self.records: dict[str, np.ndarray] = {}
        self.check_text_form(data)
        # Scored against the given answers, whatever the retrieved contexts hold.
        self.gold = {name: {r.id: [text for text, _ in r.answers] for r in split[0]}
                     for name in SPLITS if (split := getattr(data, name)) is not None}  # fmt: skip
        self.retrieval: dict[str, Any] | None = None
        if self.config.retrieve_passages is not None:
            tokenizer = data.spec.extras["tokenizer"]
            data, self.retrieval = retrieve_contexts(data, self.config.retrieve_passages,
                                                     tokenizer)  # fmt: skip
            ctx.log.info("retrieve_passages: %s", self.retrieval)
        return super().adapt(data, ctx)

    def examples(self, split: Any, index: int, ctx: kplug.RunContext):
        records = split[0]
        cls = special_id(self.tokenizer, "[CLS]", self.name)
        sep = special_id(self.tokenizer, "[SEP]", self.name)
        windows = self.make_windows(records, cls, sep)
        name = ("train", "validation", "test")[index]
        self.windows[name], self.records[name] = windows, records
        if not len(windows.targets):
            return None
        return windows.inputs, windows.targets

    def make_windows(self, records: np.ndarray, cls: int, sep: int) -> Windows:
        c, length = self.config, self.config.sequence_length
        rows: list[tuple[np.ndarray, int, int, int, int]] = []
        for number, record in enumerate(records):
            question = record.question_ids[: c.max_question_tokens]
            room = length - len(question) - 3
            first, last = record.answer_tokens()
            n = len(record.context_ids)
            for start in range(0, max(n, 1), c.doc_stride):
                part = record.context_ids[start : start + room]
                offset = len(question) + 2
                holds = start <= first and last < start + room and last < n
                target = (first - start + offset, last - start + offset) if holds else (0, 0)
                ids = np.concatenate([[cls], question, [sep], part, [sep]]).astype(np.int32)
                rows.append((ids, number, start, offset, *target))
                if start + room >= n:
                    break
        token_ids = np.zeros((len(rows), length), np.int32)
        segment_ids = np.zeros((len(rows), length), np.int32)
        for row, (ids, _, _, offset, _, _) in enumerate(rows):
            token_ids[row, : len(ids)] = ids
            segment_ids[row, offset : len(ids)] = 1
        inputs = {"token_ids": token_ids, "segment_ids": segment_ids,
                  "padding_mask": (token_ids != 0).astype(np.int32)}  # fmt: skip
        columns = np.array([r[1:] for r in rows], np.int32).reshape(-1, 5)
        return Windows(inputs, columns[:, 3:5].copy(), columns[:, 0], columns[:, 1], columns[:, 2])

    @property
    def sequence_length(self) -> int:
        return self.config.sequence_length

    def heads(self, network: Any, inputs: dict, outputs: dict, ctx: kplug.RunContext):
        import keras

        # The pooled [CLS] output is off the loss path: frozen, so no optimizer warning
        # about its missing gradients.
        if any(layer.name == "pooled_dense" for layer in network.layers):
            network.get_layer("pooled_dense").trainable = False
        x = keras.layers.Dropout(self.config.dropout, name="span_dropout")(
            outputs["sequence_output"]
        )
        logits = keras.layers.Dense(2, name="span_logits", dtype="float32")(x)
        # (batch, 2, length): the start and end logits, so y is (batch, 2) positions.
        return keras.layers.Permute((2, 1), name="start_end_logits", dtype="float32")(logits)

    def loss(self, ctx: kplug.RunContext):
        return crossentropy(0.0)

    def metrics(self, ctx: kplug.RunContext):
        return ["accuracy"]

    def report(self, model: Any, data: kplug.Data, ctx: kplug.RunContext) -> dict[str, Any]:
        """Exact match and F1 of the predicted answers on validation and test."""
        batch_size = ctx.recipe.data.options.batch_size
        out: dict[str, Any] = {}
        for name in ("validation", "test"):
            windows = self.windows.get(name)
            if windows is None or not len(windows.targets):
                continue
            records = self.records[name]
            limit = kplug.SMOKE_STEPS * batch_size
            if ctx.smoke and len(windows.record) > limit:  # questions whose windows fit
                records = records[: max(1, int(windows.record[limit]))]
            logits = predict_logits(model, windows, len(records), batch_size)
            answers = best_answers(records, windows, logits, self.config.max_answer_tokens)
            gold = {r.id: self.gold[name][r.id] for r in records}
            out[name] = squad_scores(gold, answers)
            ctx.directory.write_json(f"predictions_{name}.json", answers)
            scores = out[name]
            ctx.log.info("%s: exact match %.2f, F1 %.2f over %d questions", name,
                         scores["exact_match"], scores["f1"], scores["questions"])  # fmt: skip
        if not out:
            return {}
        headline = out.get("test", out.get("validation"))
        retrieval = {} if self.retrieval is None else {"retrieve_passages": self.retrieval}
        return {"exact_match": headline["exact_match"], "f1": headline["f1"],
                "question_answering": out, **retrieval}  # fmt: skip


def predict_logits(model: Any, windows: Windows, records: int, batch_size: int) -> np.ndarray:
    """Span logits `(windows, 2, length)` of the windows of the first `records` records."""
    count = int(np.searchsorted(windows.record, records, side="left"))
    inputs = {k: v[:count] for k, v in windows.inputs.items()}
    return np.asarray(model.predict(inputs, batch_size=batch_size, verbose=0), np.float32)


def best_answers(
    records: np.ndarray, windows: Windows, logits: np.ndarray, max_answer_tokens: int
) -> dict[str, str]:
    """Question id -> the text of the best span over its windows (see module doc)."""
    spans = best_spans(records, windows, logits, max_answer_tokens)
    return {records[n].id: records[n].context[a:b] for n, (a, b) in spans.items()}


def best_spans(
    records: np.ndarray, windows: Windows, logits: np.ndarray, max_answer_tokens: int
) -> dict[int, tuple[int, int]]:
    """Record index -> the `[start, end)` characters of its best span over its windows."""
    best: dict[int, tuple[float, int, int]] = {}
    for row in range(len(logits)):
        number = int(windows.record[row])
        offset, start = int(windows.offset[row]), int(windows.context_start[row])
        tokens = int(windows.inputs["padding_mask"][row].sum()) - offset - 1
        if tokens <= 0:
            continue
        starts = logits[row, 0, offset : offset + tokens]
        ends = logits[row, 1, offset : offset + tokens]
        scores = starts[:, None] + ends[None, :]
        band = np.triu(np.ones_like(scores, dtype=bool)) & ~np.triu(
            np.ones_like(scores, dtype=bool), k=max_answer_tokens
        )
        scores = np.where(band, scores, -np.inf)
        i, j = np.unravel_index(int(np.argmax(scores)), scores.shape)
        if number not in best or scores[i, j] > best[number][0]:
            best[number] = (float(scores[i, j]), start + int(i), start + int(j))
    spans = {}
    for number, (_, first, last) in best.items():
        token_spans = records[number].token_spans
        spans[number] = (int(token_spans[first, 0]), int(token_spans[last, 1]))
    return spans
