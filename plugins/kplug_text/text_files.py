"""`text_files`: documents from a file, a folder or a glob of .txt, .jsonl and .csv files."""

from __future__ import annotations

import csv
import glob
import io
import json
import logging
import os
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

import kplug
from kplug_text.corpus import Corpus, TextDataConfig, pair_data_problem, streams, text_data

SUFFIXES = (".txt", ".jsonl", ".csv")
# Python's csv refuses fields over 128 KiB; a document can be longer than that.
MAX_CSV_FIELD = 16 << 20

log = logging.getLogger("kplug")


class TextFilesConfig(TextDataConfig):
    path: str = Field(
        description="a file, a folder (its .txt/.jsonl/.csv files, recursively) or a glob "
        "(data/*.csv); relative to the current directory"
    )
    text_column: str = Field("text", description=".jsonl/.csv: the field holding the text")
    label_column: str | None = Field(
        None, description=".jsonl/.csv: the field holding the class label; null: unlabelled"
    )
    pair_column: str | None = Field(
        None,
        description=".jsonl/.csv: the field holding the second text of a sentence pair "
        "(e.g. an NLI hypothesis; text_column holds the premise); x then holds (first, "
        "second) token arrays for objective pair_classification. Needs a tokenizer; "
        "refuses exact_dedup/minhash_dedup. null: one text per record",
    )
    skip_labels: list[str] = Field(
        [],
        description="records whose label_column value is one of these are left out and "
        "counted in the data report (e.g. ['-'], SNLI's pairs without a gold label)",
    )
    txt_document: Literal["file", "line", "paragraph"] = Field(
        "file", description=".txt: one document per file, per non-empty line or per paragraph"
    )
    encoding: str = Field("utf-8", description="text encoding of the files")

    @model_validator(mode="after")
    def _consistent_columns(self) -> TextFilesConfig:
        if self.skip_labels and not self.label_column:
            raise ValueError("skip_labels needs label_column (the field whose value is tested)")
        if self.pair_column is not None and (problem := pair_data_problem(self)):
            raise ValueError(problem)
        return self


def find_files(pattern: str, warnings: list[str] | None = None) -> list[Path]:
    """The data files a `path:` names, sorted, each real file once; a DataError if there
    are none. Symbolic links to folders are not followed (a link loop would repeat
    documents or never end); a file reached under two names is read once, with a warning."""
    path = Path(pattern)
    if path.is_file():
        files = [path]
    elif path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.suffix in SUFFIXES and p.is_file())
    else:
        files = sorted(p for p in _glob(pattern) if p.is_file())
    if not files:
        raise kplug.DataError(
            f"data.path {pattern!r} matches no file (cwd {Path.cwd()}); give a file, a folder "
            "of .txt/.jsonl/.csv files or a glob such as 'data/*.csv'."
        )
    unknown = [str(p) for p in files if p.suffix not in SUFFIXES]
    if unknown:
        raise kplug.DataError(
            f"cannot read {', '.join(unknown[:3])}: text_files reads .txt, .jsonl and .csv files."
        )
    return _each_real_file_once(files, warnings if warnings is not None else [])


def _glob(pattern: str) -> list[Path]:
    """`pattern` matched with pathlib, whose `**` does not descend into linked folders
    (glob.glob's does, and loops through a link to a parent)."""
    parts = Path(pattern).parts
    fixed = next((i for i, part in enumerate(parts) if glob.has_magic(part)), len(parts))
    root = Path(*parts[:fixed]) if fixed else Path(".")
    rest = str(Path(*parts[fixed:])) if fixed < len(parts) else ""
    if not rest or not root.is_dir():
        return []
    return list(root.glob(rest))


def _each_real_file_once(files: list[Path], warnings: list[str]) -> list[Path]:
    seen: dict[str, Path] = {}
    for file in files:
        real = os.path.realpath(file)
        if real in seen:
            warnings.append(f"data.path: {file} is {seen[real]} again (a link); read once")
            log.warning("%s", warnings[-1])
            continue
        seen[real] = file
    return list(seen.values())


