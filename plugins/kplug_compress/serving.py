"""`saved_model_with_preprocessing`: a TensorFlow SavedModel of a text classifier whose
serving signature takes raw strings, so a serving system needs nothing from kplug.

The graph holds what `kplug predict` does in Python: the run's cleaning steps, its
tokenizer, the dataset's padding or truncation, the objective's packing
(`[CLS] A [SEP] B [SEP]`), the model, and a softmax where the model outputs logits. Each
cleaning step and tokenizer brings its TensorFlow twin (`in_graph()`, see
kplug_text/graph_tokenizers.py); one without a twin, or a model that is not a classifier,
is refused with the reason. Loading the SavedModel needs `import tensorflow_text` where
the tokenizer uses tf-text ops (WordPiece, byte-pair, SentencePiece, Unicode
normalization).
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import kplug
from kplug_compress.bridge import is_tf_keras_model
from kplug_compress.exporters import MeasuredExporter

FOLDER = "saved_model_with_preprocessing"
ENCODER_INPUTS = {"token_ids", "segment_ids", "padding_mask"}
TEXT_FORMS = ("padded", "pairs")


@dataclass
class TextPipeline:
    """What turns raw strings into the model's inputs, in graph form.

    Args:
        cleaners: the in-graph cleaning steps, in the recipe's order.
        tokenizer: the tokenizer's twin (strings -> ragged int32 ids).
        text_form: the dataset's form (`padded` or `pairs`).
        data_length: tokens each side keeps on the dataset's side (its padding length,
            or `sequence_length` of pairs), or None.
        encoder: pack `[CLS] A [SEP] (B [SEP])` into token_ids/segment_ids/padding_mask.
        length: the model's sequence length (encoder packing).
        cls, sep: the `[CLS]` and `[SEP]` ids (encoder packing).
        softmax: apply a softmax to the model's outputs (logits).
        class_names: the class of each output index.
    """

    cleaners: list[Any]
    tokenizer: Any
    text_form: str
    data_length: int | None
    encoder: bool
    length: int | None
    cls: int
    sep: int
    softmax: bool
    class_names: list[str]


class TextServingExporter(MeasuredExporter):
    """`saved_model_with_preprocessing/`: endpoint `serve` (also `serving_default`) takes
    `texts` (and `pairs` for sentence-pair models), 1-D `tf.string`, and returns
    `probabilities` (batch, classes) and `class` (the likeliest class name)."""

    name = "saved_model_with_preprocessing"

    def write(self, model: Any, ctx: kplug.RunContext) -> Path:
        import keras
        import tensorflow as tf

        if is_tf_keras_model(model):
            raise refusal("the model after qat is a tf_keras model; export saved_model "
                          "(token ids) or tflite instead")  # fmt: skip
        pipeline = text_pipeline(model, ctx)
        archive = keras.export.ExportArchive()
        archive.track(model)
        for resource in (pipeline.tokenizer, *pipeline.cleaners):
            if isinstance(resource, tf.__internal__.tracking.Trackable):
                archive.track(resource)
        texts = tf.TensorSpec([None], tf.string, name="texts")
        if pipeline.text_form == "pairs":
            pairs = tf.TensorSpec([None], tf.string, name="pairs")
            archive.add_endpoint("serve", lambda texts, pairs: serve(model, pipeline, texts, pairs),
                                 input_signature=[texts, pairs])  # fmt: skip
        else:
            archive.add_endpoint("serve", lambda texts: serve(model, pipeline, texts),
                                 input_signature=[texts])  # fmt: skip
        directory = ctx.directory
        temporary = directory.temporary_path(FOLDER)
        try:
            archive.write_out(str(temporary), verbose=False)
            target = directory.path / FOLDER
            if target.exists():
                shutil.rmtree(target)
        except BaseException:
            shutil.rmtree(temporary, ignore_errors=True)
            raise
        return directory.commit(temporary, FOLDER)

    def measure(self, path: Path, ctx: kplug.RunContext) -> dict[str, Any]:
        return {"note": "the same model as the row above, with its text preprocessing "
                "in the graph; takes raw strings"}  # fmt: skip


def serve(model: Any, pipeline: TextPipeline, texts: Any, pairs: Any = None) -> dict[str, Any]:
    """Raw strings to class probabilities and names, in TensorFlow ops."""
    import tensorflow as tf

    sides = [texts] if pairs is None else [texts, pairs]
    ids = [tokens(pipeline, side) for side in sides]
    inputs = encoder_inputs(pipeline, ids) if pipeline.encoder else padded(pipeline, ids[0])
    scores = tf.cast(model(inputs, training=False), tf.float32)
    probabilities = tf.nn.softmax(scores, axis=-1) if pipeline.softmax else scores
    names = tf.constant(pipeline.class_names)
    return {
        "probabilities": probabilities,
        "class": tf.gather(names, tf.argmax(probabilities, axis=-1, output_type=tf.int32)),
    }


def clean(pipeline: TextPipeline, texts: Any) -> Any:
    for cleaner in pipeline.cleaners:
        texts = cleaner(texts)
    return texts


def tokens(pipeline: TextPipeline, texts: Any) -> Any:
    """Ragged token ids of one side, cut to the dataset's length."""
    ids = pipeline.tokenizer(clean(pipeline, texts))
    return ids if pipeline.data_length is None else ids[:, : pipeline.data_length]


