"""The plugin manager: built-in and third-party plugins from the ``kplug`` entry points.

Built-in plugins are the entry points of the ``kplug`` distribution itself; they always
load. Third-party plugins load unless ``KPLUG_LOAD_PLUGINS`` is set: then only those it
names (comma-separated distribution or entry-point names; empty for none) load as well.
``KPLUG_TRACE=1`` prints every hook call.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from importlib import metadata
from typing import Any

import pluggy

from kplug import hookspecs
from kplug.errors import PluginError
from kplug.registry import KINDS, Registry

PROJECT = "kplug"
BUILTIN_DISTRIBUTION = "kplug"


@dataclass(frozen=True)
class PluginInfo:
    """A loaded (or failed) plugin, for `kplug plugins`."""

    name: str
    distribution: str
    version: str
    builtin: bool
    hooks: tuple[str, ...]
    error: str = ""


_manager: pluggy.PluginManager | None = None
_plugin_infos: dict[str, PluginInfo] = {}
_registry_cache: tuple[frozenset, Registry] | None = None


def plugin_manager() -> pluggy.PluginManager:
    """The process-wide plugin manager, loading the entry points on first use."""
    global _manager
    if _manager is None:
        pm = pluggy.PluginManager(PROJECT)
        pm.add_hookspecs(hookspecs)
        _load_entry_points(pm)
        if os.environ.get("KPLUG_TRACE"):
            pm.trace.root.setwriter(lambda message: sys.stderr.write(message))
            pm.enable_tracing()
        _manager = pm
    return _manager


def reset() -> None:
    """Forget the loaded plugins (for tests that change the environment or sys.path)."""
    global _manager, _registry_cache
    _manager = None
    _registry_cache = None
    _plugin_infos.clear()


def _allowlist() -> set[str] | None:
    value = os.environ.get("KPLUG_LOAD_PLUGINS")
    if value is None:
        return None
    return {item.strip() for item in value.split(",") if item.strip()}


def _load_entry_points(pm: pluggy.PluginManager) -> None:
    allowed = _allowlist()
    for ep in metadata.entry_points(group=PROJECT):
        dist = ep.dist.name if ep.dist else "?"
        version = ep.dist.version if ep.dist else "?"
        builtin = dist == BUILTIN_DISTRIBUTION
        if not builtin and allowed is not None and not {dist, ep.name} & allowed:
            continue
        if pm.has_plugin(ep.name) or ep.name in _plugin_infos:
            _plugin_infos[f"{dist}:{ep.name}"] = PluginInfo(
                ep.name, dist, version, builtin, (), error="a plugin with this name is loaded"
            )
            continue
        try:
            module = ep.load()
            pm.register(module, name=ep.name)
        except Exception as error:  # a broken plugin must not take the others down
            _plugin_infos[ep.name] = PluginInfo(
                ep.name, dist, version, builtin, (), error=f"{type(error).__name__}: {error}"
            )
            continue
        _plugin_infos[ep.name] = PluginInfo(ep.name, dist, version, builtin, _hooks_of(pm, module))


def _hooks_of(pm: pluggy.PluginManager, plugin: Any) -> tuple[str, ...]:
    return tuple(sorted(caller.name for caller in pm.get_hookcallers(plugin) or ()))


def plugins() -> list[PluginInfo]:
    """Every plugin: entry points (loaded or failed) and ones registered directly."""
    pm = plugin_manager()
    infos = dict(_plugin_infos)
    for name, plugin in pm.list_name_plugin():
        if name not in infos and plugin is not None:
            infos[name] = PluginInfo(name, "(registered)", "", False, _hooks_of(pm, plugin))
    return [infos[name] for name in sorted(infos)]


def registry() -> Registry:
    """The component registry, rebuilt whenever the set of registered plugins changes."""
    global _registry_cache
    pm = plugin_manager()
    key = frozenset((name, id(plugin)) for name, plugin in pm.list_name_plugin())
    if _registry_cache is None or _registry_cache[0] != key:
        _registry_cache = (key, _build_registry(pm))
    return _registry_cache[1]


def _build_registry(pm: pluggy.PluginManager) -> Registry:
    registry = Registry()
    for info in _plugin_infos.values():
        if info.error:
            registry.failed_plugins[info.name] = info.error
    for hook_name, kind in KINDS.items():
        for impl in getattr(pm.hook, hook_name).get_hookimpls():
            register = registry.registrar(kind, impl.plugin_name)
            try:
                impl.function(**{"register": register} if "register" in impl.argnames else {})
            except PluginError:
                raise
            except Exception as error:  # report the plugin, keep the others
                registry.failed_plugins[impl.plugin_name] = (
                    f"{hook_name} raised {type(error).__name__}: {error}"
                )
    return registry
