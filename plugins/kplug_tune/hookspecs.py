"""The hook the tuning plugin declares (through `add_hookspecs`): plugins register
hyperparameter tuners with it, and `kplug list tuner` shows them."""

from __future__ import annotations

from collections.abc import Callable

import kplug

hookspec = kplug.hookspec

# Registration hook -> component kind, declared through the `component_kinds` hook.
KINDS = {"register_tuners": "tuner"}


@hookspec
def register_tuners(register: Callable[..., None]) -> None:
    """Register hyperparameter tuners (the recipe's ``search: {tuner: NAME}``).

    The factory returns an object with ``search(ctx)``, run by ``kplug tune``.
    """
