"""The links of an HTML page that a crawler may follow."""

from __future__ import annotations

from kplug_text.crawl.urls import normalize, url_problem


def page_links(html: bytes, url: str) -> list[str]:
    """Normalized absolute http(s) targets of the page's `<a href>`s, in page order, each
    once; relative links resolve against `<base href>` when the page has one."""
    import lxml.etree
    import lxml.html

    try:
        document = lxml.html.document_fromstring(html, base_url=url)
    except (ValueError, lxml.etree.ParserError):
        return []  # an empty or unparsable page has no links
    document.make_links_absolute(url, resolve_base_href=True, handle_failures="discard")
    links: dict[str, None] = {}
    for anchor in document.iter("a"):
        href = (anchor.get("href") or "").strip()
        if href and not url_problem(href):  # skips mailto:, javascript:, malformed
            links[normalize(href)] = None
    return list(links)
