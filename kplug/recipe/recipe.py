"""The validated `Recipe`, and its validation against a component registry.

Every problem is collected and reported at once, each with the file and line (or the
command-line override) of the nearest key that set it. Validation fires no hook:
`kplug.load_recipe` tells the plugins (`recipe_loaded`).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from pydantic import BaseModel, ValidationError

from kplug.config import Config, component_kind, component_kind_is_list
from kplug.errors import PluginError, RecipeError, UnknownComponentError, unknown_name_message
from kplug.recipe import yamlio
from kplug.recipe.overrides import COMMAND_LINE, Origin, apply_overrides, copy_data
from kplug.registry import BACKENDS, Registry
from kplug.training.options import (
    RUN_NAME_PATTERN,
    DataOptions,
    ModelOptions,
    OptimizerOptions,
    TrainOptions,
)

# Sections naming one component: section -> (component kind, core options model).
COMPONENT_SECTIONS: dict[str, tuple[str, type[Config] | None]] = {
    "data": ("dataset", DataOptions),
    "model": ("architecture", ModelOptions),
    "objective": ("objective", None),
    "strategy": ("strategy", None),
}
# Sections holding a list of components.
LIST_SECTIONS: dict[str, str] = {
    "compression": "compressor",
    "export": "exporter",
    "callbacks": "callback",
}
CORE_SECTIONS: dict[str, type[Config]] = {"optimizer": OptimizerOptions, "train": TrainOptions}
SCALARS = ("name", "description", "seed", "backend", "extends")
TOP_LEVEL = (*SCALARS, *COMPONENT_SECTIONS, *CORE_SECTIONS, *LIST_SECTIONS)
REQUIRED = ("data", "model", "objective")
# The strategy a recipe without `strategy:` gets: plain Keras `fit` on one device, which an
# essential plugin (one that cannot be disabled) registers; see docs/plugins.md.
DEFAULT_SECTIONS = {"strategy": {"name": "default"}}


@dataclass(frozen=True)
class Section:
    """One component chosen by a recipe.

    Args:
        path: where it sits in the recipe (`data`, `compression.1`).
        kind: the component kind.
        name: the registered component name.
        config: its validated parameters.
        options: the core options of the section (`DataOptions` for `data`), if any.
        name_key: the key that names the component (`name`; a plugin's section may use
            another, as `search: {tuner: ...}` does).
    """

    path: str
    kind: str
    name: str
    config: Config
    options: Config | None = None
    name_key: str = "name"

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {self.name_key: self.name}
        if self.options is not None:
            out.update(self.options.model_dump(mode="json"))
        out.update(self.config.model_dump(mode="json"))
        return out


@dataclass(frozen=True)
class Recipe:
    """A validated recipe with every default filled in.

    Use `load_recipe` or `Recipe.from_dict` to make one; `raw` is the merged input
    (before defaults) and `with_overrides` derives a new recipe from it.
    """

    name: str
    seed: int
    backend: str
    description: str
    sections: dict[str, Section]
    lists: dict[str, list[Section]]
    optimizer: OptimizerOptions
    train: TrainOptions
    plugin_sections: dict[str, Section]
    raw: dict[str, Any] = field(repr=False)
    source: str = "<recipe>"
    extras: dict[str, Any] = field(default_factory=dict, repr=False)
    registry: Registry | None = field(default=None, repr=False, compare=False)

    @property
    def data(self) -> Section:
        return self.sections["data"]

    @property
    def model(self) -> Section:
        return self.sections["model"]

    @property
    def objective(self) -> Section:
        return self.sections["objective"]

    @property
    def strategy(self) -> Section:
        return self.sections["strategy"]

    @property
    def compression(self) -> list[Section]:
        return self.lists["compression"]

    @property
    def export(self) -> list[Section]:
        return self.lists["export"]

    @property
    def callbacks(self) -> list[Section]:
        return self.lists["callbacks"]

    def section(self, key: str) -> Section | None:
        """A plugin-declared top-level section (`recipe_sections` hook), None if absent."""
        return self.plugin_sections.get(key)

    def resolved(self) -> dict[str, Any]:
        """The recipe with every default filled in, as plain data."""
        out: dict[str, Any] = {"name": self.name}
        if self.description:
            out["description"] = self.description
        out.update(seed=self.seed, backend=self.backend)
        for key in COMPONENT_SECTIONS:
            out[key] = self.sections[key].to_dict()
        out["optimizer"] = self.optimizer.model_dump(mode="json")
        out["train"] = self.train.model_dump(mode="json")
        for key in LIST_SECTIONS:
            out[key] = [s.to_dict() for s in self.lists[key]]
        for key, section in self.plugin_sections.items():
            out[key] = section.to_dict()
        return out

    def to_yaml(self) -> str:
        return yamlio.dump(self.resolved())

    def with_overrides(self, overrides: Iterable[str]) -> Recipe:
        """A new recipe: this one's input with `key=value` overrides applied, validated
        against the same registry. Fires no hook: plugins saw the recipe it derives from."""
        return Recipe.from_dict(self.raw, source=self.source, overrides=overrides,
                                registry=self.registry)  # fmt: skip

    @classmethod
    def from_dict(
        cls,
        data: Mapping[str, Any],
        *,
        registry: Registry,
        source: str = "<recipe>",
        overrides: Iterable[str] = (),
        lines: Mapping[tuple, Origin] | None = None,
    ) -> Recipe:
        """Validate a recipe given as data (already merged with its `extends` base) against
        `registry`, the component registry. Fires no hook (`kplug.load_recipe` does)."""
        origins: dict[tuple, Origin] = dict(lines or {})
        merged = apply_overrides(copy_data(dict(data)), overrides, origins)
        return _validate(merged, origins, source, registry)


class _Problems:
    """Collects problems, each prefixed with the origin of the nearest known key."""

    def __init__(self, origins: Mapping[tuple, Origin], source: str):
        self.origins, self.source, self.items = origins, source, []

    def add(self, path: tuple, message: str) -> None:
        origin = None
        for n in range(len(path), -1, -1):
            origin = self.origins.get(path[:n])
            if origin:
                break
        where = origin or self.source
        # A section's own check (a model validator) of a value set on the command line.
        if not where.startswith(COMMAND_LINE):
            under = [o for k, o in self.origins.items() if k[: len(path)] == path]
            overrides = sorted({o for o in under if o.startswith(COMMAND_LINE)})
            if overrides:
                where = f"{', '.join(overrides)} (section at {where})"
        key = f" {yamlio.dotted(path)}:" if path else ""
        self.items.append(f"{where}:{key} {message}")


def _validate(
    data: dict, origins: Mapping[tuple, Origin], source: str, registry: Registry
) -> Recipe:
    """The recipe `data` describes, checked against `registry` alone (fires no hook)."""
    problems = _Problems(origins, source)
    _check_values(data, (), problems)
    if problems.items:  # the checks below would report the same values again
        raise RecipeError(problems.items, source=None)

    known_sections = [*TOP_LEVEL, *registry.sections]
    for key in data:
        if key not in known_sections:
            problems.add(
                (key,), unknown_name_message("section", key, known_sections, known_label="known")
            )

    name = data.get("name")
    if name is None:
        problems.add((), "missing `name:` (it names the run directory, e.g. name: mnist-cnn)")
        name = "unnamed"
    elif not isinstance(name, str) or not _valid_run_name(name):
        problems.add(
            ("name",),
            f"{name!r} is not a valid run name: use letters, digits, '.', '_' and '-' "
            "(at most 100, no '/' or '..'), e.g. name: mnist-cnn",
        )
    seed = data.get("seed", 42)
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**32:
        problems.add(("seed",), f"must be an integer in [0, 2**32), got {seed!r}")
        seed = 42
    backend = data.get("backend") or os.environ.get("KERAS_BACKEND", "tensorflow")
    if backend not in BACKENDS:
        problems.add(("backend",), unknown_name_message("backend", backend, list(BACKENDS)))
        backend = "tensorflow"
    description = data.get("description", "")
    if not isinstance(description, str):
        problems.add(("description",), "must be a string")
        description = ""

    sections: dict[str, Section] = {}
    for key, (kind, options_model) in COMPONENT_SECTIONS.items():
        value = data.get(key)
        if value is None:  # absent, or `strategy:` left empty: the default component
            value = DEFAULT_SECTIONS.get(key)
        if value is None:
            if key in REQUIRED:
                problems.add((), f"missing section `{key}:` with a `name:` ({kind} to use)")
            continue
        section = _component(value, (key,), kind, options_model, backend, registry, problems)
        if section is not None:
            sections[key] = section

    core: dict[str, Config] = {}
    for key, model in CORE_SECTIONS.items():
        value = data.get(key) or {}
        if not isinstance(value, dict):
            problems.add((key,), f"must be a mapping of options, got {type(value).__name__}")
            value = {}
        core[key] = _validate_config(model, value, (key,), problems, model.__name__) or model()

    lists: dict[str, list[Section]] = {}
    for key, kind in LIST_SECTIONS.items():
        value = data.get(key) or []
        if not isinstance(value, list):
            problems.add((key,), f"must be a list of {kind}s, e.g. {key}: [{{name: ...}}]")
            value = []
        lists[key] = []
        for index, item in enumerate(value):
            if isinstance(item, str):
                item = {"name": item}
            section = _component(item, (key, index), kind, None, backend, registry, problems)
            if section is not None:
                lists[key].append(section)

    plugin_sections = _plugin_sections(data, backend, registry, problems)

    if problems.items:
        raise RecipeError(problems.items, source=None)
    return Recipe(
        name=name,
        seed=seed,
        backend=backend,
        description=description,
        sections=sections,
        lists=lists,
        optimizer=core["optimizer"],  # type: ignore[arg-type]
        train=core["train"],  # type: ignore[arg-type]
        plugin_sections=plugin_sections,
        raw=data,
        source=source,
        registry=registry,
    )


def _plugin_sections(
    data: dict, backend: str, registry: Registry, problems: _Problems
) -> dict[str, Section]:
    """The recipe's plugin-declared sections, each naming one component by its name key."""
    out: dict[str, Section] = {}
    for key, declared in registry.sections.items():
        value = data.get(key)
        if value is None:
            continue
        name_key = declared.name_key
        if not isinstance(value, dict) or name_key not in value:
            problems.add((key,), f"must be a mapping with `{name_key}:` (the {declared.kind}; "
                         f"see `kplug list {declared.kind}`)")  # fmt: skip
            continue
        renamed = {("name" if k == name_key else k): v for k, v in value.items()}
        section = _component(renamed, (key,), declared.kind, None, backend, registry, problems)
        if section is not None:
            out[key] = replace(section, name_key=name_key)
    return out


