"""Main text and title of an HTML page, by trafilatura (navigation, headers, footers and
other boilerplate removed)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class WebDocument:
    """One extracted page: where it came from, its title and its main text."""

    url: str
    title: str
    text: str


def extract_main_text(
    html: bytes, url: str, *, favor: str = "balanced", include_tables: bool = True
) -> WebDocument:
    """The page's main text (empty when trafilatura finds none) and title."""
    import trafilatura

    extracted = trafilatura.bare_extraction(
        html,
        url=url,
        favor_precision=favor == "precision",
        favor_recall=favor == "recall",
        include_comments=False,
        include_tables=include_tables,
        with_metadata=True,
    )
    if extracted is None:
        return WebDocument(url, "", "")
    return WebDocument(url, extracted.title or "", extracted.text or "")
