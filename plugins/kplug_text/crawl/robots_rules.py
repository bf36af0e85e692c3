"""`RobotsRules`: robots.txt of each origin, read once through the fetcher (and its cache)
and interpreted by the standard library's `urllib.robotparser`."""

from __future__ import annotations

from urllib.parse import urljoin
from urllib.robotparser import RobotFileParser

from kplug_text.crawl.fetcher import Fetcher
from kplug_text.crawl.urls import normalize, origin

MAX_ROBOTS_REDIRECTS = 5  # RFC 9309 2.3.1.2: follow at least five
MAX_ROBOTS_BYTES = 500 * 1024  # RFC 9309 2.5: parse at least the first 500 KiB


class RobotsRules:
    """Allow/deny and delay for URLs, from the robots.txt of their origin.

    An absent robots.txt (4xx) allows everything, except 401/403, which deny everything
    as `urllib.robotparser.RobotFileParser.read` does; an unreachable one (5xx, no
    connection) denies everything, as RFC 9309 asks.

    Args:
        fetcher: where robots.txt comes from.
        user_agent: the name matched against `User-agent:` lines.
        min_interval: the crawl's own spacing between requests to one host, in seconds.
    """

    def __init__(self, fetcher: Fetcher, user_agent: str, min_interval: float):
        self.fetcher, self.user_agent, self.min_interval = fetcher, user_agent, min_interval
        self._parsers: dict[str, RobotFileParser] = {}
        self.problems: dict[str, str] = {}

    def allowed(self, url: str) -> bool:
        return self._parser(url).can_fetch(self.user_agent, url)

    def interval(self, url: str) -> float:
        """Seconds between requests to the host of `url`: the crawl's own spacing, or the
        robots.txt Crawl-delay / Request-rate when it asks for more."""
        parser = self._parser(url)
        wishes = [self.min_interval, float(parser.crawl_delay(self.user_agent) or 0)]
        rate = parser.request_rate(self.user_agent)
        if rate is not None and rate.requests > 0:
            wishes.append(rate.seconds / rate.requests)
        return max(wishes)

    def _parser(self, url: str) -> RobotFileParser:
        key = origin(url)
        if key not in self._parsers:
            self._parsers[key] = self._read(key)
        return self._parsers[key]

    def _read(self, key: str) -> RobotFileParser:
        parser = RobotFileParser(f"{key}/robots.txt")
        location = parser.url
        for _ in range(MAX_ROBOTS_REDIRECTS + 1):
            page = self.fetcher.fetch(location, interval=self.min_interval, html_only=False)
            target = page.header("location")
            if 300 <= page.status < 400 and target:
                location = normalize(urljoin(location, target))
                continue
            break
        if page.status == 200:
            text = (page.body or b"")[:MAX_ROBOTS_BYTES].decode("utf-8", errors="replace")
            parser.parse(text.splitlines())
        elif page.status in (401, 403):
            parser.disallow_all = True
            self.problems[key] = f"robots.txt answered HTTP {page.status}: nothing allowed"
        elif 400 <= page.status < 500:
            parser.allow_all = True
        else:
            parser.disallow_all = True
            why = page.error or f"HTTP {page.status}"
            self.problems[key] = f"robots.txt unreachable ({why}): nothing allowed"
        return parser
