"""Progress of a long preparation: a bar on a terminal, plain periodic lines in a log."""

from __future__ import annotations

import logging
import sys
import time

log = logging.getLogger("kplug")


class Progress:
    """Reports documents, MB/s and the ETA of a pass over `total_bytes` of input.

    On a terminal (stderr a TTY) a bar redrawn at most 5 times a second; otherwise an
    INFO log line every `every` seconds (train.log, CI logs).
    """

    def __init__(self, label: str, total_bytes: int, every: float = 10.0):
        self.label, self.total = label, max(total_bytes, 1)
        self.every = every
        self.terminal = sys.stderr.isatty()
        self.start = self.shown = time.perf_counter()
        self.done_bytes = self.documents = 0

    def update(self, nbytes: int, documents: int) -> None:
        self.done_bytes += nbytes
        self.documents += documents
        now = time.perf_counter()
        if now - self.shown >= (0.2 if self.terminal else self.every):
            self.shown = now
            self._show(now, final=False)

    def finish(self) -> None:
        self._show(time.perf_counter(), final=True)

    def _show(self, now: float, *, final: bool) -> None:
        seconds = max(now - self.start, 1e-9)
        rate = self.done_bytes / seconds / 1e6
        fraction = min(self.done_bytes / self.total, 1.0)
        eta = (seconds / fraction - seconds) if fraction > 0 else float("nan")
        text = (f"{self.label}: {self.documents:,} documents, {self.done_bytes / 1e6:,.1f} MB, "
                f"{rate:.1f} MB/s")  # fmt: skip
        if not self.terminal:
            tail = f" in {seconds:.1f} s" if final else f", {100 * fraction:.0f}%, ETA {eta:.0f} s"
            log.info("%s%s", text, tail)
            return
        width = 24
        bar = "#" * int(width * fraction) + "-" * (width - int(width * fraction))
        tail = f" {seconds:.1f} s" if final else f" ETA {eta:.0f} s"
        sys.stderr.write(f"\r[{bar}] {text}{tail}\033[K" + ("\n" if final else ""))
        sys.stderr.flush()
