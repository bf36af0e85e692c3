"""Text data that used to be read wrong without a word (issue 14, items 3 and 16): a CSV
with a byte-order mark, JSONL whose strings hold U+2028 or U+0085, a CSV field over
128 KiB, a glob through symbolic link loops, a file reached under two names, and a single
.txt file that leaves validation and test empty (a warning in the data report and on
stderr). Each goes through `kplug data`: no model is built."""

from __future__ import annotations

import json
import os

import pytest

from kplug.cli import main

pytestmark = pytest.mark.xdist_group("bad_inputs")


def _data(tmp_path, capsys, path: str, *extra: str) -> tuple[dict, str]:
    recipe = tmp_path / "r.yaml"
    recipe.write_text(
        "name: t\n"
        f"data: {{name: text_files, path: {json.dumps(path)}, label_column: label,\n"
        "       validation_fraction: 0.25, test_fraction: 0.25, batch_size: 2}\n"
        "model: {name: rnn, units: 4, embedding_dim: 4}\n"
        "objective: {name: classification}\n"
    )
    code = main(["data", str(recipe), "--json", *extra])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    return json.loads(captured.out), captured.err


def test_a_csv_with_a_byte_order_mark_is_read(tmp_path, capsys):
    rows = "".join(f"doc {i},{'ab'[i % 2]}\n" for i in range(8))
    (tmp_path / "bom.csv").write_bytes(b"\xef\xbb\xbftext,label\n" + rows.encode())
    report, _ = _data(tmp_path, capsys, str(tmp_path / "bom.csv"))
    assert report["documents"]["input"] == 8


def test_jsonl_strings_may_hold_line_separators(tmp_path, capsys):
    lines = [json.dumps({"text": f"a\u2028b\u0085c {i}", "label": "ab"[i % 2]},
                        ensure_ascii=False) for i in range(8)]  # fmt: skip
    (tmp_path / "sep.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    report, _ = _data(tmp_path, capsys, str(tmp_path / "sep.jsonl"))
    assert report["documents"]["input"] == 8


def test_a_csv_field_over_128_kib_is_read(tmp_path, capsys):
    long = "word " * 40_000  # 200 kB
    rows = "".join(f"{long if i == 0 else 'short'},{'ab'[i % 2]}\n" for i in range(8))
    (tmp_path / "long.csv").write_text("text,label\n" + rows)
    report, _ = _data(tmp_path, capsys, str(tmp_path / "long.csv"))
    assert report["documents"]["input"] == 8


def test_a_glob_through_link_loops_reads_each_file_once(tmp_path, capsys):
    data = tmp_path / "data"
    (data / "sub").mkdir(parents=True)
    for i in range(8):
        (data / "sub" / f"{i}.csv").write_text(f"text,label\ndoc {i},{'ab'[i % 2]}\n")
    os.symlink(data, data / "sub" / "loop")  # a link back to the top
    os.symlink("..", data / "sub" / "up")  # and a second loop
    os.symlink(data / "sub" / "0.csv", data / "again.csv")  # one file under two names
    report, err = _data(tmp_path, capsys, f"{data}/**/*.csv")
    assert report["documents"]["input"] == 8  # not repeated through the loops
    assert f"{data / 'sub' / '0.csv'} is {data / 'again.csv'} again" in err or (
        f"{data / 'again.csv'} is {data / 'sub' / '0.csv'} again" in err
    )
    assert report["warnings"]


def test_a_single_txt_file_warns_that_validation_and_test_are_empty(tmp_path, capsys):
    (tmp_path / "book.txt").write_text("One line.\nAnother line.\nA third.\n")
    recipe = tmp_path / "r.yaml"
    recipe.write_text(
        f"name: t\ndata: {{name: text_files, path: {tmp_path / 'book.txt'}, batch_size: 2,\n"
        "       tokenizer: {name: char}}\n"
        "model: {name: rnn, units: 4, embedding_dim: 4}\n"
        "objective: {name: causal_lm, sequence_length: 4}\n"
    )
    code = main(["data", str(recipe), "--json"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert json.loads(captured.out)["warnings"]
    warning = "1 document(s) after cleaning, so the validation and test split(s) are empty"
    assert warning in captured.err and "data.txt_document: file" in captured.err
