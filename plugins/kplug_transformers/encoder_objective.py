"""`EncoderObjective`: what the encoder objectives (`mlm`, `nsp`, `mlm_nsp`,
`text_classification`, `pair_classification`) share: per-split inputs, the encoder network
check, the losses."""

from __future__ import annotations

from typing import Any

import kplug
from kplug_transformers.packing import tokenized_documents

SPLITS = ("train", "validation", "test")


class EncoderObjective(kplug.Objective):
    """Subclasses implement `examples(documents, split_index, ctx) -> (x, y) or None` and
    `heads(network, inputs, ctx) -> {output name: tensor}`, and set `losses(ctx)`."""

    name = "encoder objective"

    def __init__(self, config: Any, ctx: kplug.RunContext):
        self.config = config

    def check_text_form(self, data: kplug.Data) -> None:
        """Refuse data this objective cannot read: here, anything but one token array (or
        padded row) per document."""
        tokenized_documents(data, self.name)

    def adapt(self, data: kplug.Data, ctx: kplug.RunContext) -> kplug.Data:
        self.check_text_form(data)
        self.tokenizer = data.spec.extras["tokenizer"]
        self.vocabulary_size = data.spec.vocabulary_size
        splits, counts = {}, {}
        for index, name in enumerate(SPLITS):
            split = getattr(data, name)
            examples = self.examples(split, index, ctx) if split is not None else None
            splits[name] = examples
            counts[name] = kplug.count_examples(examples)
        if not counts["train"]:
            raise kplug.DataError(
                f"{self.name}: the training text gives no examples; lower "
                "objective.sequence_length or use more text."
            )
        spec = kplug.DataSpec(
            input_shape=(self.sequence_length,),
            num_classes=data.spec.num_classes,
            class_names=data.spec.class_names,
            vocabulary_size=data.spec.vocabulary_size,
            input_dtype="int32",
            extras={**data.spec.extras, "task": self.name},
        )
        return data.replace(**splits, spec=spec, report={**data.report, self.name: counts})

    def build(self, network: Any, ctx: kplug.RunContext) -> Any:
        import keras

        if not isinstance(network.input, dict) or "segment_ids" not in network.input:
            raise kplug.RecipeError(
                f"objective {self.name} puts its heads on an encoder: use model.name: bert "
                f"(got {network.name!r})."
            )
        inputs = {
            name: keras.Input(shape=(None,), dtype="int32", name=name)
            for name in ("token_ids", "segment_ids", "padding_mask")
        }
        outputs = self.heads(network, inputs, network(inputs), ctx)
        return keras.Model(inputs | self.extra_inputs, outputs, name=f"bert_{self.name}")

    extra_inputs: dict[str, Any] = {}

    @property
    def sequence_length(self) -> int:
        return self.config.sequence_length


def crossentropy(label_smoothing: float, ignore_class: int | None = None):
    from kplug_transformers.sparse_crossentropy import SparseCrossentropy

    return SparseCrossentropy(
        from_logits=True, label_smoothing=label_smoothing, ignore_class=ignore_class
    )
