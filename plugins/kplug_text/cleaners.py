"""Cleaning steps that rewrite text: HTML, Unicode, control characters, whitespace."""

from __future__ import annotations

import html
import re
import unicodedata
from typing import Literal

from pydantic import Field

import kplug
from kplug_text.components import Cleaner

# HTML elements that mark a document as HTML; prose such as "<class 'int'>" or "<expr>"
# (which pydoc is full of) is not a tag and must survive.
ELEMENTS = (  # noqa: SIM905 (a word list reads better than 58 quoted names)
    "a abbr article aside b blockquote body br code div dl dt dd em footer form h1 h2 h3 h4 "
    "h5 h6 head header hr html i img input li link main meta nav noscript ol p pre script "
    "section small span strong style sub sup table tbody td template th thead title tr u ul"
).split()
TAG = re.compile(
    r"<(?:!--|!doctype\b|/?(?:" + "|".join(ELEMENTS) + r")(?:\s[^<>]*)?/?>)", re.IGNORECASE
)
# Elements whose end is a line break in plain text.
BLOCKS = {"p", "div", "br", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "pre",
          "blockquote", "section", "article", "header", "footer", "table", "ul", "ol"}  # fmt: skip
INVISIBLE = ("script", "style", "noscript", "template", "head")
# A line of printable ASCII (tab allowed) without "&": ftfy leaves it exactly as it is (no
# mojibake, entity, escape, control character or line break to fix), so only the lines
# outside this set go through ftfy, whose per-line Python work is the slow part.
UNFIXABLE_LINES = re.compile(r"(?:[\t\x20-\x25\x27-\x7e]*\n)*[\t\x20-\x25\x27-\x7e]*")


class StripHtmlConfig(kplug.Config):
    main_content: bool = Field(
        False,
        description="keep only a web page's main text (trafilatura.extract: drops menus, "
        "footers, boilerplate) instead of all its text",
    )


class StripHtml(Cleaner):
    """Removes HTML tags (and script/style content) and decodes entities (`&amp;`).

    Only documents that contain a tag are parsed (with lxml), so prose that merely uses
    `<` and `>` (`a < b`) is left alone; entities are decoded everywhere.
    """

    def __init__(self, config: StripHtmlConfig, ctx: kplug.RunContext | None = None):
        self.config = config

    def clean(self, texts: list[str]) -> list[str | None]:
        return [self._strip(text) if TAG.search(text) else html.unescape(text) for text in texts]

    def _strip(self, text: str) -> str:
        if self.config.main_content:
            import trafilatura

            return trafilatura.extract(text) or ""
        import lxml.html

        root = lxml.html.fromstring(f"<div>{text}</div>")
        for element in root.iter(*INVISIBLE):
            element.drop_tree()
        for element in root.iter(*BLOCKS):
            element.tail = "\n" + (element.tail or "")
        return root.text_content().strip()


class NormalizeUnicodeConfig(kplug.Config):
    form: Literal["NFC", "NFKC", "NFD", "NFKD"] = Field(
        "NFKC", description="Unicode normalization form (NFKC folds ligatures, widths, ...)"
    )
    fix_mojibake: bool = Field(
        True, description="repair broken encodings first with ftfy (â€™ -> ’ ...)"
    )
    uncurl_quotes: bool = Field(False, description="ftfy: turn curly quotes into straight ones")


class NormalizeUnicode(Cleaner):
    """Repairs mojibake with ftfy and applies a Unicode normalization form."""

    def __init__(self, config: NormalizeUnicodeConfig, ctx: kplug.RunContext | None = None):
        self.config = config

    def in_graph(self):
        """The TensorFlow twin (tf-text's `normalize_utf8`), without ftfy's repairs,
        which are Python only."""
        if self.config.fix_mojibake:
            return None
        import tensorflow_text

        form = self.config.form
        return lambda texts: tensorflow_text.normalize_utf8(texts, form)

    def clean(self, texts: list[str]) -> list[str | None]:
        if not self.config.fix_mojibake:
            return [unicodedata.normalize(self.config.form, text) for text in texts]
        import ftfy

        fix = ftfy.TextFixerConfig(
            normalization=self.config.form, uncurl_quotes=self.config.uncurl_quotes
        )
        # ftfy normalizes only where it changed something; the form applies to all text.
        return [unicodedata.normalize(self.config.form, fix_text(ftfy, t, fix)) for t in texts]


def fix_text(ftfy, text: str, config) -> str:
    """`ftfy.fix_text(text, config)`, with ftfy run only on the lines it could change.

    ftfy fixes a text line by line, and its `unescape_html="auto"` stops decoding entities
    for the rest of the text from the first line holding "<": a run of lines it could
    change is fixed by one `fix_text` call told whether a "<" came before.
    """
    out, start = [], 0
    first_tag = text.find("<")
    while start < len(text):
        clean_end = UNFIXABLE_LINES.match(text, start).end()
        if clean_end == len(text):
            out.append(text[start:])
            break
        line_start = text.rfind("\n", start, clean_end) + 1
        out.append(text[start:line_start])
        # the fixable lines run to the next line ftfy cannot change (or the end)
        stop = line_start
        while stop < len(text):
            line_end = text.find("\n", stop)
            line_end = len(text) if line_end < 0 else line_end + 1
            if UNFIXABLE_LINES.fullmatch(text, stop, line_end) and stop > line_start:
                break
            stop = line_end
        part = config
        if config.unescape_html == "auto" and 0 <= first_tag < line_start:
            part = config._replace(unescape_html=False)
        out.append(ftfy.fix_text(text[line_start:stop], part))
        start = stop
    return "".join(out)


class RemoveCharactersConfig(kplug.Config):
    categories: list[str] = Field(
        ["Cc", "Cf", "Co", "Cs", "Cn"],
        description="Unicode general categories to remove (Cc control, Cf format such as "
        "zero-width spaces, Co private use, Cs surrogates, Cn unassigned; So symbols ...)",
    )
    keep: str = Field("\n\t", description="characters kept even if their category is listed")


class RemoveCharacters(Cleaner):
    """Removes control and other special characters by Unicode category."""

    def __init__(self, config: RemoveCharactersConfig, ctx: kplug.RunContext | None = None):
        self.categories = set(config.categories)
        self.keep = set(config.keep)

    def clean(self, texts: list[str]) -> list[str | None]:
        alphabet = set().union(*map(set, texts)) if texts else set()
        removed = {
            ord(ch): None
            for ch in alphabet
            if ch not in self.keep and unicodedata.category(ch) in self.categories
        }
        return [text.translate(removed) for text in texts]


class CollapseWhitespaceConfig(kplug.Config):
    keep_newlines: bool = Field(
        True,
        description="keep line breaks (at most one blank line in a row) and collapse spaces "
        "within lines; false: every run of whitespace becomes one space",
    )


class CollapseWhitespace(Cleaner):
    """Collapses runs of whitespace and strips it from both ends of every document."""

    SPACES = re.compile(r"[^\S\n]+")
    BLANK_LINES = re.compile(r"\n\s*\n\s*")
    ANY = re.compile(r"\s+")

    def __init__(self, config: CollapseWhitespaceConfig, ctx: kplug.RunContext | None = None):
        self.config = config

    def clean(self, texts: list[str]) -> list[str | None]:
        return [self._collapse(text) for text in texts]

    def _collapse(self, text: str) -> str:
        if not self.config.keep_newlines:
            return self.ANY.sub(" ", text).strip()
        lines = (self.SPACES.sub(" ", line).strip() for line in text.split("\n"))
        return self.BLANK_LINES.sub("\n\n", "\n".join(lines)).strip()