def _valid_run_name(name: str) -> bool:
    return bool(re.fullmatch(RUN_NAME_PATTERN, name)) and ".." not in name


def _check_values(value: Any, path: tuple, problems: _Problems) -> None:
    """Refuse values no component can use safely, wherever they are: text with NUL or with
    bytes that are not UTF-8 (they break paths and the run's own files), integers beyond
    64 bits, infinities and NaN, and binary data."""
    if isinstance(value, dict):
        for key, item in value.items():
            if isinstance(key, str):
                _check_values(key, path + (key,), problems)
            _check_values(item, path + (key,), problems)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _check_values(item, path + (index,), problems)
    elif isinstance(value, str):
        if "\x00" in value:
            problems.add(path, f"{value!r} contains a NUL character; remove it.")
        elif not _is_utf8(value):
            problems.add(
                path,
                f"{value!r} is not UTF-8 text (a command-line argument or file in another "
                "encoding); write it in UTF-8.",
            )
    elif isinstance(value, bool):
        return
    elif isinstance(value, int):
        if not -(2**63) <= value < 2**63:
            problems.add(path, f"{value} is too large: integers are at most 2**63 - 1.")
    elif isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            problems.add(path, f"must be a finite number, got {value!r}")
    elif isinstance(value, bytes):
        problems.add(path, "binary data (!!binary) is not a recipe value; write text.")


