"""Running a list of cleaning steps over documents and reporting what each removed."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import kplug


@dataclass
class CleanedCorpus:
    """The outcome of `clean_documents`.

    Args:
        texts: the documents that survived, cleaned, in their original order.
        kept: for each surviving document, its index in the input (to keep labels aligned).
        report: one row per step (`step`, documents/characters in, removed and out, seconds).
    """

    texts: list[str]
    kept: list[int]
    report: list[dict[str, Any]] = field(default_factory=list)


def clean_documents(
    texts: Sequence[str], steps: Sequence[dict[str, Any]], ctx: kplug.RunContext
) -> CleanedCorpus:
    """Apply cleaning steps in order; each step sees only the survivors of the previous.

    Args:
        texts: the raw documents.
        steps: resolved `clean:` entries (`{name: ..., **parameters}`), as a
            `kplug.component_list("cleaner")` field holds them.
        ctx: the run context (its registry builds the steps).

    Raises:
        kplug.DataError: when no document survives, naming the step that removed the last.
    """
    current = list(texts)
    kept = list(range(len(current)))
    rows = []
    for entry in steps:
        cleaner = ctx.build_nested("cleaner", entry)
        start = time.perf_counter()
        results = cleaner.clean(current)
        seconds = time.perf_counter() - start
        if len(results) != len(current):
            raise kplug.PluginError(
                f"cleaner {entry['name']!r} returned {len(results)} results for "
                f"{len(current)} documents; return one entry (text or None) per document."
            )
        survivors = [(i, t) for i, t in zip(kept, results, strict=True) if t is not None]
        rows.append(_row(entry["name"], current, [t for _, t in survivors], seconds))
        kept = [i for i, _ in survivors]
        current = [t for _, t in survivors]
        if not current:
            raise kplug.DataError(
                f"the corpus is empty after cleaning: step {entry['name']!r} removed the last "
                f"{rows[-1]['documents_in']} documents. Loosen that step's parameters or "
                "remove it from data.clean."
            )
    return CleanedCorpus(current, kept, rows)


def _row(step: str, before: list[str], after: list[str], seconds: float) -> dict[str, Any]:
    chars_before = sum(map(len, before))
    chars_after = sum(map(len, after))
    return {
        "step": step,
        "documents_in": len(before),
        "documents_removed": len(before) - len(after),
        "characters_removed": chars_before - chars_after,
        "documents_out": len(after),
        "characters_out": chars_after,
        "seconds": round(seconds, 3),
    }
