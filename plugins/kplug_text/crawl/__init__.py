"""A polite breadth-first web crawler with main-text extraction, behind `web_crawl`.

- `crawler.crawl(CrawlConfig(...))` -> `CrawlResult(documents, report)`: a
  `WebDocument(url, title, text)` per HTML page with enough main text, and a `CrawlReport`
  (pages, network requests, cache hits, skipped URLs with reasons, extracted characters).
- `options.CrawlConfig`: seeds, allowed domains, limits, politeness, cache.
- `fetcher.Fetcher`, `robots_rules.RobotsRules`, `page_cache.PageCache`,
  `main_text.extract_main_text`, `links.page_links`, `urls`: the parts.

Only `options` (and `urls`) is imported when plugins load; the rest (httpx, tenacity,
courlan, trafilatura) when a crawl runs.
"""