def _is_utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _component(
    value: Any,
    path: tuple,
    kind: str,
    options_model: type[Config] | None,
    backend: str,
    registry: Registry,
    problems: _Problems,
) -> Section | None:
    if not isinstance(value, dict):
        problems.add(path, f"must be a mapping with `name:` (the {kind}), got {value!r}")
        return None
    name = value.get("name")
    if not isinstance(name, str) or not name:
        problems.add(path, f"missing `name:` (which {kind}; see `kplug list {kind}`)")
        return None
    try:
        component = registry.get(kind, name)
    except UnknownComponentError as error:
        message = str(error)
        failed = registry.failed_plugins
        if failed:
            message += " (plugins that failed to load: " + ", ".join(sorted(failed)) + ")"
        problems.add(path + ("name",), message)
        return None
    except PluginError as error:  # a name two plugins registered
        problems.add(path + ("name",), str(error))
        return None
    if not component.supports(backend):
        problems.add(
            path + ("name",),
            f"{kind} {name!r} works on the {', '.join(component.backends)} backend, not "
            f"{backend!r}; choose another {kind} or set backend: {component.backends[0]}",
        )
    params = {k: v for k, v in value.items() if k != "name"}
    params = _nested_components(component.config, params, path, backend, registry, problems)
    options = None
    if options_model is not None:
        core_keys = set(options_model.model_fields)
        options = _validate_config(
            options_model, {k: v for k, v in params.items() if k in core_keys}, path, problems,
            f"{path[0]} options",
        )  # fmt: skip
        params = {k: v for k, v in params.items() if k not in core_keys}
        extra_known = sorted(core_keys)
    else:
        extra_known = []
    config = _validate_config(
        component.config, params, path, problems, f"{kind} {name!r}", extra_known
    )
    if config is None or (options_model is not None and options is None):
        return None
    return Section(".".join(map(str, path)), kind, name, config, options)


