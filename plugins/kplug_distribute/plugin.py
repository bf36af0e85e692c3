"""Registers the built-in distribution strategies."""

from __future__ import annotations

import kplug
from kplug_distribute.fit_strategy import FitStrategy


def make_default(config: kplug.EmptyConfig, ctx: kplug.RunContext) -> FitStrategy:
    return FitStrategy(name="default")


@kplug.hookimpl
def register_strategies(register):
    register(
        "default",
        make_default,
        summary="one device (the backend's default placement), Keras model.fit",
        estimate=lambda config, facts: {"replicas": 1},
    )
