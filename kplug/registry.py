"""The component registry: what the plugins registered, by kind and name."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from kplug.config import Config, EmptyConfig
from kplug.errors import PluginError, UnknownComponentError

# The core's registration hook name -> component kind, in the order `kplug list` shows
# them. Plugins declare kinds of their own with the `component_kinds` hook.
KINDS: dict[str, str] = {
    "register_datasets": "dataset",
    "register_architectures": "architecture",
    "register_objectives": "objective",
    "register_strategies": "strategy",
    "register_compressors": "compressor",
    "register_callbacks": "callback",
    "register_exporters": "exporter",
}

BACKENDS = ("tensorflow", "jax", "torch")


class Register(Protocol):
    def __call__(
        self,
        name: str,
        factory: Callable[..., Any],
        *,
        config: type[Config] = EmptyConfig,
        summary: str = "",
        backends: Iterable[str] = (),
        estimate: Callable[..., dict[str, Any]] | None = None,
    ) -> None: ...


class RegisterCommand(Protocol):
    def __call__(
        self, name: str, configure: Callable[[Any], Callable[[Any], int]], *, summary: str = ""
    ) -> None: ...


@dataclass(frozen=True)
class RecipeSection:
    """A top-level recipe section a plugin adds (the `recipe_sections` hook).

    Args:
        kind: the kind of the one component the section names.
        name_key: the key naming it (`name` by default; a tuner's `search:` uses `tuner`).
        summary: one line on what the section is for.
    """

    kind: str
    name_key: str = "name"
    summary: str = ""


@dataclass(frozen=True)
class Component:
    """One registered component.

    Args:
        kind: `dataset`, `architecture`, ... (see `KINDS`).
        name: the name recipes use.
        factory: `factory(config, ctx)` builds it.
        config: the pydantic model of its parameters.
        summary: one line for `kplug list`.
        backends: Keras backends it supports; empty means all.
        plugin: the name of the plugin that registered it.
        estimate: optional cheap facts for `kplug plan`.
    """

    kind: str
    name: str
    factory: Callable[..., Any]
    config: type[Config]
    summary: str
    backends: tuple[str, ...]
    plugin: str
    estimate: Callable[..., dict[str, Any]] | None = None

    def supports(self, backend: str) -> bool:
        return not self.backends or backend in self.backends


class Registry:
    """All components by kind and name, plus the plugins that failed to load and the
    names two plugins registered (`conflicts`: using one is an error naming both).

    Args:
        kinds: the component kinds, in listing order; the core's `KINDS` by default.
    """

    def __init__(self, kinds: Iterable[str] | None = None):
        kinds = list(KINDS.values()) if kinds is None else list(kinds)
        self.components: dict[str, dict[str, Component]] = {kind: {} for kind in kinds}
        self.failed_plugins: dict[str, str] = {}
        self.conflicts: dict[tuple[str, str], str] = {}
        self.sections: dict[str, RecipeSection] = {}

    def add(self, component: Component) -> None:
        if component.kind not in self.components:
            raise PluginError(
                f"plugin {component.plugin!r} registered {component.name!r} as a "
                f"{component.kind!r}, a kind no loaded plugin declares."
            )
        existing = self.components[component.kind].get(component.name)
        if existing is not None:
            key = (component.kind, component.name)
            plugins = self.conflicts.get(key, f"by plugin {existing.plugin!r}")
            self.conflicts[key] = (
                f"{component.kind} {component.name!r} is registered twice: {plugins} and by "
                f"plugin {component.plugin!r}. Recipes naming it fail until one is renamed or "
                "its plugin is left out (KPLUG_LOAD_PLUGINS, KPLUG_DISABLE_PLUGINS)."
            )
            return
        if not (isinstance(component.config, type) and issubclass(component.config, Config)):
            raise PluginError(
                f"plugin {component.plugin!r} registered {component.kind} {component.name!r} "
                "with a config that is not a kplug.Config subclass."
            )
        unknown = set(component.backends) - set(BACKENDS)
        if unknown:
            raise PluginError(
                f"plugin {component.plugin!r} registered {component.kind} {component.name!r} "
                f"for unknown backends {sorted(unknown)}; use {', '.join(BACKENDS)}."
            )
        self.components[component.kind][component.name] = component

    def get(self, kind: str, name: str, *, where: str = "") -> Component:
        if (kind, name) in self.conflicts:
            raise PluginError(f"{where}{': ' if where else ''}{self.conflicts[kind, name]}")
        try:
            return self.components[kind][name]
        except KeyError:
            known = self.components.get(kind, {})
            raise UnknownComponentError(kind, name, known, where=where) from None

    def names(self, kind: str) -> list[str]:
        return sorted(self.components.get(kind, {}))

    def all(self, kind: str | None = None) -> list[Component]:
        kinds = [kind] if kind else list(self.components)
        return [self.components[k][n] for k in kinds for n in sorted(self.components[k])]

    def find(self, name: str) -> list[Component]:
        """Every component called `name`, whatever its kind."""
        return [c[name] for c in self.components.values() if name in c]

    def registrar(self, kind: str, plugin: str) -> Register:
        """The `register` callback handed to one plugin's registration hook."""

        def register(
            name: str,
            factory: Callable[..., Any],
            *,
            config: type[Config] = EmptyConfig,
            summary: str = "",
            backends: Iterable[str] = (),
            estimate: Callable[..., dict[str, Any]] | None = None,
        ) -> None:
            self.add(
                Component(
                    kind=kind,
                    name=name,
                    factory=factory,
                    config=config,
                    summary=summary,
                    backends=tuple(backends),
                    plugin=plugin,
                    estimate=estimate,
                )
            )

        return register