def _nested_components(
    model: type[Config],
    params: dict,
    path: tuple,
    backend: str,
    registry: Registry,
    problems: _Problems,
) -> dict:
    """Validate the fields a config declares with `component_list` / `component_ref`
    exactly like top-level sections, and replace each entry by its resolved dict (name and
    every parameter). A field with problems is dropped, so that it is reported once."""
    out = dict(params)
    for key, field_info in model.model_fields.items():
        kind = component_kind(field_info)
        if kind is None:
            continue
        value = out.get(key, field_info.get_default(call_default_factory=True))
        many = component_kind_is_list(field_info)
        if value is None and not many:
            continue
        if many and not isinstance(value, list):
            problems.add(path + (key,), f"must be a list of {kind}s, e.g. {key}: [{{name: ...}}]")
            out.pop(key, None)
            continue
        entries = value if many else [value]
        resolved = []
        for index, entry in enumerate(entries):
            entry_path = path + ((key, index) if many else (key,))
            if isinstance(entry, str):
                entry = {"name": entry}
            section = _component(entry, entry_path, kind, None, backend, registry, problems)
            if section is not None:
                resolved.append(section.to_dict())
        if len(resolved) < len(entries):
            out.pop(key, None)
        else:
            out[key] = resolved if many else resolved[0]
    return out


def _validate_config(
    model: type[BaseModel],
    params: dict,
    path: tuple,
    problems: _Problems,
    what: str,
    also_known: Sequence[str] = (),
) -> Any:
    try:
        return model.model_validate(params)
    except ValidationError as error:
        for item in error.errors():
            loc = path + tuple(item["loc"])
            if item["type"] == "extra_forbidden":
                known = sorted(set(model.model_fields) | set(also_known))
                key = item["loc"][-1]
                message = unknown_name_message(
                    f"key for {what}:", str(key), known, known_label="known keys"
                )
            elif item["type"] == "missing":
                message = f"required by {what} but missing"
            else:
                got = item.get("input")
                text = _without_pydantic_prefix(item)
                message = f"{text} (got {got!r})" if got is not None and loc != path else text
            problems.add(loc, message)
        return None


def _without_pydantic_prefix(item: Mapping[str, Any]) -> str:
    """A validator's own message, without pydantic's "Value error, " in front."""
    error = item.get("ctx", {}).get("error")
    if item["type"] in ("value_error", "assertion_error") and error is not None:
        return str(error)
    return item["msg"]
