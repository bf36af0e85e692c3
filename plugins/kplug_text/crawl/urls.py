"""URL checks of the crawler: validation, normalization, allowed domains, HTML-looking links.

Normalization is courlan's (lower-case scheme and host, default port dropped, query sorted,
tracking parameters removed); the standard library resolves relative links and dot
segments (`urljoin`) and drops fragments (`urldefrag`), which courlan keeps.
"""

from __future__ import annotations

from urllib.parse import urldefrag, urljoin, urlsplit, urlunsplit

SCHEMES = ("http", "https")


def url_problem(url: str) -> str | None:
    """Why `url` cannot be crawled (not http(s), no host, a bad port), or None if it can."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a port that is not a number 0-65535
    except ValueError as error:
        return f"not a valid URL ({error})"
    if parts.scheme.lower() not in SCHEMES:
        return "not an http(s) URL"
    if not parts.hostname:
        return "has no host"
    return None


def normalize(url: str, base: str | None = None) -> str:
    """The canonical form of `url` (resolved against `base`), used to deduplicate."""
    from courlan import normalize_url

    absolute, _fragment = urldefrag(urljoin(base, url) if base else url)
    parts = urlsplit(normalize_url(absolute))
    # `http://host` and `http://host/` are one resource; courlan leaves the empty path.
    return urlunsplit(parts._replace(path=parts.path or "/"))


def hostname(url: str) -> str:
    """The lower-case host of `url`, without port."""
    return (urlsplit(url).hostname or "").lower()


def origin(url: str) -> str:
    """`scheme://host[:port]`: the scope of one robots.txt."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def in_domains(url: str, domains: list[str]) -> bool:
    """Whether the host of `url` is one of `domains` or a subdomain of one."""
    host = hostname(url)
    return any(host == d or host.endswith("." + d) for d in domains)


def looks_like_html(url: str) -> bool:
    """False for links whose path ends in a non-web-page extension (.png, .pdf, .zip);
    the Content-Type of the response decides for the others."""
    from courlan.filters import extension_filter

    return extension_filter(urlsplit(url).path.lower())
