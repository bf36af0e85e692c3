"""`kplug sample RUN_DIR -n 64 --out grid.png`: new samples from a GAN run's generator.

It needs only the run directory: `model.keras` (the `GAN`, loaded with safe_mode) and
`recipe.resolved.yaml`; `--score` also uses the run's scorer (`scorer.keras`, or the
recipe's `objective.scorer`).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np

import kplug

MAX_SAMPLES = 4096


def configure(parser: argparse.ArgumentParser):
    parser.add_argument("run_dir", help="a GAN run directory, or runs/<name> (its newest run)")
    parser.add_argument("-n", "--samples", type=int, default=64, help="number of samples")
    parser.add_argument("--out", default="samples.png", help="the PNG grid to write")
    parser.add_argument("--seed", type=int, default=0, help="seed of the noise")
    parser.add_argument("--score", action="store_true",
                        help="also print the run scorer's figures for these samples")  # fmt: skip
    parser.add_argument("--scorer", default=None,
                        help="with --score: another classifier (run dir or .keras)")  # fmt: skip
    parser.add_argument("--force", action="store_true", help="replace an existing --out file")
    parser.add_argument("--trust-model", action="store_true",
                        help="load models that need unsafe deserialization")  # fmt: skip
    return handle


def handle(args: argparse.Namespace) -> int:
    out = check_output(args.out, args.force)
    if not 1 <= args.samples <= MAX_SAMPLES:
        raise kplug.KplugError(f"-n must be between 1 and {MAX_SAMPLES}, got {args.samples}.")
    from kplug_sequence.generate import run_directory

    from kplug import load_model
    from kplug_gan.grid import write_png
    from kplug_gan.quality import score, to_unit

    run_dir = run_directory(args.run_dir)
    objective = adversarial_settings(run_dir)
    model = load_model(run_dir / "model.keras", trust=args.trust_model, compile=False)
    generator = getattr(model, "generator", None)
    if generator is None:
        raise kplug.RunError(f"{run_dir}/model.keras is not a GAN (it has no generator).")
    images = to_unit(sample(generator, args.samples, args.seed))
    if args.score:
        scorer = _scorer(run_dir, args.scorer or objective.get("scorer"), generator,
                         args.trust_model)  # fmt: skip
        figures = score(scorer, images)
        print(f"confidence={figures['confidence']:.4f} "
              f"class_entropy={figures['class_entropy']:.4f} "
              f"classes={figures['class_histogram']}")  # fmt: skip
    write_png(out, images)
    print(out)
    return 0


def sample(generator: Any, n: int, seed: int) -> np.ndarray:
    """`n` images from the generator (in its [-1, 1] range), for standard normal noise."""
    latent = int(generator.inputs[0].shape[-1])
    noise = np.random.default_rng(seed).standard_normal((n, latent)).astype(np.float32)
    return generator.predict(noise, batch_size=256, verbose=0)


def check_output(value: str, force: bool) -> Path:
    out = Path(value)
    if out.suffix.lower() != ".png":
        raise kplug.KplugError(f"--out {value}: the grid is a PNG; give a file name ending .png.")
    if not out.parent.is_dir():
        raise kplug.KplugError(f"--out {value}: the folder {out.parent} does not exist.")
    if out.exists() and not force:
        raise kplug.KplugError(f"--out {value} exists; pass --force to replace it.")
    return out


def adversarial_settings(run_dir: Path) -> dict[str, Any]:
    """The run's `objective:` section, checked to be the adversarial objective."""
    from kplug import run_objective

    return run_objective(
        run_dir, "adversarial",
        "kplug sample draws from GANs trained with objective adversarial "
        "(e.g. kplug run recipes/gan_mnist.yaml)",
    )  # fmt: skip


def _scorer(run_dir: Path, source: str | None, generator: Any, trust: bool) -> Any:
    """The classifier of --score: --scorer, the recipe's objective.scorer or scorer.keras."""
    from kplug_gan.adversarial import SCORER_FILE
    from kplug_gan.quality import load_scorer

    if source is None and not (run_dir / SCORER_FILE).is_file():
        raise kplug.RunError(
            f"{run_dir} has no {SCORER_FILE} (the run scored no samples); give --scorer "
            "(a classifier run) or run without --score."
        )
    source = source or str(run_dir / SCORER_FILE)
    return load_scorer(source, tuple(generator.outputs[0].shape[1:]), trust=trust)