def read_corpus(config: TextFilesConfig) -> Corpus:
    documents: list[str] = []
    pairs: list[str] | None = [] if config.pair_column else None
    labels: list[str] | None = [] if config.label_column else None
    skipped: dict[str, int] = {}
    warnings: list[str] = []
    for path in find_files(config.path, warnings):
        text = _read_text(path, config.encoding)
        if path.suffix == ".txt":
            if labels is not None or pairs is not None:
                option = "label_column" if labels is not None else "pair_column"
                raise kplug.DataError(
                    f"{path}: .txt files have no columns, so {option} "
                    f"{getattr(config, option)!r} cannot apply; use .csv or .jsonl for labels "
                    "and pairs."
                )
            documents.extend(_txt_documents(text, config.txt_document))
            continue
        for where, record in _records(path, text):
            if labels is not None:
                label = _field(record, config.label_column, where, "label_column")
                if label in config.skip_labels:
                    skipped[label] = skipped.get(label, 0) + 1
                    continue
                labels.append(label)
            documents.append(_field(record, config.text_column, where, "text_column"))
            if pairs is not None:
                pairs.append(_field(record, config.pair_column, where, "pair_column"))
    report = {"skipped_labels": skipped} if config.skip_labels else {}
    if warnings:
        report["warnings"] = warnings
    return Corpus(documents, labels, source=config.path, pairs=pairs, report=report)


def _read_text(path: Path, encoding: str) -> str:
    utf8 = encoding.lower().replace("_", "-") in ("utf-8", "utf8")
    try:
        # A byte-order mark (Excel's CSV) is not part of the text.
        return path.read_bytes().decode("utf-8-sig" if utf8 else encoding)
    except UnicodeDecodeError as error:
        raise kplug.DataError(
            f"{path}: not valid {encoding} text (byte {error.start}: "
            f"{error.object[error.start : error.start + 1]!r}). Convert the file to UTF-8 "
            "(iconv -f latin1 -t utf-8), or set data.encoding to its encoding."
        ) from None
    except LookupError:
        raise kplug.DataError(f"data.encoding {encoding!r} is not a known encoding.") from None


def _txt_documents(text: str, unit: str) -> list[str]:
    if unit == "file":
        return [text] if text.strip() else []  # an empty file is no document
    if unit == "line":
        return [line for line in _lines(text) if line.strip()]
    return [p for p in text.replace("\r\n", "\n").split("\n\n") if p.strip()]