def padded(pipeline: TextPipeline, ids: Any) -> Any:
    """The dataset's padding: ids cut and padded with 0 to its length."""
    return ids.to_tensor(0, shape=[None, pipeline.data_length])


def encoder_inputs(pipeline: TextPipeline, ids: list[Any]) -> dict[str, Any]:
    """`[CLS] A [SEP]` or `[CLS] A [SEP] B [SEP]` padded to the model's length, as
    kplug_transformers' `pack`: a pair that does not fit loses tokens from its longer side
    first (ties: the first side), which leaves the shorter side whole when it takes at
    most room // 2 tokens, else gives room // 2 tokens to A and the rest to B."""
    import tensorflow as tf

    room = pipeline.length - (2 if len(ids) == 1 else 3)
    if len(ids) == 1:
        first, second = ids[0][:, :room], None
    else:
        a, b = (tf.cast(side.row_lengths(), tf.int32) for side in ids)
        fits = a + b <= room
        half = room // 2
        keep_a = tf.where(fits | (a <= half), a, tf.where(b <= half, room - b, half))
        keep_b = tf.where(fits | (b <= half), b, tf.where(a <= half, room - a, room - half))
        first = tf.ragged.boolean_mask(ids[0], tf.ragged.range(ids[0].row_lengths()) <
                                       tf.cast(keep_a, tf.int64)[:, None])  # fmt: skip
        second = tf.ragged.boolean_mask(ids[1], tf.ragged.range(ids[1].row_lengths()) <
                                        tf.cast(keep_b, tf.int64)[:, None])  # fmt: skip
    batch = tf.shape(first.row_lengths())[0]
    cls = tf.fill([batch, 1], pipeline.cls)
    sep = tf.fill([batch, 1], pipeline.sep)
    parts = [cls, first, sep]
    segment_parts = [tf.zeros_like(cls), tf.zeros_like(first), tf.zeros_like(sep)]
    if second is not None:
        parts += [second, sep]
        segment_parts += [tf.ones_like(second), tf.ones_like(sep)]
    shape = [None, pipeline.length]
    token_ids = tf.concat(parts, axis=1).to_tensor(0, shape=shape)
    segment_ids = tf.concat(segment_parts, axis=1).to_tensor(0, shape=shape)
    return {
        "token_ids": token_ids,
        "segment_ids": segment_ids,
        "padding_mask": tf.cast(token_ids != 0, tf.int32),
    }


