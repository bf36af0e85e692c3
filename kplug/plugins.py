"""The plugin manager: built-in and third-party plugins from the ``kplug`` entry points.

Built-in plugins are the entry points of the ``kplug`` distribution itself; they load
unless ``KPLUG_DISABLE_PLUGINS`` names them (essential ones cannot be disabled). Third-party
plugins load unless ``KPLUG_LOAD_PLUGINS`` is set: then only those it names
(comma-separated distribution or entry-point names; empty for none) load as well.
``KPLUG_TRACE=1`` prints every hook call.

Isolation, as in pytest: a plugin that fails to import or to register, or that registers
a name another plugin has, is reported by name (a warning; its traceback with ``--debug``)
and the other plugins keep working. A recipe or command that needs a component of a
failed plugin, or a name two plugins claim, fails with an error naming them.
"""

from __future__ import annotations

import logging
import os
import sys
import traceback
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import metadata
from typing import Any

import pluggy

from kplug import hookspecs
from kplug.errors import KplugError, PluginError
from kplug.inference import hookspecs as inference_hookspecs
from kplug.registry import KINDS, RecipeSection, Registry

PROJECT = "kplug"
BUILTIN_DISTRIBUTION = "kplug"
log = logging.getLogger("kplug.plugins")


@dataclass(frozen=True)
class PluginInfo:
    """A loaded (or failed) plugin, for `kplug plugins`."""

    name: str
    distribution: str
    version: str
    builtin: bool
    hooks: tuple[str, ...]
    error: str = ""
    traceback: str = ""


_manager: pluggy.PluginManager | None = None
_plugin_infos: dict[str, PluginInfo] = {}
_registry_cache: tuple[frozenset, Registry] | None = None
_warned: set[str] = set()


def debugging() -> bool:
    """Whether `--debug` was given (the CLI sets ``KPLUG_DEBUG``): tracebacks are shown."""
    return bool(os.environ.get("KPLUG_DEBUG"))


def plugin_manager() -> pluggy.PluginManager:
    """The process-wide plugin manager, loading the entry points on first use."""
    global _manager
    if _manager is None:
        pm = pluggy.PluginManager(PROJECT)
        pm.add_hookspecs(hookspecs)
        pm.add_hookspecs(inference_hookspecs)
        # Historic: every plugin registered later gets it too, before its hooks are used.
        pm.hook.add_hookspecs.call_historic(kwargs={"plugin_manager": pm})
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
    _warned.clear()


def _names_in(variable: str) -> set[str] | None:
    value = os.environ.get(variable)
    if value is None:
        return None
    return {item.strip() for item in value.split(",") if item.strip()}


def _load_entry_points(pm: pluggy.PluginManager) -> None:
    allowed = _names_in("KPLUG_LOAD_PLUGINS")
    disabled = _names_in("KPLUG_DISABLE_PLUGINS") or set()
    entry_points = list(metadata.entry_points(group=PROJECT))
    _warn_unknown_names(entry_points, allowed, "KPLUG_LOAD_PLUGINS")
    _warn_unknown_names(entry_points, disabled, "KPLUG_DISABLE_PLUGINS")
    for ep in entry_points:
        dist = ep.dist.name if ep.dist else "?"
        version = ep.dist.version if ep.dist else "?"
        builtin = dist == BUILTIN_DISTRIBUTION
        if not builtin and allowed is not None and not {dist, ep.name} & allowed:
            continue
        if pm.has_plugin(ep.name) or ep.name in _plugin_infos:
            _fail(PluginInfo(ep.name, dist, version, builtin, (),
                             error=f"a plugin named {ep.name!r} is already loaded"),
                  key=f"{dist}:{ep.name}")  # fmt: skip
            continue
        try:
            module = ep.load()
        except Exception as error:  # a broken plugin must not take the others down
            _fail(PluginInfo(ep.name, dist, version, builtin, (), error=_one_line(error),
                             traceback=traceback.format_exc()))  # fmt: skip
            continue
        if {dist, ep.name} & disabled:
            if not getattr(module, "ESSENTIAL", False):
                continue
            _warn(f"disable:{ep.name}", f"plugin {ep.name!r} is essential to kplug and "
                  "cannot be disabled; remove it from KPLUG_DISABLE_PLUGINS.")  # fmt: skip
        try:
            pm.register(module, name=ep.name)
        except Exception as error:  # an unknown hook name, a bad hookimpl signature
            _fail(PluginInfo(ep.name, dist, version, builtin, (), error=_one_line(error),
                             traceback=traceback.format_exc()))  # fmt: skip
            continue
        _plugin_infos[ep.name] = PluginInfo(ep.name, dist, version, builtin, _hooks_of(pm, module))


def _warn_unknown_names(entry_points: Iterable, names: set[str] | None, variable: str) -> None:
    if not names:
        return
    known = {ep.name for ep in entry_points} | {ep.dist.name for ep in entry_points if ep.dist}
    unknown = sorted(names - known)
    if unknown:
        _warn(variable, f"{variable} names {', '.join(map(repr, unknown))}, which no installed "
              f"distribution provides; the plugins are: {', '.join(sorted(known))}.")  # fmt: skip


