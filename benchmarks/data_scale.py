"""Wall time, peak memory and throughput of `kplug data` on corpora of 20 and 200 million
characters, then the time of a second, cached `kplug data` on the largest.

    .venv/bin/python benchmarks/data_scale.py [--sizes 20 200] [--workdir /tmp/kplug-scale]

Each corpus is built by ../shared/tools/build_corpus.py (source code and documentation of
the installed packages: real text with real duplicates) and prepared with the recipe of
issue 16 (text_files JSONL + normalize_unicode, length_filter, exact_dedup, minhash_dedup
+ a 16,000-token bpe + causal_lm windows of 256) in a fresh data cache. Peak RSS is the
largest sum over the `kplug data` process and all its children (the cleaning workers),
sampled every 20 ms. The machine's load average is printed with the figures: the
timings are only as good as the machine is quiet.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
BUILD_CORPUS = ROOT.parent / "shared" / "tools" / "build_corpus.py"
if not BUILD_CORPUS.is_file():
    BUILD_CORPUS = Path("/work/shared/tools/build_corpus.py")
RECIPE = """\
name: data-scale
seed: 42
data:
  name: text_files
  path: {path}
  batch_size: 32
  clean:
    - {{name: normalize_unicode}}
    - {{name: length_filter, min_characters: 200}}
    - {{name: exact_dedup}}
    - {{name: minhash_dedup, threshold: 0.8}}
  tokenizer: {{name: bpe, vocab_size: 16000}}
model: {{name: gpt2, layers: 2, heads: 2, hidden: 64, intermediate: 128, max_length: 256}}
objective: {{name: causal_lm, sequence_length: 256}}
train: {{epochs: 1}}
"""


def measure(command: list[str], env: dict[str, str]) -> tuple[float, int, str]:
    """Wall seconds, peak RSS (bytes) of the process tree, and stdout of `command`."""
    start = time.perf_counter()
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)  # fmt: skip
    parent = psutil.Process(process.pid)
    peak = 0
    while process.poll() is None:
        total = 0
        try:
            for member in [parent, *parent.children(recursive=True)]:
                total += member.memory_info().rss
        except psutil.Error:
            pass
        peak = max(peak, total)
        time.sleep(0.02)
    seconds = time.perf_counter() - start
    out, err = process.communicate()
    if process.returncode != 0:
        sys.exit(f"{' '.join(command)} failed ({process.returncode}):\n{err[-3000:]}")
    return seconds, peak, out


def prepare(recipe: Path, cache: Path) -> tuple[float, int, dict]:
    env = {**os.environ, "KPLUG_DATA_CACHE": str(cache), "TF_CPP_MIN_LOG_LEVEL": "2"}
    command = [sys.executable, "-m", "kplug", "data", str(recipe), "--json"]
    seconds, peak, out = measure(command, env)
    return seconds, peak, json.loads(out)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=float, nargs="+", default=[20, 200],
                        help="million characters per corpus")  # fmt: skip
    parser.add_argument("--workdir", default="/tmp/kplug-data-scale")
    args = parser.parse_args()
    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    print(f"load average before: {os.getloadavg()[0]:.2f} (1 min), cores: {os.cpu_count()}")
    rows = []
    for size in args.sizes:
        corpus = work / f"corpus_{size:g}M.jsonl"
        if not corpus.is_file():
            subprocess.run([sys.executable, str(BUILD_CORPUS), str(corpus), "--mb", str(size)],
                           check=True, stdout=subprocess.DEVNULL)  # fmt: skip
        recipe = work / f"recipe_{size:g}M.yaml"
        recipe.write_text(RECIPE.format(path=corpus))
        cache = work / f"cache_{size:g}M"
        shutil.rmtree(cache, ignore_errors=True)
        seconds, peak, report = prepare(recipe, cache)
        tokens = report["tokenizer"]["tokens"]
        rows.append((size, seconds, peak))
        load = os.getloadavg()[0]
        print(f"{size:g} M characters: wall {seconds:.1f} s, peak RSS {peak / 1e9:.2f} GB, "
              f"{size / seconds:.2f} MB/s, {tokens / seconds:,.0f} tokens/s "
              f"({tokens:,} tokens; load average {load:.2f})", flush=True)  # fmt: skip
        steps = {r["step"]: r["seconds"] for r in report["cleaning"]}
        print(f"  cleaning CPU seconds {steps}; tokenizer train "
              f"{report['tokenizer']['train_seconds']} s, encode "
              f"{report['tokenizer']['encode_seconds']} s", flush=True)  # fmt: skip
    if len(rows) > 1:
        print(f"peak RSS ratio {rows[-1][0]:g} M / {rows[0][0]:g} M: "
              f"{rows[-1][2] / rows[0][2]:.2f}")  # fmt: skip
    seconds, peak, report = prepare(recipe, cache)
    assert report["prepared"]["reused"], report["prepared"]
    print(f"second, cached kplug data on {args.sizes[-1]:g} M: {seconds:.1f} s, peak RSS "
          f"{peak / 1e9:.2f} GB (load average {os.getloadavg()[0]:.2f})")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
