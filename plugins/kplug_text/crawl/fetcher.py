"""`Fetcher`: polite GET requests: per-host spacing, retries with backoff, size and type
limits, and the on-disk cache in front of the network."""

from __future__ import annotations

import email.message
import email.utils
import time
from datetime import datetime, timezone

import httpx
from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential

from kplug_text.crawl.options import CrawlConfig
from kplug_text.crawl.page_cache import Page, PageCache
from kplug_text.crawl.urls import hostname

HTML_TYPES = ("text/html", "application/xhtml+xml")
RETRY_STATUSES = (429, 500, 502, 503, 504)
MAX_RETRY_AFTER_S = 60.0


class TransientStatus(Exception):
    """A response worth retrying (429, 5xx); `retry_after` is the server's wish, if any."""

    def __init__(self, status: int, retry_after: float | None):
        super().__init__(f"HTTP {status}")
        self.status, self.retry_after = status, retry_after


class Fetcher:
    """Fetches URLs for one crawl through one pooled `httpx.Client`.

    Redirects are not followed here: the crawler treats a redirect's target as a new
    link, so robots.txt and the allowed domains apply to it too.

    Args:
        config: the crawl options (timeout, user agent, retries, size limit, cache).
    Attributes:
        requests: requests sent to the network so far (the cache sends none).
        cache_hits: responses read from the cache instead.
    """

    def __init__(self, config: CrawlConfig):
        self.config = config
        self.cache = PageCache(config.cache_path) if config.cache_path else None
        self.requests = 0
        self.cache_hits = 0
        self._last_request: dict[str, float] = {}
        self._client = httpx.Client(
            headers={"User-Agent": config.user_agent},
            timeout=config.timeout_s,
            follow_redirects=False,
            # No proxy or .netrc from the environment: a crawl goes where its recipe says.
            trust_env=False,
        )

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> Fetcher:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def fetch(self, url: str, *, interval: float, html_only: bool = True) -> Page:
        """The response for `url`: from the cache if there, else from the network with
        requests to its host at least `interval` seconds apart. `html_only` keeps only
        text/html bodies. Request errors become `Page.error` (transport errors after the
        retries)."""
        if self.cache is not None and not self.config.refresh_cache:
            cached = self.cache.get(url)
            if cached is not None:
                self.cache_hits += 1
                return cached
        page = Page(url)
        retrying = Retrying(
            stop=stop_after_attempt(self.config.max_retries + 1),
            wait=self._backoff,
            retry=retry_if_exception_type((httpx.TransportError, TransientStatus)),
            reraise=True,
        )
        try:
            for attempt in retrying:
                with attempt:
                    page.attempts += 1
                    self._request(page, interval, html_only)
        except TransientStatus:
            return page  # the last 5xx/429: reported, not cached, tried again next crawl
        except (httpx.RequestError, httpx.InvalidURL) as error:
            page.error = describe_error(error)
            return page
        if self.cache is not None:
            self.cache.put(page)
        return page

    def _request(self, page: Page, interval: float, html_only: bool) -> None:
        self._wait_for_slot(hostname(page.url), interval)
        self.requests += 1
        with self._client.stream("GET", page.url) as response:
            page.status = response.status_code
            page.headers = list(response.headers.items())
            page.body, page.note = None, ""
            if response.status_code in RETRY_STATUSES:
                raise TransientStatus(response.status_code, retry_after_s(response))
            if response.status_code != 200:
                return
            media_type = content_type(response.headers.get("content-type"))
            if html_only and media_type not in HTML_TYPES:
                page.note = f"not HTML: {media_type or 'no Content-Type'}"
                return
            page.body, page.note = read_limited(response, self.config.max_page_bytes)

    def _wait_for_slot(self, host: str, interval: float) -> None:
        # Spaced from the previous request with the interval known now, so a Crawl-delay
        # read from robots.txt already separates robots.txt from the first page.
        previous = self._last_request.get(host)
        if previous is not None:
            time.sleep(max(0.0, previous + interval - time.monotonic()))
        self._last_request[host] = time.monotonic()

    def _backoff(self, retry_state) -> float:
        exponential = wait_exponential(multiplier=self.config.retry_backoff_s, max=60)
        error = retry_state.outcome.exception()
        wish = getattr(error, "retry_after", None) or 0.0
        return max(exponential(retry_state), min(wish, MAX_RETRY_AFTER_S))


def content_type(value: str | None) -> str:
    """The lower-case media type of a Content-Type header, without parameters."""
    if not value:
        return ""
    message = email.message.Message()
    message["content-type"] = value
    return message.get_content_type()


def read_limited(response: httpx.Response, limit: int) -> tuple[bytes | None, str]:
    """The body if it has at most `limit` bytes, else (None, why); stops reading at the
    limit instead of downloading the rest."""
    too_large = f"larger than max_page_bytes ({limit} bytes)"
    declared = response.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        return None, too_large
    chunks, size = [], 0
    for chunk in response.iter_bytes():
        size += len(chunk)
        if size > limit:
            return None, too_large
        chunks.append(chunk)
    return b"".join(chunks), ""


def retry_after_s(response: httpx.Response) -> float | None:
    """Seconds a Retry-After header asks to wait (a number or an HTTP date), if any."""
    value = response.headers.get("retry-after")
    if not value:
        return None
    if value.strip().isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - datetime.now(timezone.utc)).total_seconds())


def describe_error(error: httpx.RequestError | httpx.InvalidURL) -> str:
    """`connection refused`, `timed out`, ... for the crawl report."""
    if isinstance(error, httpx.InvalidURL):
        return f"invalid URL ({error})"
    if isinstance(error, httpx.TimeoutException):
        return f"timed out ({type(error).__name__})"
    reason = str(error) or type(error).__name__
    if isinstance(error, httpx.ConnectError) and "refused" in reason.lower():
        return "connection refused"
    return reason
