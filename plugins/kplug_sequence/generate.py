"""`kplug generate RUN_DIR`: sample text from any causal language model run.

It needs only the run directory: `model.keras`, the tokenizer saved in `tokenizer/` and
the objective's settings in `recipe.resolved.yaml`.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np
from kplug_text.components import Tokenizer

import kplug


def configure(parser: argparse.ArgumentParser):
    parser.add_argument("run_dir", help="a run directory, or runs/<name> (its newest run)")
    parser.add_argument("--prompt", default="", help="text to continue (default: none)")
    parser.add_argument("--max-tokens", type=int, default=200, help="tokens to generate")
    parser.add_argument("--temperature", type=float, default=1.0,
                        help="below 1: safer text, above 1: more varied; 0: greedy")  # fmt: skip
    parser.add_argument("--top-k", type=int, default=0,
                        help="sample among the k likeliest tokens only; 0: all")  # fmt: skip
    parser.add_argument("--seed", type=int, default=0, help="seed of the sampling")
    parser.add_argument("--stop-at-end", action="store_true",
                        help="stop at the end-of-text token (end of a document)")  # fmt: skip
    parser.add_argument("--trust-model", action="store_true",
                        help="load models that need unsafe deserialization")  # fmt: skip
    return handle


def handle(args: argparse.Namespace) -> int:
    if args.max_tokens < 0 or args.temperature < 0 or args.top_k < 0:
        raise kplug.KplugError("--max-tokens, --temperature and --top-k must be >= 0.")
    from kplug_text.tokenizer_files import load_tokenizer

    from kplug import load_model

    run_dir = run_directory(args.run_dir)
    settings = lm_settings(run_dir)
    tokenizer = load_tokenizer(run_dir)
    model = load_model(run_dir / "model.keras", trust=args.trust_model, compile=False)
    text = generate(
        model,
        tokenizer,
        args.prompt,
        max_tokens=args.max_tokens,
        temperature=args.temperature,
        top_k=args.top_k,
        seed=args.seed,
        sequence_length=settings["sequence_length"],
        from_logits=settings["from_logits"],
        stop_at_end=args.stop_at_end,
    )
    print(args.prompt + text)
    return 0


def run_directory(value: str) -> Path:
    """A run directory from a path or `runs/<name>` (its newest completed run)."""
    from kplug import resolve_init_path

    return resolve_init_path(value, key="RUN_DIR").parent


def lm_settings(run_dir: Path) -> dict[str, Any]:
    """The causal_lm objective's sequence length and output kind, from the run's recipe."""
    from kplug import run_objective

    objective = run_objective(
        run_dir, "causal_lm",
        "kplug generate samples from language models trained with objective causal_lm",
    )  # fmt: skip
    return {"sequence_length": objective["sequence_length"],
            "from_logits": objective.get("from_logits", False)}  # fmt: skip


def generate(
    model: Any,
    tokenizer: Tokenizer,
    prompt: str,
    *,
    max_tokens: int,
    temperature: float = 1.0,
    top_k: int = 0,
    seed: int = 0,
    sequence_length: int,
    from_logits: bool = False,
    stop_at_end: bool = False,
) -> str:
    """Sample a continuation of `prompt`, one token at a time, from a causal LM network
    (token ids in, next-token distributions out; dict inputs `token_ids` and
    `padding_mask` as keras-hub decoders take are supported). Returns the new text."""
    rng = np.random.default_rng(seed)
    end = tokenizer.special_ids.get("end")
    # Training streams put the end token before every document, so an empty prompt
    # starts a new document.
    context = tokenizer.encode(prompt) or ([end] if end is not None else [])
    if not context:
        raise kplug.KplugError("this tokenizer has no end-of-text token: give a --prompt.")
    generated: list[int] = []
    for _ in range(max_tokens):
        window = np.asarray([context[-sequence_length:]], dtype=np.int32)
        scores = np.asarray(_call(model, window))[0, -1].astype(np.float64)
        token = sample(scores, rng, temperature=temperature, top_k=top_k, from_logits=from_logits)
        if stop_at_end and token == end:
            break
        generated.append(token)
        context.append(token)
    return tokenizer.decode(generated)


def sample(
    scores: np.ndarray, rng: np.random.Generator, *, temperature: float, top_k: int,
    from_logits: bool,
) -> int:  # fmt: skip
    """One token id from probabilities (or logits), with temperature and top-k."""
    logits = scores if from_logits else np.log(np.maximum(scores, 1e-12))
    if temperature == 0:
        return int(np.argmax(logits))
    logits = logits / temperature
    if top_k and top_k < len(logits):
        cutoff = np.partition(logits, -top_k)[-top_k]
        logits = np.where(logits >= cutoff, logits, -np.inf)
    p = np.exp(logits - logits.max())
    return int(rng.choice(len(p), p=p / p.sum()))


def _call(model: Any, window: np.ndarray) -> Any:
    # predict_on_batch runs the backend's compiled predict step (traced once per shape,
    # with retracing relaxed on TensorFlow), much faster than eager calls token by token.
    if isinstance(model.input, dict):
        return model.predict_on_batch({"token_ids": window, "padding_mask": np.ones_like(window)})
    return model.predict_on_batch(window)


def generate_rows(
    model: Any, config: Any, inputs: kplug.Data, run_dir: Path, options: dict[str, Any]
) -> list[dict[str, Any]]:
    """`kplug predict` on a language model run: a continuation of each input text."""
    from kplug_text.tokenizer_files import load_tokenizer

    tokenizer = load_tokenizer(run_dir)
    rows = []
    for prompt in inputs.report["inputs"]:
        text = generate(
            model, tokenizer, prompt,
            max_tokens=options.get("max_tokens", 50),
            temperature=options.get("temperature", 0.0),
            top_k=options.get("top_k", 0),
            seed=options.get("seed", 0),
            sequence_length=config.sequence_length,
            from_logits=getattr(config, "from_logits", False),
            stop_at_end=True,
        )  # fmt: skip
        rows.append({"input": prompt, "generated": text})
    return rows