def _one_line(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"


def _fail(info: PluginInfo, key: str | None = None) -> None:
    _plugin_infos[key or info.name] = info
    report_failure(info.name, info.error, info.traceback)


def report_failure(plugin: str, error: str, trace: str = "") -> None:
    """Warn (once) that `plugin` failed and is left out; its traceback with --debug."""
    hint = "" if debugging() else " (rerun with --debug for its traceback)" if trace else ""
    _warn(f"failed:{plugin}:{error}",
          f"plugin {plugin!r} failed and is left out: {error}{hint}")  # fmt: skip
    if trace and debugging():
        log.warning("%s", trace.rstrip())


def _warn(key: str, message: str) -> None:
    """Warn once per process (the registry is rebuilt when test plugins come and go)."""
    if key not in _warned:
        _warned.add(key)
        log.warning("%s", message)


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


def component_kinds(pm: pluggy.PluginManager) -> dict[str, str]:
    """Registration hook name -> component kind: the core's, then those plugins declare."""
    kinds = dict(KINDS)
    for declared in each_result(pm, "component_kinds"):
        kinds.update({hook: kind for hook, kind in declared.items() if hasattr(pm.hook, hook)})
    return kinds


def each_result(pm: pluggy.PluginManager, hook_name: str, **kwargs: Any) -> list[Any]:
    """Every plugin's non-None result of `hook_name`; one that raises is reported by name
    (a warning, its traceback under --debug) and left out."""
    results = []
    for plugin, outcome in call_each(pm, hook_name, **kwargs):
        if isinstance(outcome, BaseException):
            report_failure(plugin, f"{hook_name} raised {_one_line(outcome)}",
                            "".join(traceback.format_exception(outcome)))  # fmt: skip
        elif outcome is not None:
            results.append(outcome)
    return results


def call_each(pm: pluggy.PluginManager, hook_name: str, **kwargs: Any) -> list[tuple[str, Any]]:
    """Call every plugin's `hook_name` on its own: [(plugin, result or the exception)].

    Unlike ``pm.hook.NAME(...)``, one plugin raising neither hides the others' results
    nor stops them from being called.
    """
    caller = getattr(pm.hook, hook_name, None)
    if caller is None:
        return []
    outcomes: list[tuple[str, Any]] = []
    for impl in reversed(caller.get_hookimpls()):  # pluggy's order: last registered first
        arguments = {name: kwargs[name] for name in impl.argnames if name in kwargs}
        try:
            outcomes.append((impl.plugin_name, impl.function(**arguments)))
        except Exception as error:  # the caller reports it by the plugin's name
            outcomes.append((impl.plugin_name, error))
    return outcomes


def call_lifecycle(hook_name: str, *, fail: bool = False, **kwargs: Any) -> None:
    """Call a lifecycle hook of every plugin, each on its own. A plugin that raises is
    reported by name as a warning (its traceback with --debug) and the others still run;
    with `fail`, the first error fails the caller instead: a `KplugError` as it is (a
    plugin refusing), anything else as a `PluginError` naming the plugin."""
    for plugin, outcome in call_each(plugin_manager(), hook_name, **kwargs):
        if isinstance(outcome, KplugError) and fail:
            raise outcome
        if isinstance(outcome, BaseException) and fail:
            raise PluginError(
                f"plugin {plugin!r}: {hook_name} raised {_one_line(outcome)} (rerun with "
                "--debug for its traceback; KPLUG_DISABLE_PLUGINS or KPLUG_LOAD_PLUGINS can "
                "leave the plugin out)"
            ) from outcome
        if isinstance(outcome, BaseException):
            log.warning("plugin %r: %s raised %s", plugin, hook_name, _one_line(outcome))
            if debugging():
                log.warning("%s", "".join(traceback.format_exception(outcome)).rstrip())


def _build_registry(pm: pluggy.PluginManager) -> Registry:
    kinds = component_kinds(pm)
    registry = Registry(kinds=list(dict.fromkeys(kinds.values())))
    for info in _plugin_infos.values():
        if info.error:
            registry.failed_plugins[info.name] = info.error
    for hook_name, kind in kinds.items():
        for impl in getattr(pm.hook, hook_name).get_hookimpls():
            register = registry.registrar(kind, impl.plugin_name)
            try:
                impl.function(**{"register": register} if "register" in impl.argnames else {})
            except Exception as error:  # report the plugin, keep the others
                message = f"{hook_name} raised {_one_line(error)}"
                registry.failed_plugins.setdefault(impl.plugin_name, message)
                report_failure(impl.plugin_name, message, traceback.format_exc())
    for message in registry.conflicts.values():
        _warn(f"conflict:{message}", message)
    registry.sections = recipe_sections(pm)
    return registry


def recipe_sections(pm: pluggy.PluginManager) -> dict[str, RecipeSection]:
    """The top-level recipe sections plugins add; a key two plugins claim is left out."""
    sections: dict[str, RecipeSection] = {}
    owners: dict[str, str] = {}
    for plugin, declared in call_each(pm, "recipe_sections"):
        if isinstance(declared, BaseException):
            report_failure(plugin, f"recipe_sections raised {_one_line(declared)}",
                            "".join(traceback.format_exception(declared)))  # fmt: skip
            continue
        for key, section in (declared or {}).items():
            if key in owners:
                _warn(f"section:{key}", f"recipe section {key!r} is declared by plugin "
                      f"{owners[key]!r} and by plugin {plugin!r}; the first is used.")  # fmt: skip
                continue
            owners[key], sections[key] = plugin, section
    return sections
