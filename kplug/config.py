"""`Config`: the base class of every component's parameters."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Config(BaseModel):
    """Parameters of a component, validated from its recipe section.

    Subclass it with typed, defaulted fields and pydantic constraints; unknown keys are
    errors, so a typo in a recipe never passes silently.

    Example:
    ```python
    class CNNConfig(kplug.Config):
        filters: list[PositiveInt] = [32, 64, 64]
        dense_units: PositiveInt = 64
    ```
    """

    model_config = ConfigDict(extra="forbid", frozen=True, protected_namespaces=())


class EmptyConfig(Config):
    """A component without parameters."""
