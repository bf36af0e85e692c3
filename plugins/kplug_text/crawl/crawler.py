"""`Crawler`: breadth-first, polite crawl from seed URLs to extracted documents."""

from __future__ import annotations

import logging
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urljoin

from kplug_text.crawl.fetcher import Fetcher
from kplug_text.crawl.links import page_links
from kplug_text.crawl.main_text import WebDocument, extract_main_text
from kplug_text.crawl.options import CrawlConfig
from kplug_text.crawl.robots_rules import RobotsRules
from kplug_text.crawl.urls import in_domains, looks_like_html, normalize, origin

log = logging.getLogger("kplug.web_crawl")


@dataclass
class CrawlReport:
    """What a crawl did.

    Attributes:
        pages: HTML pages read (from the network or the cache).
        requests: requests sent to the network (robots.txt and retries included).
        from_cache: responses read from the cache instead (robots.txt included).
        redirects: redirects met; their targets are crawled as links.
        extracted_characters: characters of main text in the kept documents.
        skipped: one `{url, reason}` per URL not turned into a document.
        seconds: wall time of the crawl.
    """

    pages: int = 0
    requests: int = 0
    from_cache: int = 0
    redirects: int = 0
    extracted_characters: int = 0
    skipped: list[dict[str, str]] = field(default_factory=list)
    seconds: float = 0.0

    def skip(self, url: str, reason: str) -> None:
        log.debug("skip %s: %s", url, reason)
        self.skipped.append({"url": url, "reason": reason})

    def summary(self, documents: int) -> dict[str, Any]:
        return {
            "pages_fetched": self.pages,
            "network_requests": self.requests,
            "from_cache": self.from_cache,
            "redirects": self.redirects,
            "skipped": len(self.skipped),
            "documents": documents,
            "extracted_characters": self.extracted_characters,
            "seconds": round(self.seconds, 2),
        }

    def skipped_by_reason(self) -> list[dict[str, Any]]:
        """One row per reason: how many URLs, and the first of them."""
        counts = Counter(s["reason"] for s in self.skipped)
        first = {}
        for s in self.skipped:
            first.setdefault(s["reason"], s["url"])
        return [{"reason": r, "urls": n, "example": first[r]} for r, n in counts.most_common()]


@dataclass
class CrawlResult:
    documents: list[WebDocument]
    report: CrawlReport


class Crawler:
    """Visits URLs in breadth-first order from the seeds, within the allowed domains, as
    robots.txt allows and at its pace, until `max_pages` HTML pages were read.

    Args:
        config: the crawl options.
    """

    def __init__(self, config: CrawlConfig):
        self.config = config
        self.report = CrawlReport()
        self.documents: list[WebDocument] = []
        self._queue: deque[tuple[str, int]] = deque()
        self._seen: set[str] = set()

    def run(self) -> CrawlResult:
        start = time.perf_counter()
        with Fetcher(self.config) as fetcher:
            interval = 1.0 / self.config.rate_limit_per_host
            robots = RobotsRules(fetcher, self.config.user_agent, interval)
            for seed in self.config.seeds:
                self._enqueue(normalize(seed), 0)
            while self._queue and self.report.pages < self.config.max_pages:
                url, depth = self._queue.popleft()
                self._visit(url, depth, fetcher, robots)
            self.report.requests, self.report.from_cache = fetcher.requests, fetcher.cache_hits
        for url, _depth in self._queue:
            self.report.skip(url, f"max_pages ({self.config.max_pages}) reached")
        self.report.seconds = time.perf_counter() - start
        log.info("crawl: %s", self.report.summary(len(self.documents)))
        return CrawlResult(self.documents, self.report)

    def _enqueue(self, url: str, depth: int) -> None:
        if url in self._seen:
            return
        self._seen.add(url)
        if not in_domains(url, self.config.domains):
            self.report.skip(url, "outside allow_domains")
        elif not looks_like_html(url):
            self.report.skip(url, "not an HTML link (file extension)")
        else:
            self._queue.append((url, depth))

    def _visit(self, url: str, depth: int, fetcher: Fetcher, robots: RobotsRules) -> None:
        if not robots.allowed(url):
            reason = robots.problems.get(origin(url), "disallowed by robots.txt")
            self.report.skip(url, reason)
            return
        page = fetcher.fetch(url, interval=robots.interval(url))
        location = page.header("location")
        if page.error:
            self.report.skip(url, page.error)
        elif 300 <= page.status < 400 and location:
            self.report.redirects += 1
            self._enqueue(normalize(urljoin(url, location)), depth)
        elif page.status != 200:
            self.report.skip(url, f"HTTP {page.status}")
        elif page.body is None:
            self.report.skip(url, page.note)
        else:
            self.report.pages += 1
            self._keep(page.body, url)
            if depth < self.config.max_depth:
                for link in page_links(page.body, url):
                    self._enqueue(link, depth + 1)

    def _keep(self, html: bytes, url: str) -> None:
        document = extract_main_text(
            html, url, favor=self.config.favor, include_tables=self.config.include_tables
        )
        if len(document.text) < max(self.config.min_characters, 1):
            self.report.skip(url, "main text shorter than min_characters")
            return
        self.documents.append(document)
        self.report.extracted_characters += len(document.text)


def crawl(config: CrawlConfig) -> CrawlResult:
    """Crawl from `config.seeds` and extract the main text of every HTML page read."""
    return Crawler(config).run()
