"""Registers the built-in supervised objectives."""

from __future__ import annotations

import kplug
from kplug_supervised.classification import Classification, ClassificationConfig


@kplug.hookimpl
def register_objectives(register):
    register(
        "classification",
        Classification,
        config=ClassificationConfig,
        summary="integer class labels; cross-entropy loss, accuracy metric",
    )