def text_pipeline(model: Any, ctx: kplug.RunContext) -> TextPipeline:
    """The run's preprocessing in graph form; a KplugError saying what cannot be."""
    spec = ctx.state.get("dataset_spec") or ctx.spec
    form = spec.extras.get("text_form")
    if form not in TEXT_FORMS:
        raise refusal(
            f"dataset {ctx.recipe.data.name!r} gives "
            f"{'no text' if form is None else f'text of form {form!r}'}; this exporter "
            "serves classifiers of tokenized text (data.tokenizer), one text or a sentence "
            "pair per example"
        )
    if not spec.class_names:
        raise refusal(
            f"objective {ctx.recipe.objective.name!r} has no classes; this exporter serves "
            "classifiers (class probabilities). Export saved_model (token ids in, the "
            "model's outputs out) instead"
        )
    names = {tensor.name.split(":")[0] for tensor in model.inputs}
    encoder = ENCODER_INPUTS.issubset(names)
    tokenizer = spec.extras.get("tokenizer")
    # The objective's adapted spec holds the packed length (the model takes any length).
    length = int(ctx.spec.input_shape[0]) if encoder else None
    special = getattr(tokenizer, "special_ids", {})
    return TextPipeline(
        cleaners=graph_cleaners(ctx),
        tokenizer=graph_tokenizer(tokenizer, ctx),
        text_form=form,
        data_length=data_length(spec, form, ctx),
        encoder=encoder,
        length=length,
        cls=int(special.get("[CLS]", -1)),
        sep=int(special.get("end", -1)),
        softmax=not outputs_probabilities(model),
        class_names=[str(name) for name in spec.class_names],
    )


def graph_cleaners(ctx: kplug.RunContext) -> list[Any]:
    out, missing = [], []
    for entry in getattr(ctx.recipe.data.config, "clean", []) or []:
        cleaner = ctx.build_nested("cleaner", entry)
        twin = cleaner.in_graph() if hasattr(cleaner, "in_graph") else None
        if twin is None:
            missing.append(entry["name"])
        else:
            out.append(twin)
    if missing:
        raise refusal(
            f"cleaning step(s) {', '.join(missing)} have no TensorFlow twin (strip_html "
            "parses with lxml or trafilatura, normalize_unicode with fix_mojibake repairs "
            "with ftfy, remove_characters and collapse_whitespace use Python's Unicode "
            "tables: all Python only). Drop them from data.clean (or set normalize_unicode's "
            "fix_mojibake: false), or serve with `kplug predict`"
        )
    return out


def graph_tokenizer(tokenizer: Any, ctx: kplug.RunContext) -> Any:
    if tokenizer is None or not hasattr(tokenizer, "in_graph"):
        name = (getattr(ctx.recipe.data.config, "tokenizer", None) or {}).get("name")
        raise refusal(
            f"tokenizer {name!r} has no TensorFlow twin (an `in_graph()` method); the "
            "shipped char, byte, bpe, wordpiece, pretrained_wordpiece and sentencepiece "
            "tokenizers have one"
        )
    return tokenizer.in_graph()


def data_length(spec: Any, form: str, ctx: kplug.RunContext) -> int | None:
    if form == "padded":
        return int(spec.input_shape[0])
    if form == "pairs":
        return getattr(ctx.recipe.data.config, "sequence_length", None)
    return None


def outputs_probabilities(model: Any) -> bool:
    """Whether the model's output layer ends in a softmax (else it outputs logits)."""
    import keras

    last = model.layers[-1]
    if isinstance(last, keras.layers.Softmax):
        return True
    activation = getattr(last, "activation", None)
    return getattr(activation, "__name__", None) == "softmax"


def refusal(reason: str) -> kplug.KplugError:
    return kplug.KplugError(f"export {TextServingExporter.name}: {reason}.")


def check_before_training(run: kplug.RunContext) -> None:
    """Refuse data without a tokenizer, and cleaning steps and tokenizers without a twin,
    before anything trains."""
    entry = getattr(run.recipe.data.config, "tokenizer", None)
    if not entry:
        raise refusal(
            f"dataset {run.recipe.data.name!r} has no data.tokenizer; this exporter serves "
            "classifiers of tokenized text (e.g. data.tokenizer: {name: wordpiece})"
        )
    graph_cleaners(run)
    if not hasattr(run.registry.get("tokenizer", entry["name"]).factory, "in_graph"):
        raise refusal(
            f"tokenizer {entry['name']!r} has no TensorFlow twin (an `in_graph()` method); "
            "the shipped char, byte, bpe, wordpiece, pretrained_wordpiece and sentencepiece "
            "tokenizers have one"
        )
