"""`Config`: the base class of every component's parameters."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

# json_schema_extra keys marking a field that names other registered components.
COMPONENT_KIND = "kplug_component_kind"
COMPONENT_LIST = "kplug_component_list"


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

    model_config = ConfigDict(
        extra="forbid", frozen=True, protected_namespaces=(), allow_inf_nan=False
    )


class EmptyConfig(Config):
    """A component without parameters."""


def component_list(kind: str, *, default: list[Any] | None = None, description: str = "") -> Any:
    """A `Config` field holding a list of components of `kind` (`clean: [{name: ...}]`).

    The recipe validates each entry against its component's config, with file:line errors,
    and stores it as a dict with every default filled in; build one with
    `RunContext.build_nested(kind, entry)`. A bare name stands for `{name: NAME}`.
    """
    return Field(
        default_factory=lambda: list(default or []),
        description=description,
        json_schema_extra={COMPONENT_KIND: kind, COMPONENT_LIST: True},
    )


def component_ref(kind: str, *, default: Any = None, description: str = "") -> Any:
    """A `Config` field holding one component of `kind` (`tokenizer: {name: ...}`), or
    None; validated and stored like `component_list` entries."""
    return Field(default, description=description, json_schema_extra={COMPONENT_KIND: kind})


def component_kind(field: Any) -> str | None:
    """The component kind a field was declared with by `component_list`/`component_ref`."""
    extra = field.json_schema_extra
    return extra.get(COMPONENT_KIND) if isinstance(extra, dict) else None


def component_kind_is_list(field: Any) -> bool:
    """Whether a `component_kind` field holds a list (`component_list`) or one entry."""
    extra = field.json_schema_extra
    return isinstance(extra, dict) and bool(extra.get(COMPONENT_LIST))
