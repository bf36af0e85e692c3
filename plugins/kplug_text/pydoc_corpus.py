"""`pydoc_corpus`: the English prose of CPython's `pydoc_data.topics` (about 465,000
characters in 79 help topics), shipped with every Python: the embedded text default."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pydantic import Field

import kplug
from kplug_text.corpus import Corpus, TextDataConfig, streams, text_data

# A heading is a line underlined by a line of one repeated character (reStructuredText).
UNDERLINE = re.compile(r"^([=\-~*^])\1{2,}$")
PARAGRAPH_BREAK = re.compile(r"\n[^\S\n]*\n")


class PydocCorpusConfig(TextDataConfig):
    document: Literal["topic", "section", "paragraph"] = Field(
        "section",
        description="what one document is: a help topic (79), a section of a topic under "
        "its own heading (~200), or a paragraph (~2,600)",
    )


def pydoc_documents(unit: str) -> list[str]:
    """The pydoc help topics cut into documents, in topic (alphabetical) order."""
    from pydoc_data.topics import topics

    documents = []
    for name in sorted(topics):
        text = topics[name]
        if unit == "topic":
            documents.append(text)
        elif unit == "section":
            documents.extend(_sections(text))
        else:
            documents.extend(p for p in PARAGRAPH_BREAK.split(text) if p.strip())
    return documents


def _sections(text: str) -> list[str]:
    lines = text.split("\n")
    starts = [0] + [
        i
        for i in range(1, len(lines) - 1)
        if UNDERLINE.match(lines[i + 1]) and len(lines[i + 1]) == len(lines[i]) and lines[i]
    ]
    bounds = zip(starts, [*starts[1:], len(lines)], strict=True)
    return [s for s in ("\n".join(lines[a:b]) for a, b in bounds) if s.strip()]


def load_pydoc_corpus(config: PydocCorpusConfig, ctx: kplug.RunContext) -> kplug.Data:
    source = f"pydoc_data.topics ({config.document}s)"
    if streams(config, labelled=False, pairs=False):
        return _prepared(config, source, ctx)
    return text_data(Corpus(pydoc_documents(config.document), source=source), config, ctx)


def _prepared(config: PydocCorpusConfig, description: str, ctx: kplug.RunContext) -> kplug.Data:
    import pydoc_data.topics

    from kplug_text.preparation import DocumentSource, prepared_text_data

    identity = kplug.file_identity(Path(pydoc_data.topics.__file__))
    source = DocumentSource(
        name="pydoc_corpus",
        description=description,
        identity=identity,
        total_bytes=identity["size"],
        read=lambda: iter(pydoc_documents(config.document)),
    )
    return prepared_text_data(source, config, ctx)


def estimate_pydoc_corpus(config: PydocCorpusConfig, facts: dict) -> dict:
    return {"documents": len(pydoc_documents(config.document)), "input_dtype": "text"}
