"""Helpers for testing kplug plugins (used by kplug's own tests too).

Example:
```python
from kplug import testing

def test_my_architecture_runs(tmp_path):
    with testing.registered(my_plugin_module):
        result = testing.smoke_run(
            {"data": {"name": "synthetic", "shape": [8, 8, 1]},
             "model": {"name": "my_net"}, "objective": {"name": "classification"}},
            tmp_path,
        )
    assert result.metrics["test"]["loss"] > 0
```
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from kplug.errors import PluginError
from kplug.plugins import plugin_manager, registry
from kplug.recipe import Recipe
from kplug.registry import Registry


@contextlib.contextmanager
def registered(plugin: Any, name: str | None = None) -> Iterator[Registry]:
    """Register a throwaway plugin for the duration of a `with` block; yields the registry.

    A plugin already loaded (its distribution is installed, so its entry point loaded it)
    is used as it is and stays loaded after the block.
    """
    pm = plugin_manager()
    if pm.is_registered(plugin):
        yield registry()
        return
    holder = pm.get_plugin(name) if name else None
    if holder is not None:
        raise PluginError(
            f"testing.registered: a different plugin is already registered as {name!r} "
            f"({holder!r}); pass another name."
        )
    plugin_name = pm.register(plugin, name=name)
    try:
        yield registry()
    finally:
        pm.unregister(name=plugin_name)


def recipe(data: Mapping[str, Any], overrides: list[str] | tuple[str, ...] = ()) -> Recipe:
    """A validated recipe from a dict (`name` defaults to `test`), seen by plugins'
    `recipe_loaded` as `kplug.load_recipe` would let them see a file."""
    from kplug.plugins import plugin_manager, registry

    loaded = Recipe.from_dict({"name": "test", **data}, source="<test>", overrides=overrides,
                              registry=registry())  # fmt: skip
    plugin_manager().hook.recipe_loaded(recipe=loaded)
    return loaded


def smoke_run(
    data: Mapping[str, Any] | Recipe, runs_root: str | os.PathLike, *, smoke: bool = True,
    overrides: list[str] | tuple[str, ...] = (),
):  # fmt: skip
    """Run a recipe (a dict or a `Recipe`) in `runs_root`; a smoke run unless told not to."""
    from kplug.runner import run

    validated = data if isinstance(data, Recipe) else recipe(data, overrides)
    return run(validated, runs_root=runs_root, smoke=smoke, argv=["kplug", "test"])


def cli(*args: str, env: Mapping[str, str] | None = None, cwd: str | os.PathLike | None = None,
        timeout: float = 600) -> subprocess.CompletedProcess:  # fmt: skip
    """Run `kplug ARGS...` in a real child process; returns the completed process."""
    full_env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "kplug", *args],
        capture_output=True,
        text=True,
        env=full_env,
        cwd=cwd,
        timeout=timeout,
    )


def assert_user_error(result: subprocess.CompletedProcess, *fragments: str) -> None:
    """A bad-input failure: exit code 2, a message with every fragment, no traceback."""
    output = result.stdout + result.stderr
    assert result.returncode == 2, f"exit code {result.returncode}, output:\n{output}"
    assert "Traceback" not in output, output
    for fragment in fragments:
        assert fragment in output, f"{fragment!r} not in:\n{output}"


def assert_main_user_error(capsys: Any, args: list[str], *fragments: str) -> str:
    """`kplug ARGS...` run in this process (pytest's `capsys` captures it) is a bad-input
    failure as `assert_user_error` checks; returns its stderr."""
    from kplug.cli import main

    code = main(args)
    err = capsys.readouterr().err
    assert code == 2, f"exit code {code}, stderr:\n{err}"
    assert "Traceback" not in err, err
    for fragment in fragments:
        assert fragment in err, f"{fragment!r} not in:\n{err}"
    return err


def check_estimate(kind: str, name: str, config: Mapping[str, Any] | None = None,
                   facts: Mapping[str, Any] | None = None) -> dict[str, Any]:  # fmt: skip
    """A component's cheap `estimate` (for `kplug plan`), validated config in, facts out."""
    component = registry().get(kind, name)
    assert component.estimate is not None, f"{kind} {name!r} has no estimate"
    return component.estimate(component.config.model_validate(config or {}), dict(facts or {}))


def files_under(path: str | os.PathLike) -> set[Path]:
    """Every file below `path`, for asserting that nothing else was written."""
    return {p for p in Path(path).rglob("*") if p.is_file()}


BLOCK_KPLUG = """
import sys

class BlockKplug:
    # Any module named kplug or kplug_*: the model must load without them.
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0].startswith("kplug"):
            raise ImportError(f"{name} is blocked: the model must load without kplug")

sys.meta_path.insert(0, BlockKplug())
import keras
import numpy as np

arrays = np.load(sys.argv[1], allow_pickle=True)
out = {}
for i, path in enumerate(sys.argv[3:]):
    model = keras.saving.load_model(path)
    x = arrays[f"x{i}"].item() if arrays[f"x{i}"].dtype == object else arrays[f"x{i}"]
    out[f"y{i}"] = np.asarray(model.predict(x, verbose=0))
assert not [m for m in sys.modules if m.split(".")[0].startswith("kplug")]
np.savez(sys.argv[2], **out)
"""


def assert_loads_without_kplug(
    cases: list[tuple[str | os.PathLike, Any, Any]], workdir: str | os.PathLike,
    atol: float = 1e-5,
) -> None:  # fmt: skip
    """Each `(model_path, inputs, expected)`: `keras.saving.load_model(model_path)` in a new
    Python process where no kplug module can be imported predicts `expected` on `inputs`
    (an array or a dict of arrays). One process loads every model."""
    import numpy as np

    workdir = Path(workdir)
    inputs = workdir / "plain_inputs.npz"
    outputs = workdir / "plain_outputs.npz"
    packed = {}
    for i, (_, x, _) in enumerate(cases):
        packed[f"x{i}"] = np.array(x, dtype=object) if isinstance(x, dict) else x
    np.savez(inputs, **packed)
    result = subprocess.run(
        [sys.executable, "-c", BLOCK_KPLUG, str(inputs), str(outputs),
         *(str(path) for path, _, _ in cases)],
        capture_output=True, text=True, timeout=600,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}, cwd=workdir,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-4000:]
    got = np.load(outputs)
    for i, (path, _, expected) in enumerate(cases):
        np.testing.assert_allclose(got[f"y{i}"], np.asarray(expected), atol=atol,
                                   err_msg=str(path))  # fmt: skip


def saved_optimizer_steps(model_path: str | os.PathLike) -> int:
    """The optimizer's step counter saved in a run's `model.keras`: kplug saves Keras and
    keras-hub models without their compile configuration (so plain Keras loads them), so
    a loaded model has no optimizer; its variables are still in the file, the counter
    first."""
    import io
    import zipfile

    import h5py

    path = Path(model_path)
    path = path / "model.keras" if path.is_dir() else path
    with (
        zipfile.ZipFile(path) as archive,
        h5py.File(io.BytesIO(archive.read("model.weights.h5")), "r") as weights,
    ):
        return int(weights["optimizer/vars/0"][()])
