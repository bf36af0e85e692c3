"""`text_files`: documents from a file, a folder or a glob of .txt, .jsonl and .csv files."""

from __future__ import annotations

import csv
import glob
import io
import json
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

import kplug
from kplug_text.corpus import Corpus, TextDataConfig, pair_data_problem, streams, text_data

SUFFIXES = (".txt", ".jsonl", ".csv")


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


def find_files(pattern: str) -> list[Path]:
    """The data files a `path:` names, sorted; a DataError if there are none."""
    path = Path(pattern)
    if path.is_file():
        files = [path]
    elif path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.suffix in SUFFIXES and p.is_file())
    else:
        files = sorted(Path(p) for p in glob.glob(pattern, recursive=True) if Path(p).is_file())
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
    return files


def read_corpus(config: TextFilesConfig) -> Corpus:
    documents: list[str] = []
    pairs: list[str] | None = [] if config.pair_column else None
    labels: list[str] | None = [] if config.label_column else None
    skipped: dict[str, int] = {}
    for path in find_files(config.path):
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
    return Corpus(documents, labels, source=config.path, pairs=pairs, report=report)


def _read_text(path: Path, encoding: str) -> str:
    try:
        return path.read_bytes().decode(encoding)
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
        return [line for line in text.splitlines() if line.strip()]
    return [p for p in text.replace("\r\n", "\n").split("\n\n") if p.strip()]


def _records(path: Path, text: str):
    if path.suffix == ".csv":
        reader = csv.DictReader(io.StringIO(text, newline=""))
        for row in reader:
            yield f"{path}:{reader.line_num}", row
        return
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            raise kplug.DataError(f"{path}:{number}: not a JSON object: {error.msg}") from None
        if not isinstance(record, dict):
            raise kplug.DataError(f"{path}:{number}: each line must be a JSON object")
        yield f"{path}:{number}", record


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
    identity (path, size, mtime) is taken now and checked again after each is read."""
    from kplug_text.preparation import DocumentSource

    files = find_files(config.path)
    identities = [kplug.file_identity(p) for p in files]
    return DocumentSource(
        name="text_files",
        description=config.path,
        identity=identities,
        total_bytes=sum(i["size"] for i in identities),
        read=lambda: _stream_documents(files, identities, config),
    )


def _stream_documents(files: list[Path], identities: list[dict], config: TextFilesConfig):
    for path, identity in zip(files, identities, strict=True):
        try:
            with open(path, encoding=config.encoding, newline="") as handle:
                if path.suffix == ".txt":
                    yield from _txt_documents(handle.read(), config.txt_document)
                elif path.suffix == ".csv":
                    reader = csv.DictReader(handle)
                    for row in reader:
                        yield _field(row, config.text_column, f"{path}:{reader.line_num}",
                                     "text_column")  # fmt: skip
                else:
                    yield from _jsonl_texts(path, handle, config.text_column)
        except FileNotFoundError:
            raise kplug.DataError(
                f"{path} disappeared while the data was being prepared; restore it (or "
                "change data.path) and run again: nothing was cached."
            ) from None
        except UnicodeDecodeError as error:
            raise kplug.DataError(
                f"{path}: not valid {config.encoding} text ({error.reason}). Convert the file "
                "to UTF-8 (iconv -f latin1 -t utf-8), or set data.encoding to its encoding."
            ) from None
        except LookupError:
            raise kplug.DataError(
                f"data.encoding {config.encoding!r} is not a known encoding."
            ) from None
        _check_unchanged(path, identity)


def _jsonl_texts(path: Path, handle, column: str):
    for number, line in enumerate(handle, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            raise kplug.DataError(f"{path}:{number}: not a JSON object: {error.msg}") from None
        if not isinstance(record, dict):
            raise kplug.DataError(f"{path}:{number}: each line must be a JSON object")
        yield _field(record, column, f"{path}:{number}", "text_column")


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
