"""The web crawler against a real HTTP server on 127.0.0.1 serving a site the test writes.

Every name lookup is checked: a request for anything but a loopback address fails the
test, so nothing here ever leaves the machine.
"""

from __future__ import annotations

import collections
import ipaddress
import json
import re
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pydantic
import pytest
from kplug_text.crawl.crawler import crawl
from kplug_text.crawl.options import CrawlConfig

from kplug import load_recipe
from kplug.cli import main
from kplug.runner import run

NAVIGATION = ["Subscribe to our newsletter", "All rights reserved", "Partner site"]


def _prose(topic: str, paragraphs: int) -> list[str]:
    """Plain-prose paragraphs of a CPython help topic (embedded English text)."""
    from pydoc_data.topics import topics

    blocks = [b.strip() for b in topics[topic].split("\n\n")]
    prose = [" ".join(b.split()) for b in blocks if len(b) > 120 and not b.startswith(" ")]
    return prose[:paragraphs]


ARTICLES = {
    "/": ("Welcome", _prose("assignment", 3)),
    "/articles/one.html": ("Loops", _prose("while", 2) + _prose("for", 2)),
    "/articles/two": ("Conditions", _prose("if", 1) + _prose("truth", 2)),
    "/articles/three.html": ("Exceptions", _prose("try", 3)),
    "/flaky": ("Functions", _prose("function", 3)),
}
LINKS = [
    ("/", "Home"),
    ("/articles/one.html#top", "Loops"),
    ("/articles/two?utm_source=nav", "Conditions"),
    ("/private/secret.html", "Private area"),
    ("/old-page", "Old page"),
    ("/missing", "Missing page"),
    ("/flaky", "Flaky page"),
    ("/files/data", "Download data"),
    ("/images/logo.png", "Logo"),
    ("http://partner.invalid/news", "Partner site"),
]


def _html(title: str, paragraphs: list[str]) -> bytes:
    nav = "".join(f'<li><a href="{href}">{text}</a></li>' for href, text in LINKS)
    body = "".join(f"<p>{p}</p>" for p in paragraphs)
    return (
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{title}</title></head>"
        f"<body><header><nav><ul>{nav}</ul></nav></header>"
        "<aside><h3>Sponsored</h3><p>Subscribe to our newsletter for weekly deals.</p></aside>"
        f"<main><article><h1>{title}</h1>{body}</article></main>"
        "<footer><p>Copyright 2024 Example Site. All rights reserved.</p></footer>"
        "</body></html>"
    ).encode()


class Site:
    """The test site on 127.0.0.1: its routes and every request it received, in order."""

    def __init__(self, crawl_delay: int | None):
        rules = "User-agent: *\nDisallow: /private/\n"
        if crawl_delay is not None:
            rules += f"Crawl-delay: {crawl_delay}\n"
        self.routes = {path: (200, "text/html; charset=utf-8", _html(title, text))
                       for path, (title, text) in ARTICLES.items()}  # fmt: skip
        self.routes["/robots.txt"] = (200, "text/plain", rules.encode())
        self.routes["/private/secret.html"] = (200, "text/html", _html("Secret", ["x" * 200]))
        self.routes["/files/data"] = (200, "application/octet-stream", bytes(range(256)) * 8)
        self.routes["/images/logo.png"] = (200, "image/png", b"\x89PNG\r\n\x1a\n")
        self.requests: list[tuple[str, float]] = []
        self.flaky_failures = 1
        self.busy_failures = 1
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def paths(self) -> collections.Counter:
        return collections.Counter(path for path, _ in self.requests)

    def _handler(self):
        site = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, so the client's pool is used

            def do_GET(self):  # noqa: N802 - the http.server API
                path = self.path.split("?")[0]
                site.requests.append((path, time.monotonic()))
                if path == "/old-page":
                    return self._send(301, "text/html", b"", location="/articles/three.html")
                if path == "/flaky" and site.flaky_failures:
                    site.flaky_failures -= 1
                    return self._send(500, "text/plain", b"try again")
                if path == "/busy" and site.busy_failures:
                    site.busy_failures -= 1
                    return self._send(429, "text/plain", b"slow down", retry_after="1")
                if path == "/busy":
                    return self._send(*site.routes["/"])
                if path == "/big":
                    return self._send_chunked(b"<p>" + b"word " * 2000 + b"</p>")
                if path not in site.routes:
                    return self._send(404, "text/html", b"<h1>Not found</h1>")
                self._send(*site.routes[path])

            def _send(self, status, content_type, body, location=None, retry_after=None):
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                if location:
                    self.send_header("Location", location)
                if retry_after:
                    self.send_header("Retry-After", retry_after)
                self.end_headers()
                self.wfile.write(body)

            def _send_chunked(self, body):
                self.send_response(200)
                self.send_header("Content-Type", "text/html")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                for start in range(0, len(body), 1000):
                    chunk = body[start : start + 1000]
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                self.wfile.write(b"0\r\n\r\n")

            def log_message(self, *args):
                pass

        return Handler

    def __enter__(self) -> Site:
        self.thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(autouse=True)
