"""Cleaning steps measured on documents built to be removed or kept."""

from __future__ import annotations

import time

import pytest
from kplug_text.pipeline import clean_documents
from kplug_text.pydoc_corpus import pydoc_documents

import kplug
from kplug.context import RunContext
from kplug.plugins import registry

PROSE = (
    "The quick brown fox jumps over the lazy dog while the farmer watches from the porch. "
    "Later that evening the fox returns to the field to look for mice under the tall grass, "
    "and the dog, tired after a long day of chasing chickens around the yard, sleeps by the "
    "fire. Nobody in the house notices the small visitor, and the night passes quietly until "
    "the rooster wakes everyone at dawn with its loud and cheerful song about the sunrise."
)
OTHER = (
    "Gradient descent updates every parameter in the direction that lowers the loss, with a "
    "step size called the learning rate. Too large a rate makes training diverge, too small a "
    "rate makes it crawl; schedules that warm up and then decay are a common compromise that "
    "works for convolutional networks, recurrent networks and transformers alike, on images, "
    "audio and text, from small experiments on a laptop to large runs on many accelerators."
)


def ctx() -> RunContext:
    return RunContext(recipe=None, registry=registry())


def step(name: str, **params):
    return ctx().build_nested("cleaner", {"name": name, **params})


def test_strip_html_removes_tags_scripts_and_entities_but_not_prose_brackets():
    page = (
        "<html><head><title>t</title><style>p {color: red}</style></head><body>"
        "<p>Fish &amp; chips</p><script>alert('x')</script><div>caf&eacute; <b>open</b></div>"
        "</body></html>"
    )
    prose = "type(1) returns <class 'int'> and a < b > c holds; x &lt; y"
    cleaned_page, cleaned_prose = step("strip_html").clean([page, prose])
    assert "<" not in cleaned_page and "alert" not in cleaned_page and "color" not in cleaned_page
    assert "Fish & chips" in cleaned_page and "café open" in cleaned_page
    assert cleaned_prose == "type(1) returns <class 'int'> and a < b > c holds; x < y"


def test_normalize_unicode_repairs_mojibake_and_applies_nfkc():
    broken = "The Mona Lisa doesnâ€™t have eyebrows"
    ligature = "ﬁle ｗｉｄｅ"
    fixed, folded = step("normalize_unicode").clean([broken, ligature])
    assert fixed == "The Mona Lisa doesn’t have eyebrows"
    assert folded == "file wide"
    assert (
        step("normalize_unicode", uncurl_quotes=True)
        .clean([broken])[0]
        .endswith("doesn't have eyebrows")
    )


def test_remove_characters_drops_controls_and_zero_width_but_keeps_newlines():
    (cleaned,) = step("remove_characters").clean(["a\x07b\u200bc\nd\te\ue000"])
    assert cleaned == "abc\nd\te"


def test_collapse_whitespace():
    text = "  a   b \t c \n\n\n\n d  \n e  "
    assert step("collapse_whitespace").clean([text]) == ["a b c\n\nd\ne"]
    assert step("collapse_whitespace", keep_newlines=False).clean([text]) == ["a b c d e"]


def test_length_and_quality_filters_remove_what_they_should():
    symbols = "$$$ 1234 5678 ### %%% &&& 9999 0000 !!!"
    repeated = "\n".join(["Home | About | Contact"] * 8 + ["Welcome to the site."])
    kept = step("quality_filter").clean([PROSE, symbols, repeated])
    assert kept == [PROSE, None, None]
    lengths = step("length_filter", min_words=10, max_characters=1000).clean(
        ["too short", PROSE, PROSE * 3]
    )
    assert lengths == [None, PROSE, None]


def test_exact_dedup_keeps_the_first_copy_and_ignores_case_and_spacing():
    docs = [PROSE, OTHER, PROSE, "  " + PROSE.upper().replace(" ", "  ")]
    assert step("exact_dedup").clean(docs) == [PROSE, OTHER, None, None]
    raw = step("exact_dedup", normalize=False).clean(docs)
    assert raw == [PROSE, OTHER, None, docs[3]]