def _records(path: Path, text: str):
    if path.suffix == ".csv":
        yield from _csv_records(path, text)
        return
    for number, line in enumerate(_lines(text), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            raise kplug.DataError(f"{path}:{number}: not a JSON object: {error.msg}") from None
        except RecursionError:
            raise kplug.DataError(
                f"{path}:{number}: the JSON record is nested too deeply to read; a record is "
                "an object of text and label fields."
            ) from None
        if not isinstance(record, dict):
            raise kplug.DataError(f"{path}:{number}: each line must be a JSON object")
        yield f"{path}:{number}", record


def _csv_records(path: Path, text: str):
    if csv.field_size_limit() < MAX_CSV_FIELD:
        csv.field_size_limit(MAX_CSV_FIELD)
    reader = csv.DictReader(io.StringIO(text, newline=""))
    try:
        for row in reader:
            if None in row:  # more fields than the header: an unquoted comma shifts them
                raise kplug.DataError(
                    f"{path}:{reader.line_num}: {len(reader.fieldnames) + len(row[None])} "
                    f"fields, the header has {len(reader.fieldnames)}; a field with a comma "
                    'must be quoted ("a, b").'
                )
            yield f"{path}:{reader.line_num}", row
    except csv.Error as error:
        raise kplug.DataError(
            f"{path}:{reader.line_num}: not readable as CSV ({error}); fields are at most "
            f"{MAX_CSV_FIELD >> 20} MiB and hold no NUL bytes."
        ) from None


def _lines(text: str) -> list[str]:
    """Lines split at "\\n" only: str.splitlines also splits at U+2028, U+0085 and other
    characters that JSON strings and text may hold."""
    return [line.removesuffix("\r") for line in text.split("\n")]


def _field(record: dict, column: str, where: str, option: str) -> str:
    if column not in record or record[column] is None:
        known = ", ".join(str(k) for k in record) or "(none)"
        raise kplug.DataError(
            f"{where}: no {option} {column!r} in this record (its columns: {known}); set "
            f"data.{option} to the right column."
        )
    return str(record[column])


def load_text_files(config: TextFilesConfig, ctx: kplug.RunContext) -> kplug.Data:
    pairs = config.pair_column is not None
    if streams(config, labelled=config.label_column is not None, pairs=pairs):
        from kplug_text.preparation import prepared_text_data

        return prepared_text_data(document_source(config), config, ctx)
    return text_data(read_corpus(config), config, ctx)


# ---------------------------------------------------------------------------------------
# Streamed reading (unlabelled text): one document at a time, files checked unchanged
# ---------------------------------------------------------------------------------------


def document_source(config: TextFilesConfig):
    """The files of `config.path` as a `DocumentSource` for a streamed preparation; their
    identity (path, size, mtime) is taken now and checked again after each is read. With
    `label_column`, it yields (text, label) pairs and counts the records of `skip_labels`
    into its report."""
    from kplug_text.preparation import DocumentSource

    files = find_files(config.path)
    identities = [kplug.file_identity(p) for p in files]
    source = DocumentSource(
        name="text_files",
        description=config.path,
        identity=identities,
        total_bytes=sum(i["size"] for i in identities),
        read=lambda: _stream_documents(files, identities, config, source.report),
        labelled=config.label_column is not None,
    )
    if config.skip_labels:
        source.report["skipped_labels"] = {}
    return source


def _stream_documents(files: list[Path], identities: list[dict], config: TextFilesConfig,
                      report: dict):  # fmt: skip
    """The documents of each file in turn: a JSONL file line by line; a .txt or .csv file
    is read whole (as the in-memory reader does)."""
    for path, identity in zip(files, identities, strict=True):
        try:
            if path.suffix == ".txt":
                if config.label_column is not None:
                    raise kplug.DataError(
                        f"{path}: .txt files have no columns, so label_column "
                        f"{config.label_column!r} cannot apply; use .csv or .jsonl for labels."
                    )
                yield from _txt_documents(_read_text(path, config.encoding), config.txt_document)
                continue
            if path.suffix == ".csv":
                records = _csv_records(path, _read_text(path, config.encoding))
            else:
                records = _jsonl_records(path, config)
            for where, record in records:
                yield from _document(record, where, config, report)
        except FileNotFoundError:
            raise kplug.DataError(
                f"{path} disappeared while the data was being prepared; restore it (or "
                "change data.path) and run again: nothing was cached."
            ) from None
        _check_unchanged(path, identity)


def _document(record: dict, where: str, config: TextFilesConfig, report: dict):
    """The record's text, or (text, label) with label_column; nothing for a skipped label."""
    if config.label_column is None:
        yield _field(record, config.text_column, where, "text_column")
        return
    label = _field(record, config.label_column, where, "label_column")
    if label in config.skip_labels:
        skipped = report["skipped_labels"]
        skipped[label] = skipped.get(label, 0) + 1
        return
    yield _field(record, config.text_column, where, "text_column"), label


def _jsonl_records(path: Path, config: TextFilesConfig):
    utf8 = config.encoding.lower().replace("_", "-") in ("utf-8", "utf8")
    try:
        # newline="\n": lines end at "\n" only, as `_lines` splits them
        with open(path, encoding="utf-8-sig" if utf8 else config.encoding, newline="\n") as handle:
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line.removesuffix("\n").removesuffix("\r"))
                except json.JSONDecodeError as error:
                    raise kplug.DataError(
                        f"{path}:{number}: not a JSON object: {error.msg}"
                    ) from None
                except RecursionError:
                    raise kplug.DataError(
                        f"{path}:{number}: the JSON record is nested too deeply to read; a "
                        "record is an object of text and label fields."
                    ) from None
                if not isinstance(record, dict):
                    raise kplug.DataError(f"{path}:{number}: each line must be a JSON object")
                yield f"{path}:{number}", record
    except UnicodeDecodeError as error:
        raise kplug.DataError(
            f"{path}: not valid {config.encoding} text ({error.reason}). Convert the file "
            "to UTF-8 (iconv -f latin1 -t utf-8), or set data.encoding to its encoding."
        ) from None
    except LookupError:
        raise kplug.DataError(
            f"data.encoding {config.encoding!r} is not a known encoding."
        ) from None


def _check_unchanged(path: Path, identity: dict) -> None:
    try:
        now = kplug.file_identity(path)
    except FileNotFoundError:
        now = None
    if now != identity:
        raise kplug.DataError(
            f"{path} changed while the data was being prepared (size or modification time "
            "differs from when preparation started); nothing was cached. Run again once "
            "the files stop changing."
        )