def loopback_only(monkeypatch):
    """Fail any name lookup (hence any connection) that is not a loopback address."""
    real_getaddrinfo = socket.getaddrinfo
    refused = []

    def getaddrinfo(host, *args, **kwargs):
        try:
            loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
        except ValueError:
            loopback = False
        if not loopback:
            refused.append(host)
            raise socket.gaierror(f"test guard: {host} is not a loopback address")
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    yield
    assert not refused, f"the crawl tried to leave loopback: {refused}"


def _config(site: Site, tmp_path, **options) -> CrawlConfig:
    defaults = dict(
        seeds=[site.url + "/"],
        allow_domains=["127.0.0.1"],
        rate_limit_per_host=50.0,
        timeout_s=5.0,
        retry_backoff_s=0.05,
        max_retries=2,
        cache_dir=str(tmp_path / "cache"),
    )
    return CrawlConfig(**{**defaults, **options})


def test_crawl_fetches_exactly_the_allowed_pages_at_the_robots_pace_then_from_cache(tmp_path):
    with Site(crawl_delay=1) as site:
        config = _config(site, tmp_path)
        result = crawl(config)
        first = site.paths()

        # robots.txt first; every allowed HTML-looking link once; the 500 retried once;
        # never the disallowed path, the .png or the other host.
        assert first == {
            "/robots.txt": 1, "/": 1, "/articles/one.html": 1, "/articles/two": 1,
            "/old-page": 1, "/articles/three.html": 1, "/missing": 1, "/flaky": 2,
            "/files/data": 1,
        }  # fmt: skip
        assert site.requests[0][0] == "/robots.txt"
        times = [t for _, t in site.requests]
        gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
        assert min(gaps) >= 0.95, f"requests closer than the 1 s Crawl-delay: {gaps}"

        assert sorted(d.url for d in result.documents) == sorted(
            site.url + path for path in ARTICLES
        )
        by_url = {d.url.removeprefix(site.url): d for d in result.documents}
        for path, (title, paragraphs) in ARTICLES.items():
            document = by_url[path]
            assert document.title == title
            for paragraph in paragraphs:
                assert paragraph[:80] in " ".join(document.text.split())
            for boilerplate in NAVIGATION:
                assert boilerplate not in document.text

        reasons = {s["url"].removeprefix(site.url): s["reason"] for s in result.report.skipped}
        assert reasons == {
            "/private/secret.html": "disallowed by robots.txt",
            "/missing": "HTTP 404",
            "/files/data": "not HTML: application/octet-stream",
            "/images/logo.png": "not an HTML link (file extension)",
            "http://partner.invalid/news": "outside allow_domains",
        }
        report = result.report
        assert (report.pages, report.requests, report.from_cache) == (5, 10, 0)
        assert report.redirects == 1
        assert report.extracted_characters == sum(len(d.text) for d in result.documents)

        again = crawl(config)
        assert site.paths() == first, "the second crawl sent requests despite the cache"
        assert (again.report.requests, again.report.from_cache) == (0, 9)
        assert again.documents == result.documents
        assert again.report.skipped == result.report.skipped


def test_limits_pages_depth_and_body_size(tmp_path):
    with Site(crawl_delay=None) as site:
        two = crawl(_config(site, tmp_path, max_pages=2, cache_dir=None))
        assert two.report.pages == 2
        assert "max_pages (2) reached" in {s["reason"] for s in two.report.skipped}

        seed_only = crawl(_config(site, tmp_path, max_depth=0, cache_dir=None))
        assert [d.url for d in seed_only.documents] == [site.url + "/"]

        big, index = site.url + "/big", site.url + "/"
        limit = len(site.routes["/"][2]) - 1  # the index is declared 1 byte too large
        small = crawl(_config(site, tmp_path, seeds=[big, index], max_depth=0,
                              max_page_bytes=limit, cache_dir=None))  # fmt: skip
        reasons = {s["url"]: s["reason"] for s in small.report.skipped}
        too_large = f"larger than max_page_bytes ({limit} bytes)"
        assert reasons == {big: too_large, index: too_large}  # /big: chunked, cut while read