def test_minhash_removes_a_near_duplicate_with_one_word_changed():
    near = PROSE.replace("farmer", "shepherd")
    assert near != PROSE
    docs = [PROSE, OTHER, near, OTHER.replace("laptop", "desktop"), "short and distinct"]
    kept = step("minhash_dedup", threshold=0.8).clean(docs)
    assert kept == [PROSE, OTHER, None, None, "short and distinct"]
    # Exact deduplication alone cannot see these.
    assert step("exact_dedup").clean(docs) == docs


def test_pipeline_report_counts_documents_and_characters_per_step():
    docs = [
        "<p>" + PROSE + "</p>",
        PROSE,
        PROSE.replace("rooster", "cockerel"),
        "!!!! ???? 1234",
        OTHER,
    ]
    steps = [
        {"name": "strip_html"},
        {"name": "quality_filter", "min_alphabetic_ratio": 0.6, "max_repeated_line_ratio": 0.3},
        {"name": "exact_dedup", "normalize": True},
        {"name": "minhash_dedup", "threshold": 0.8, "num_perm": 128, "shingle": "words",
         "shingle_size": 5, "seed": 1},
    ]  # fmt: skip
    result = clean_documents(docs, steps, ctx())
    assert result.texts == [PROSE, OTHER]
    assert result.kept == [0, 4]
    rows = {row["step"]: row for row in result.report}
    assert rows["strip_html"]["documents_removed"] == 0
    assert rows["strip_html"]["characters_removed"] == len("<p></p>")
    assert rows["quality_filter"]["documents_removed"] == 1
    assert rows["quality_filter"]["characters_removed"] == len("!!!! ???? 1234")
    assert rows["exact_dedup"]["documents_removed"] == 1  # the tagged copy, once stripped
    assert rows["minhash_dedup"]["documents_removed"] == 1  # "cockerel" for "rooster"
    assert rows["minhash_dedup"]["documents_out"] == 2


def test_empty_corpus_after_cleaning_is_a_data_error():
    with pytest.raises(kplug.DataError, match="empty after cleaning: step 'length_filter'"):
        clean_documents(["a", "b"], [{"name": "length_filter", "min_characters": 5}], ctx())


def test_minhash_processes_the_whole_pydoc_corpus_in_under_10_seconds():
    docs = pydoc_documents("section")
    assert sum(map(len, docs)) > 450_000
    # CPU time of this process (including the import of datasketch and the LSH's parameter
    # search), so that other processes on a shared machine do not count.
    start = time.process_time()
    kept = step("minhash_dedup").clean(docs)
    seconds = time.process_time() - start
    assert seconds < 10, f"MinHash took {seconds:.1f} s of CPU"
    # pydoc repeats whole sections under other headings (the underline differs, so exact
    # deduplication misses them); the first copy of each is kept.
    removed = [d for d, k in zip(docs, kept, strict=True) if k is None]
    assert 20 <= len(removed) <= 60
    assert kept[0] is not None


def test_minhash_band_keys_decide_as_datasketch_minhash_lsh_on_pydoc():
    """The compact index (band keys in a set) removes exactly the documents that
    datasketch's MinHashLSH, queried and filled in corpus order, finds candidates for."""
    from datasketch import MinHash, MinHashLSH

    docs = pydoc_documents("section")
    dedup = step("minhash_dedup", threshold=0.8)
    lsh = MinHashLSH(threshold=0.8, num_perm=128)
    signatures = MinHash.bulk(
        [[s for chunk in dedup.shingle_chunks(d) for s in chunk] for d in docs],
        num_perm=128, seed=1,
    )  # fmt: skip
    expected = []
    for number, signature in enumerate(signatures):
        expected.append(bool(lsh.query(signature)))
        if not expected[-1]:
            lsh.insert(number, signature)
    assert sum(expected) >= 20
    assert [k is None for k in dedup.clean(docs)] == expected
