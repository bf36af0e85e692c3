"""A polite breadth-first web crawler with main-text extraction, behind `web_crawl`.

- `crawl(CrawlConfig(...))` -> `CrawlResult(documents, report)`: `WebDocument(url, title,
  text)` per HTML page with enough main text, and a `CrawlReport` (pages, network
  requests, cache hits, skipped URLs with reasons, extracted characters).
- `options.CrawlConfig`: seeds, allowed domains, limits, politeness, cache.
- `fetcher.Fetcher`, `robots_rules.RobotsRules`, `page_cache.PageCache`,
  `main_text.extract_main_text`, `links.page_links`, `urls`: the parts.
"""

from kplug_text.crawl.crawler import CrawlReport, CrawlResult, crawl
from kplug_text.crawl.main_text import WebDocument
from kplug_text.crawl.options import CrawlConfig

__all__ = ["CrawlConfig", "CrawlReport", "CrawlResult", "WebDocument", "crawl"]