def test_retry_after_is_obeyed_and_refresh_cache_fetches_again(tmp_path):
    with Site(crawl_delay=None) as site:
        config = _config(site, tmp_path, seeds=[site.url + "/busy"], max_depth=0)
        first = crawl(config)
        busy = [t for path, t in site.requests if path == "/busy"]
        assert len(busy) == 2 and busy[1] - busy[0] >= 0.95  # Retry-After: 1, backoff 0.05
        assert [d.url for d in first.documents] == [site.url + "/busy"]

        assert crawl(config).report.requests == 0
        refreshed = crawl(config.model_copy(update={"refresh_cache": True}))
        assert refreshed.report.requests == 2  # robots.txt and the page, again
        assert refreshed.documents == first.documents


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_an_unreachable_host_is_skipped_with_the_reason(tmp_path):
    closed = f"http://127.0.0.1:{_closed_port()}/"
    with Site(crawl_delay=None) as site:
        result = crawl(_config(site, tmp_path, seeds=[closed, site.url + "/"], max_depth=0))
    assert [d.url for d in result.documents] == [site.url + "/"]
    assert result.report.skipped == [
        {"url": closed, "reason": "robots.txt unreachable (connection refused): nothing allowed"}
    ]
    # robots.txt of the closed port: one try and max_retries (2) retries; then the site.
    assert result.report.requests == 3 + 2


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"seeds": ["not a url"]}, "is not an http(s) URL"),
        ({"seeds": ["http://"]}, "has no host"),
        ({"seeds": ["http://127.0.0.1:99999/"]}, "not a valid URL"),
        ({"seeds": ["https://example.org/"]}, "is outside allow_domains"),
        ({"allow_domains": ["https://example.org/a"]}, "is not a host name"),
        ({"max_pages": 0}, "greater than 0"),
        ({"seeds": []}, "at least 1 item"),
    ],
)
def test_bad_options_are_refused_before_any_request(options, message):
    base = {"seeds": ["http://127.0.0.1:1/"], "allow_domains": ["127.0.0.1"]}
    with pytest.raises(pydantic.ValidationError, match=re.escape(message)):
        CrawlConfig(**{**base, **options})


# --- the web_crawl dataset and recipes/web_corpus_lm.yaml --------------------------------

RECIPE = Path(__file__).resolve().parents[2] / "recipes" / "web_corpus_lm.yaml"


def _site_overrides(site: Site, tmp_path) -> list[str]:
    return [
        f"data.seeds=[{site.url}/]",
        "data.allow_domains=[127.0.0.1]",
        "data.rate_limit_per_host=50",
        "data.retry_backoff_s=0.05",
        f"data.cache_dir={tmp_path / 'cache'}",
    ]


def test_kplug_data_shows_the_crawl_and_the_cleaning_table(tmp_path, capsys):
    with Site(crawl_delay=None) as site:
        code = main(["data", str(RECIPE), *_site_overrides(site, tmp_path)])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "'pages_fetched': 5" in out and "'extracted_characters': " in out
    for reason in ("disallowed by robots.txt", "HTTP 404", "not HTML: application/octet-stream",
                   "outside allow_domains", "not an HTML link (file extension)"):  # fmt: skip
        assert reason in out
    assert "crawl_pages:" in out and f"{site.url}/articles/three.html" in out
    cleaning = out[out.index("cleaning:") :]
    for step in ("normalize_unicode", "length_filter", "exact_dedup", "minhash_dedup"):
        assert step in cleaning


@pytest.mark.xdist_group("tensorflow")
def test_web_corpus_lm_recipe_crawls_cleans_tokenizes_and_trains(tmp_path):
    with Site(crawl_delay=None) as site:
        # 16 per batch: the test site's few pages make fewer than two batches of 64.
        recipe = load_recipe(RECIPE, [*_site_overrides(site, tmp_path), "data.batch_size=16"])
        result = run(recipe, runs_root=tmp_path / "runs", smoke=True, argv=["test"])
        requests = len(site.requests)
    assert result.status == "completed"
    assert (result.directory / "metrics.json").is_file()
    lines = (result.directory / "web_crawl" / "documents.jsonl").read_text().splitlines()
    documents = [json.loads(line) for line in lines]
    assert {d["title"] for d in documents} == {title for title, _ in ARTICLES.values()}
    assert all(d["url"].startswith(site.url) and d["text"] for d in documents)
    report = json.loads((result.directory / "data_report.json").read_text())
    assert report["crawl"]["network_requests"] == requests
    assert report["tokenizer"]["name"] == "char"
    assert [row["step"] for row in report["cleaning"]][-1] == "minhash_dedup"


def test_bad_inputs_exit_2_with_the_fix(tmp_path, capsys):
    base = [str(RECIPE), f"data.cache_dir={tmp_path / 'cache'}", "data.retry_backoff_s=0",
            "data.rate_limit_per_host=50"]  # fmt: skip
    closed = f"http://127.0.0.1:{_closed_port()}/"
    cases = [
        (["data.seeds=[not a url]"], "is not an http(s) URL"),
        (["data.seeds=[https://example.org/]"], "seed 'https://example.org/' is outside"),
        (["data.max_pages=0"], "data.max_pages: Input should be greater than 0"),
        ([f"data.seeds=[{closed}]", "data.allow_domains=[127.0.0.1]"],
         "robots.txt unreachable (connection refused)"),
    ]  # fmt: skip
    for overrides, message in cases:
        assert main(["data", *base, *overrides]) == 2, overrides
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err, err
