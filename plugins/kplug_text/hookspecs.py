"""The hooks the text plugin declares (through `add_hookspecs`): other plugins register
cleaning steps and tokenizers with them, and `kplug list cleaner` / `tokenizer` show them."""

from __future__ import annotations

from collections.abc import Callable

import kplug

hookspec = kplug.hookspec

# Registration hook -> component kind, declared through the `component_kinds` hook.
KINDS = {"register_cleaners": "cleaner", "register_tokenizers": "tokenizer"}


@hookspec
def register_cleaners(register: Callable[..., None]) -> None:
    """Register text cleaning steps (a text dataset's ``clean:`` list).

    The factory returns a `kplug_text.components.Cleaner`: its ``clean(texts)`` returns
    one entry per input text: the cleaned text, or None to drop it. Steps run in recipe
    order and each reports the documents and characters it removed into
    ``data_report.json``.
    """


@hookspec
def register_tokenizers(register: Callable[..., None]) -> None:
    """Register tokenizers (a text dataset's ``tokenizer:``).

    The factory returns an untrained `kplug_text.components.Tokenizer`; kplug trains it on
    the cleaned training documents (or loads its vocabulary file) and saves it into the run
    directory, so that generation works from the run directory alone.
    """
