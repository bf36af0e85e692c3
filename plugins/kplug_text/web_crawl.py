"""`web_crawl`: documents collected from the web by a polite crawler, main text only, then
cleaned, split and tokenized like any other text corpus."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import kplug
from kplug_text.corpus import Corpus, TextDataConfig, text_data
from kplug_text.crawl.options import CrawlConfig

if TYPE_CHECKING:
    from kplug_text.crawl.crawler import CrawlResult

SMOKE_MAX_PAGES = 10
DOCUMENTS_FILE = "web_crawl/documents.jsonl"


class WebCrawlConfig(TextDataConfig, CrawlConfig):
    """The crawl's options (`CrawlConfig`) and those of every text dataset."""


def load_web_crawl(config: WebCrawlConfig, ctx: kplug.RunContext) -> kplug.Data:
    from kplug_text.crawl.crawler import crawl

    if ctx.smoke and config.max_pages > SMOKE_MAX_PAGES:
        ctx.log.info("smoke run: crawling at most %d pages", SMOKE_MAX_PAGES)
        config = config.model_copy(update={"max_pages": SMOKE_MAX_PAGES})
    result = crawl(config)
    if not result.documents:
        raise kplug.DataError(no_documents_message(config, result))
    if ctx.directory is not None:
        lines = (json.dumps(vars(d), ensure_ascii=False) for d in result.documents)
        ctx.directory.write_text(DOCUMENTS_FILE, "".join(line + "\n" for line in lines))
    corpus = Corpus(
        [d.text for d in result.documents], source=f"web crawl from {', '.join(config.seeds)}"
    )
    data = text_data(corpus, config, ctx)
    crawl_report = {
        "crawl": result.report.summary(len(result.documents)),
        "crawl_skipped": result.report.skipped_by_reason(),
        "crawl_pages": [
            {"url": d.url, "title": d.title, "characters": len(d.text)} for d in result.documents
        ],  # fmt: skip
    }
    return data.replace(report={**crawl_report, **data.report})


def no_documents_message(config: WebCrawlConfig, result: CrawlResult) -> str:
    reasons = "; ".join(
        f"{row['reason']} ({row['urls']}, e.g. {row['example']})"
        for row in result.report.skipped_by_reason()
    )
    return (
        f"the crawl from {', '.join(config.seeds)} produced no document "
        f"({result.report.pages} HTML pages read, {result.report.requests} requests). "
        f"Skipped: {reasons or 'nothing'}. Check that the seeds are reachable and allowed "
        "by robots.txt, or lower data.min_characters."
    )


def estimate_web_crawl(config: WebCrawlConfig, facts: dict) -> dict:
    return {"max_documents": config.max_pages, "input_dtype": "text"}
