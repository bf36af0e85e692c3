"""`mlm`, `nsp` and `mlm_nsp`: BERT's pretraining objectives on a tokenized corpus.

- `mlm`: the token stream cut into `[CLS] window [SEP]` examples; keras-hub's
  `MaskedLMMaskGenerator` selects 15% of the tokens, of which 80% become `[MASK]`, 10% a
  random token and 10% stay; the loss is the cross-entropy at the selected positions only.
- `nsp`: pairs `[CLS] A [SEP] B [SEP]` of consecutive segments of one document (label 1,
  half the time) or a segment and one from another document (label 0), drawn per pair
  from a generator seeded by (seed, split, pair number) (`SentencePairs`); a binary head
  on the pooled `[CLS]` output. Over prepared shards its examples are streamed.
- `mlm_nsp`: the NSP pairs, masked as for MLM, and the sum of both losses (BERT's
  original pretraining).
Masks are static (the same every epoch) and drawn per example (`MaskedExamples`:
keras-hub's generator with Python's `random` seeded by (seed, split, example number)), so
over prepared shards all three objectives stream their examples a batch at a time, and a
resumed run's batches are those of an uninterrupted one; in memory (`data.stream: false`)
the same examples are built as arrays.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from kplug_sequence.causal_lm import token_stream
from kplug_text.token_shards import TokenDocuments
from pydantic import Field, PositiveInt

import kplug
from kplug_transformers.encoder_objective import EncoderObjective, crossentropy
from kplug_transformers.masked_examples import MaskedExamples
from kplug_transformers.packed_windows import PackedWindows
from kplug_transformers.packing import document_tokens, special_id
from kplug_transformers.sentence_pairs import SentencePairs, joined


class MaskedLMConfig(kplug.Config):
    sequence_length: int = Field(64, ge=3, description="tokens per example, [CLS]/[SEP] included")
    mask_selection_rate: float = Field(0.15, gt=0.0, lt=1.0, description="tokens selected")
    mask_token_rate: float = Field(0.8, ge=0.0, le=1.0, description="selected -> [MASK]")
    random_token_rate: float = Field(0.1, ge=0.0, le=1.0, description="selected -> random")
    label_smoothing: float = Field(0.0, ge=0.0, lt=1.0)


class NextSentenceConfig(kplug.Config):
    sequence_length: PositiveInt = Field(64, description="tokens per pair, specials included")
    label_smoothing: float = Field(0.0, ge=0.0, lt=1.0)


class MaskedLMNextSentenceConfig(MaskedLMConfig):
    nsp_weight: float = Field(1.0, ge=0.0, description="weight of the NSP loss in the sum")


class MaskedLM(EncoderObjective):
    """Masked language modelling; reports the masked-token loss before and after training."""

    name = "mlm"
    monitor = "val_loss"
    uses_mlm, uses_nsp = True, False

    def examples(self, split: Any, index: int, ctx: kplug.RunContext):
        """Over prepared shards, the examples as an object the input pipeline gathers a
        batch at a time; in memory, the same examples as arrays."""
        source = self.unmasked(split[0], index, ctx)
        if not len(source):
            return None
        if self.uses_mlm:
            source = MaskedExamples(source, self.mask_generator(), seed=(ctx.seed, index))
        if isinstance(split[0], TokenDocuments):
            return source
        return source.gather(np.arange(len(source)))

    def unmasked(self, documents: Any, index: int, ctx: kplug.RunContext) -> PackedWindows:
        """`[CLS] window [SEP]` over the documents joined with `[SEP]` (the memory-mapped
        shard when it holds that stream)."""
        cls = special_id(self.tokenizer, "[CLS]", self.name)
        sep = special_id(self.tokenizer, "[SEP]", self.name)
        if isinstance(documents, TokenDocuments) and documents.end_id == sep:
            stream = documents.stream()
        else:
            stream = token_stream(documents, sep)
        return PackedWindows(stream, self.sequence_length - 2, cls, sep)

    def mask_generator(self) -> Any:
        """keras-hub's generator with this objective's rates; `mask_ids` (the targets) are
        0 at unused selection slots, which the loss ignores."""
        from keras_hub.layers import MaskedLMMaskGenerator

        c = self.config
        return MaskedLMMaskGenerator(
            vocabulary_size=self.vocabulary_size,
            mask_selection_rate=c.mask_selection_rate,
            mask_token_id=special_id(self.tokenizer, "[MASK]", self.name),
            mask_selection_length=self.selection_length,
            unselectable_token_ids=[
                0,
                special_id(self.tokenizer, "[CLS]", self.name),
                special_id(self.tokenizer, "[SEP]", self.name),
            ],
            mask_token_rate=c.mask_token_rate,
            random_token_rate=c.random_token_rate,
        )

    @property
    def selection_length(self) -> int:
        # Room for the selected tokens even when a window selects more than the average.
        return max(1, math.ceil(self.sequence_length * self.config.mask_selection_rate * 1.5))

    @property
    def extra_inputs(self) -> dict[str, Any]:
        import keras

        if not self.uses_mlm:
            return {}
        if not hasattr(self, "_mask_input"):
            self._mask_input = keras.Input(shape=(None,), dtype="int32", name="mask_positions")
        return {"mask_positions": self._mask_input}

    def heads(self, network: Any, inputs: dict, outputs: dict, ctx: kplug.RunContext):
        import keras
        from keras_hub.layers import MaskedLMHead

        heads = {}
        if self.uses_mlm:
            # Its own output matrix, not tied to the token embedding: keras-hub rebuilds a
            # tied head only inside its task classes, so a tied one would not reload.
            heads["mlm"] = MaskedLMHead(
                vocabulary_size=self.vocabulary_size,
                intermediate_activation="gelu",
                name="mlm_head",
            )(outputs["sequence_output"], mask_positions=self.extra_inputs["mask_positions"])
        if self.uses_nsp:
            heads["nsp"] = keras.layers.Dense(2, name="nsp_head", dtype="float32")(
                outputs["pooled_output"]
            )
        return heads

    def compile(self, model: Any, ctx: kplug.RunContext) -> None:
        from kplug_transformers.masked_accuracy import MaskedAccuracy

        smoothing = self.config.label_smoothing
        loss, weights, metrics = {}, {}, {}
        if self.uses_mlm:
            loss["mlm"] = crossentropy(smoothing, ignore_class=0)
            weights["mlm"] = 1.0
            metrics["mlm"] = [MaskedAccuracy(ignore_class=0)]
        if self.uses_nsp:
            loss["nsp"] = crossentropy(smoothing)
            weights["nsp"] = getattr(self.config, "nsp_weight", 1.0)
            metrics["nsp"] = ["sparse_categorical_accuracy"]
        model.compile(
            optimizer=ctx.make_optimizer(),
            loss=loss,
            loss_weights=weights,
            metrics=metrics,
            jit_compile=ctx.recipe.train.jit_compile,
        )
        self.initial = self._evaluate(model, ctx)

    def _evaluate(self, model: Any, ctx: kplug.RunContext) -> dict[str, float]:
        from kplug import SMOKE_STEPS

        split = ctx.data.validation or ctx.data.train
        steps = SMOKE_STEPS if ctx.smoke else None
        batch_size = ctx.recipe.data.options.batch_size
        return ctx.strategy.evaluate(model, split, batch_size=batch_size, steps=steps)

    def report(self, model: Any, data: kplug.Data, ctx: kplug.RunContext) -> dict[str, Any]:
        """Validation losses (per head) before and after training."""
        final = self._evaluate(model, ctx)
        keys = [k for k in final if k.endswith("loss")]
        out = {k: {"initial": round(float(self.initial[k]), 4), "final": round(float(final[k]), 4)}
               for k in keys if k in self.initial}  # fmt: skip
        if self.uses_mlm:
            out["uniform_guess_loss"] = round(math.log(self.vocabulary_size), 4)
        for key, pair in out.items():
            if isinstance(pair, dict):
                ctx.log.info("%s %s: %.3f before training, %.3f after",
                             self.name, key, pair["initial"], pair["final"])  # fmt: skip
        return {"pretraining": out}


class NextSentence(MaskedLM):
    """Next sentence prediction on pairs of segments."""

    name = "nsp"
    monitor = "val_loss"
    uses_mlm, uses_nsp = False, True

    def unmasked(self, documents: Any, index: int, ctx: kplug.RunContext) -> SentencePairs:
        if not isinstance(documents, TokenDocuments):
            documents = joined(document_tokens(documents))
        return self.pairs(documents, index, ctx)

    def pairs(self, documents: TokenDocuments, index: int, ctx: kplug.RunContext):
        segment = (self.sequence_length - 3) // 2
        if segment < 1:
            raise kplug.RecipeError("objective.sequence_length is too short for pairs; use >= 5.")
        cls = special_id(self.tokenizer, "[CLS]", self.name)
        sep = special_id(self.tokenizer, "[SEP]", self.name)
        return SentencePairs(documents, segment, self.sequence_length, cls, sep,
                             seed=(ctx.seed, index))  # fmt: skip


class MaskedLMNextSentence(NextSentence):
    """BERT's pretraining: masked LM on sentence pairs plus next sentence prediction."""

    name = "mlm_nsp"
    uses_mlm, uses_nsp = True, True
