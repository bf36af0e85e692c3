"""The hook the distribution plugin declares (through `add_hookspecs`): architectures'
plugins answer it to shard their weights under ``jax_model_parallel``. A plugin may
implement it whether or not this one is loaded; without it, it is never called."""

from __future__ import annotations

from typing import Any

import kplug

hookspec = kplug.hookspec


@hookspec
def layout_rules(architecture: str, config: Any) -> dict[str, list[str | None]] | None:
    """How to shard an architecture's weights under ``jax_model_parallel``.

    Called when a ``jax_model_parallel`` strategy is built, before the model. The rules
    fill a ``keras.distribution.LayoutMap`` on a device mesh with the axes ``batch`` and
    ``model``; the recipe's ``strategy.layouts`` override them.

    Args:
        architecture: the recipe's ``model.name``.
        config: that architecture's validated config.

    Returns:
        a dict of regex on variable paths (``variable.path``, e.g.
        ``".*attention.*query.*kernel"``) -> a mesh axis or None per dimension of the
        variable (``[None, "model"]`` splits a kernel's columns); or None when the
        architecture is not this plugin's.
    """
