"""Whether the Keras backend a recipe names is installed, and the errors when it is not.

kplug installs without TensorFlow (`pip install 'kplug[jax]'`): a recipe on a backend that
is not installed, or a component that needs TensorFlow where it is missing, ends with a
clear error (exit 2) instead of an import traceback.
"""

from __future__ import annotations

import importlib.util

from kplug.errors import RunError

MODULES = {"tensorflow": "tensorflow", "jax": "jax", "torch": "torch"}
INSTALL = {
    "tensorflow": "pip install 'kplug[tensorflow]'",
    "jax": "pip install 'kplug[jax]' (on a GPU: 'jax[cuda12]')",
    "torch": "pip install torch",
}
# The TensorFlow family: TensorFlow and the packages named after it (tensorflow_text,
# tensorflow_datasets, ...), and tf_keras.
TENSORFLOW_PREFIXES = ("tensorflow", "tf_keras")


def installed(module: str) -> bool:
    """Whether `module` can be imported (without importing it)."""
    try:
        return importlib.util.find_spec(module) is not None
    except ImportError:  # an import hook refusing it: as good as missing
        return False


def require_backend(backend: str) -> None:
    """Raise `RunError` when the recipe's Keras backend is not installed."""
    if backend in MODULES and not installed(MODULES[backend]):
        raise RunError(
            f"the recipe runs on the {backend!r} backend (backend: {backend}), but "
            f"{MODULES[backend]} is not installed in this Python environment. Install it "
            f"({INSTALL[backend]}) or choose an installed backend: backend: "
            f"{' / '.join(b for b, m in MODULES.items() if installed(m)) or 'none found'}."
        )


def missing_tensorflow(error: BaseException) -> RunError | None:
    """The `RunError` for a component that imported TensorFlow where it is not installed;
    None for any other error."""
    name = getattr(error, "name", None) or ""
    if not isinstance(error, ModuleNotFoundError) or not name.startswith(TENSORFLOW_PREFIXES):
        return None
    return RunError(
        f"a component of this recipe needs TensorFlow ({name} could not be imported), and "
        "this kplug install has none (a TensorFlow-free `kplug[jax]` install). Install it "
        f"({INSTALL['tensorflow']}), or use components that run on JAX: `kplug list` shows "
        "each one's backends."
    )
