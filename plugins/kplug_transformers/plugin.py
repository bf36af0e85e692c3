"""Registers the transformer architectures, objectives, tokenizer and Keras classes."""

from __future__ import annotations

import functools

from kplug_text.tokenizer_files import with_vocabulary_facts

import kplug
from kplug_transformers.bert import BertConfig, build_bert
from kplug_transformers.config import estimate_parameters
from kplug_transformers.gpt2 import GPT2Config, build_gpt2
from kplug_transformers.masked_lm import (
    MaskedLM,
    MaskedLMConfig,
    MaskedLMNextSentence,
    MaskedLMNextSentenceConfig,
    NextSentence,
    NextSentenceConfig,
)
from kplug_transformers.pair_classification import PairClassification, PairClassificationConfig
from kplug_transformers.pretrained_wordpiece import PretrainedWordPiece, PretrainedWordPieceConfig
from kplug_transformers.qa_data import (
    PydocQAConfig,
    QAFilesConfig,
    estimate_pydoc_qa,
    load_pydoc_qa,
    load_qa_files,
)
from kplug_transformers.question_answering import QuestionAnswering, QuestionAnsweringConfig
from kplug_transformers.seq2seq import Seq2Seq, Seq2SeqConfig
from kplug_transformers.seq2seq_transformer import (
    Seq2SeqTransformerConfig,
    build_seq2seq_transformer,
)
from kplug_transformers.text_classification import TextClassification, TextClassificationConfig


@kplug.hookimpl
def register_architectures(register):
    register("bert", build_bert, config=BertConfig,
             summary="BERT encoder (keras-hub BertBackbone): new, or a preset / HF directory; "
             "full, flash, local, sliding_window, axial or lsh attention; reversible blocks",
             estimate=functools.partial(estimate_parameters, encoder=True))  # fmt: skip
    register("gpt2", build_gpt2, config=GPT2Config,
             summary="GPT-2 decoder (keras-hub GPT2Backbone) with a tied softmax over tokens, "
             "for causal_lm; the attention options and reversible blocks of bert",
             estimate=functools.partial(estimate_parameters, encoder=False))  # fmt: skip
    register("seq2seq_transformer", build_seq2seq_transformer, config=Seq2SeqTransformerConfig,
             summary="encoder-decoder: keras-hub TransformerEncoder/Decoder")  # fmt: skip


@kplug.hookimpl
def register_datasets(register):
    register("qa_files", load_qa_files, config=QAFilesConfig,
             summary="extractive QA records: SQuAD v1.1 .json or .jsonl {context, question, "
             "answers}, split by context")  # fmt: skip
    register("pydoc_qa", load_pydoc_qa, config=PydocQAConfig,
             estimate=with_vocabulary_facts(estimate_pydoc_qa),
             summary="2,719 extractive questions made by rule (cloze, definition) from "
             "CPython's pydoc topics, embedded")  # fmt: skip


@kplug.hookimpl
def register_objectives(register):
    register("mlm", MaskedLM, config=MaskedLMConfig,
             summary="masked LM: 15% selected, 80/10/10 mask/random/keep")  # fmt: skip
    register("nsp", NextSentence, config=NextSentenceConfig,
             summary="next sentence prediction: 50% true next segment, 50% random")  # fmt: skip
    register("mlm_nsp", MaskedLMNextSentence, config=MaskedLMNextSentenceConfig,
             summary="BERT pretraining: masked LM on sentence pairs + NSP")  # fmt: skip
    register("seq2seq", Seq2Seq, config=Seq2SeqConfig,
             summary="source segment -> following segment, teacher forcing")  # fmt: skip
    register("text_classification", TextClassification, config=TextClassificationConfig,
             summary="classifier head on an encoder's [CLS] output (fine-tuning)")  # fmt: skip
    register("pair_classification", PairClassification, config=PairClassificationConfig,
             summary="sentence-pair classifier: [CLS] A [SEP] B [SEP], segments 0/1, head on "
             "the [CLS] output (NLI-style fine-tuning)")  # fmt: skip
    register("question_answering", QuestionAnswering, config=QuestionAnsweringConfig,
             summary="extractive QA: start/end span head, doc-stride windows, SQuAD exact "
             "match and F1")  # fmt: skip


@kplug.hookimpl
def prediction_inputs(config, paths, texts, pairs, run_dir):
    from kplug_transformers.qa_predict import qa_prediction_inputs

    return qa_prediction_inputs(config, paths, texts, pairs, run_dir)


@kplug.hookimpl
def prediction_rows(objective, config, model, inputs):
    if objective != "question_answering":
        return None
    from kplug_transformers.qa_predict import answer_rows

    return answer_rows(config, model, inputs)


# The text plugin declares register_tokenizers and the distribution plugin layout_rules
# (add_hookspecs); optionalhook: without them loaded, these are simply never called.
@kplug.hookimpl(optionalhook=True)
def register_tokenizers(register):
    register("pretrained_wordpiece", PretrainedWordPiece, config=PretrainedWordPieceConfig,
             summary="the WordPiece vocabulary of a preset or an earlier run")  # fmt: skip


@kplug.hookimpl
def keras_objects():
    from kplug_transformers.document_attention_mask import DocumentAttentionMask
    from kplug_transformers.local_attention_mask import LocalAttentionMask
    from kplug_transformers.masked_accuracy import MaskedAccuracy
    from kplug_transformers.reversible_stack import ReversibleStack
    from kplug_transformers.sparse_crossentropy import SparseCrossentropy
    from kplug_transformers.transformer_block import ATTENTION_LAYERS, TransformerBlock

    return {
        "DocumentAttentionMask": DocumentAttentionMask,
        "LocalAttentionMask": LocalAttentionMask,
        "MaskedAccuracy": MaskedAccuracy,
        "ReversibleStack": ReversibleStack,
        "SparseCrossentropy": SparseCrossentropy,
        "TransformerBlock": TransformerBlock,
        **{layer.__name__: layer for layer in ATTENTION_LAYERS.values()},
    }


@kplug.hookimpl(optionalhook=True)
def layout_rules(architecture, config):
    """Tensor-parallel sharding of `bert`/`gpt2` for `jax_model_parallel`, in the style of
    keras-hub's `GemmaBackbone.get_layout_map`: attention heads and the feed-forward
    inner dimension split over `model`, the vocabulary of the token embedding too."""
    if architecture not in ("bert", "gpt2"):
        return None
    return {
        "token_embedding/embeddings": ["model", None],
        ".*attention.*(query|key|value).kernel": [None, "model", None],
        ".*attention_output.kernel": ["model", None, None],
        ".*feedforward_intermediate_dense.kernel": [None, "model"],
        ".*feedforward_output_dense.kernel": ["model", None],
    }
