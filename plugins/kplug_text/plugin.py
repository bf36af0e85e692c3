"""Registers the text datasets, cleaning steps and tokenizers."""

from __future__ import annotations

import kplug
from kplug_text import cleaners, dedup, filters
from kplug_text.bpe import BpeConfig, BpeTokenizer
from kplug_text.char_level import (
    ByteTokenizer,
    ByteTokenizerConfig,
    CharTokenizer,
    CharTokenizerConfig,
)
from kplug_text.pydoc_corpus import PydocCorpusConfig, estimate_pydoc_corpus, load_pydoc_corpus
from kplug_text.text_files import TextFilesConfig, load_text_files
from kplug_text.tokenizer_files import with_vocabulary_facts
from kplug_text.unigram import SentencePieceConfig, SentencePieceTokenizer
from kplug_text.vader_pairs import VaderPairsConfig, estimate_vader_pairs, load_vader_pairs
from kplug_text.vader_sentiment import (
    VaderSentimentConfig,
    estimate_vader_sentiment,
    load_vader_sentiment,
)
from kplug_text.web_crawl import WebCrawlConfig, estimate_web_crawl, load_web_crawl
from kplug_text.wordpiece import WordPieceConfig, WordPieceTokenizer


@kplug.hookimpl
def register_datasets(register):
    register(
        "pydoc_corpus",
        load_pydoc_corpus,
        config=PydocCorpusConfig,
        summary="CPython's pydoc help topics (~465k characters of English prose), embedded",
        estimate=with_vocabulary_facts(estimate_pydoc_corpus),
    )
    register(
        "text_files",
        load_text_files,
        config=TextFilesConfig,
        summary="documents from a file, folder or glob of .txt/.jsonl/.csv, optional labels",
        estimate=with_vocabulary_facts(),
    )
    register(
        "web_crawl",
        load_web_crawl,
        config=WebCrawlConfig,
        summary="main text of web pages from a polite crawl (robots.txt, allowed domains, "
        "on-disk cache)",
        estimate=with_vocabulary_facts(estimate_web_crawl),
    )
    register(
        "vader_sentiment",
        load_vader_sentiment,
        config=VaderSentimentConfig,
        summary="7,500 human-rated words and emoticons of the VADER lexicon, labelled "
        "positive/negative by the sign of their mean rating, embedded",
        estimate=with_vocabulary_facts(estimate_vader_sentiment),
    )
    register(
        "vader_pairs",
        load_vader_pairs,
        config=VaderPairsConfig,
        summary="pairs of VADER lexicon tokens labelled first/second by which is rated "
        "higher; tokens split before pairing, so test tokens are unseen; embedded",
        estimate=with_vocabulary_facts(estimate_vader_pairs),
    )


@kplug.hookimpl
def add_hookspecs(plugin_manager):
    from kplug_text import hookspecs

    plugin_manager.add_hookspecs(hookspecs)


@kplug.hookimpl
def component_kinds():
    from kplug_text.hookspecs import KINDS

    return KINDS


@kplug.hookimpl
def register_cleaners(register):
    register("strip_html", cleaners.StripHtml, config=cleaners.StripHtmlConfig,
             summary="remove HTML tags, scripts and styles; decode entities")  # fmt: skip
    register("normalize_unicode", cleaners.NormalizeUnicode,
             config=cleaners.NormalizeUnicodeConfig,
             summary="repair mojibake (ftfy) and apply NFKC (or another form)")  # fmt: skip
    register("remove_characters", cleaners.RemoveCharacters,
             config=cleaners.RemoveCharactersConfig,
             summary="remove control, format and other special characters by category")  # fmt: skip
    register("collapse_whitespace", cleaners.CollapseWhitespace,
             config=cleaners.CollapseWhitespaceConfig,
             summary="collapse runs of spaces and blank lines; strip the ends")  # fmt: skip
    register("length_filter", filters.LengthFilter, config=filters.LengthFilterConfig,
             summary="drop documents outside a range of characters and words")  # fmt: skip
    register("quality_filter", filters.QualityFilter, config=filters.QualityFilterConfig,
             summary="drop documents with few letters or many repeated lines")  # fmt: skip
    register("exact_dedup", dedup.ExactDedup, config=dedup.ExactDedupConfig,
             summary="drop documents whose normalized text was seen before (SHA-1)")  # fmt: skip
    register("minhash_dedup", dedup.MinhashDedup, config=dedup.MinhashDedupConfig,
             summary="drop near-duplicates (MinHash LSH over shingles, Jaccard)")  # fmt: skip


@kplug.hookimpl
def register_tokenizers(register):
    register("char", CharTokenizer, config=CharTokenizerConfig,
             summary="one token per character seen in training (others: unknown)")  # fmt: skip
    register("byte", ByteTokenizer, config=ByteTokenizerConfig,
             summary="one token per UTF-8 byte; nothing to train, exact round trip")  # fmt: skip
    register("wordpiece", WordPieceTokenizer, config=WordPieceConfig,
             summary="WordPiece vocabulary computed by keras-hub (BERT style)")  # fmt: skip
    register("bpe", BpeTokenizer, config=BpeConfig,
             summary="byte-level BPE trained with HF tokenizers (GPT-2 style)")  # fmt: skip
    register("sentencepiece", SentencePieceTokenizer, config=SentencePieceConfig,
             summary="SentencePiece unigram (or BPE) model")  # fmt: skip


@kplug.hookimpl
def prediction_inputs(config, paths, texts, pairs, run_dir, inference, ctx):
    from kplug_text.prediction_inputs import read_prediction_inputs

    return read_prediction_inputs(config, paths, texts, pairs, run_dir, inference, ctx)


@kplug.hookimpl
def inference_fields(directory):
    """inference.json's `tokenizer`: the run's saved tokenizer, if it has one."""
    from kplug_text.tokenizer_files import saved_tokenizer_entry

    return saved_tokenizer_entry(directory)


@kplug.hookimpl
def evaluation_overrides(recipe, inference, run_dir):
    """New data is tokenized with the run's saved tokenizer, not a newly trained one."""
    tokenizer = getattr(recipe.data.config, "tokenizer", None)
    saved = inference.get("tokenizer")
    if not (saved and isinstance(tokenizer, dict) and "vocabulary_file" in tokenizer):
        return []
    return [f"data.tokenizer.vocabulary_file={run_dir / saved['folder'] / saved['file']}"]
