"""`PageCache`: fetched responses on disk, so that a crawl can be repeated without the network."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path


@dataclass
class Page:
    """One response as the crawler keeps it.

    Args:
        url: the requested URL (normalized).
        status: the HTTP status; 0 when no response came (see `error`).
        headers: the response headers, in order (names as the server sent them).
        body: the body, or None when it was not kept (not HTML, too large, not 200).
        note: why the body was not kept (`not HTML: image/png`, `larger than ...`).
        error: the last transport error when no response came (not cached).
        from_cache: whether this came from the cache rather than the network.
        attempts: requests sent for it in this run (0 from the cache).
    """

    url: str
    status: int = 0
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes | None = None
    note: str = ""
    error: str = ""
    from_cache: bool = False
    attempts: int = 0

    def header(self, name: str) -> str | None:
        name = name.lower()
        return next((value for key, value in self.headers if key.lower() == name), None)


class PageCache:
    """One JSON file of status and headers per URL, plus the body beside it when kept.

    Files are named by the SHA-256 of the normalized URL, under a two-character folder,
    and written atomically (temporary file, then rename), so an interrupted crawl never
    leaves a half-written entry.

    Args:
        directory: the cache folder; created when the first page is stored.
    """

    def __init__(self, directory: str | os.PathLike):
        self.directory = Path(directory)

    def get(self, url: str) -> Page | None:
        meta_path, body_path = self._paths(url)
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
            body = body_path.read_bytes() if meta.pop("has_body") else None
        except (OSError, ValueError, KeyError):
            return None  # a missing or damaged entry is fetched again
        if meta.get("url") != url:
            return None
        page = Page(**{k: v for k, v in meta.items() if k in Page.__dataclass_fields__})
        page.headers = [tuple(pair) for pair in page.headers]
        page.body, page.from_cache, page.attempts = body, True, 0
        return page

    def put(self, page: Page) -> None:
        meta_path, body_path = self._paths(page.url)
        meta_path.parent.mkdir(parents=True, exist_ok=True)
        if page.body is not None:
            _atomic_write(body_path, page.body)
        meta = asdict(page)
        for transient in ("body", "from_cache", "attempts", "error"):
            meta.pop(transient)
        meta["has_body"] = page.body is not None
        _atomic_write(meta_path, json.dumps(meta, indent=1).encode("utf-8"))

    def _paths(self, url: str) -> tuple[Path, Path]:
        key = hashlib.sha256(url.encode("utf-8")).hexdigest()
        folder = self.directory / key[:2]
        return folder / f"{key}.json", folder / f"{key}.body"


def _atomic_write(path: Path, data: bytes) -> None:
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(data)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
