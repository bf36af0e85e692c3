"""Recipes: YAML files turned into validated `Recipe` objects.

Precedence, lowest first: component defaults < `extends:` base < the recipe < command-line
overrides (`key.sub=value`, `~key.sub` deletes). Every problem is collected and reported
at once with its file, line and key path.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from kplug import yamlio
from kplug.config import Config, component_kind, component_kind_is_list
from kplug.errors import PluginError, RecipeError, UnknownComponentError, unknown_name_message
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

Origin = str  # "file:line" or "command line: key=value"
COMMAND_LINE = "command line: "

# A recipe is a page of settings: refuse files and `extends:` graphs far beyond that
# before parsing them, and override keys deeper than any section.
MAX_RECIPE_BYTES = 1 << 20
MAX_RECIPE_FILES = 64
MAX_KEY_DEPTH = 32


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
        merged = apply_overrides(_copy(dict(data)), overrides, origins)
        return _validate(merged, origins, source, registry)


# ---------------------------------------------------------------------------------------
# Loading: files, `extends`, overrides
# ---------------------------------------------------------------------------------------


def load_recipe(
    path: str | os.PathLike, overrides: Iterable[str] = (), *, registry: Registry
) -> Recipe:
    """Load, merge, override and validate a recipe file (fires no hook).

    Args:
        path: the YAML file.
        overrides: `key.sub=value` and `~key.sub` strings, applied last.
        registry: the component registry to validate against.

    Raises:
        RecipeError: listing every problem, each with file:line and key path.
    """
    origins: dict[tuple, Origin] = {}
    data = _load_file(Path(path), origins, chain=(), loaded={})
    return Recipe.from_dict(
        data, source=str(path), overrides=overrides, registry=registry, lines=origins
    )


def _load_file(
    path: Path, origins: dict[tuple, Origin], chain: tuple[Path, ...], loaded: dict
) -> dict:
    """One recipe file merged over its `extends:` bases. `loaded` holds each file already
    read in this load (a base that several recipes of the graph extend is read once)."""
    shown = str(path)
    if not path.exists():
        raise RecipeError(f"recipe file not found: {shown} (check the path; cwd is {os.getcwd()})")
    if not path.is_file():
        raise RecipeError(f"{shown} is not a file: give the path of a recipe YAML file.")
    resolved = path.resolve()
    if resolved in chain:
        cycle = " -> ".join(str(p) for p in (*chain, resolved))
        raise RecipeError(f"{shown}: the recipe extends itself ({cycle}); remove the cycle.")
    if resolved in loaded:
        data, file_origins = loaded[resolved]
        origins.update(file_origins)
        return _copy(data)
    if len(loaded) + len(chain) >= MAX_RECIPE_FILES:
        raise RecipeError(
            f"{shown}: recipe too large: its `extends:` graph names more than "
            f"{MAX_RECIPE_FILES} files; a recipe extends a few bases."
        )
    mine: dict[tuple, Origin] = {}
    data = _read_recipe_file(path, shown, mine, chain + (resolved,), loaded)
    loaded[resolved] = (data, mine)
    origins.update(mine)
    return _copy(data)


def _read_recipe_file(
    path: Path, shown: str, origins: dict[tuple, Origin], chain: tuple[Path, ...], loaded: dict
) -> dict:
    try:
        if path.stat().st_size > MAX_RECIPE_BYTES:
            raise RecipeError(
                f"{shown}: recipe too large ({path.stat().st_size:,} bytes; at most "
                f"{MAX_RECIPE_BYTES:,}); a recipe is a page of settings."
            )
        raw = path.read_bytes()
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise RecipeError(
            f"{shown}: not UTF-8 text (byte {error.start}); save the recipe as UTF-8."
        ) from None
    except OSError as error:
        raise RecipeError(f"{shown}: cannot read the recipe: {error.strerror}") from None
    if "\x00" in text:
        raise RecipeError(f"{shown}: binary data, not a YAML recipe.")
    data, lines = yamlio.parse(text, shown)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise RecipeError(
            f"{shown}:1: a recipe is a mapping of sections (data:, model:, ...), "
            f"not a {type(data).__name__}."
        )
    here = {p: f"{shown}:{line}" for p, line in lines.items()}
    base_ref = data.pop("extends", None)
    if base_ref is None:
        origins.update(here)
        return data
    refs = base_ref if isinstance(base_ref, list) else [base_ref]
    merged: dict = {}
    for ref in refs:
        if not isinstance(ref, str) or not ref:
            raise RecipeError(f"{here[('extends',)]}: extends: give a recipe path (a string).")
        base_path = Path(ref) if Path(ref).is_absolute() else path.parent / ref
        if not base_path.exists():
            raise RecipeError(
                f"{here[('extends',)]}: extends: base recipe {ref!r} not found "
                f"(looked for {base_path})."
            )
        base = _load_file(base_path, origins, chain, loaded)
        merged = merge(merged, base)
    origins.update(here)
    return merge(merged, data)


def merge(base: dict, top: dict) -> dict:
    """Deep-merge `top` over `base`. A section whose component `name` changes is replaced
    whole: parameters of a different component never leak into it."""
    out = dict(base)
    for key, value in top.items():
        old = out.get(key)
        if (
            isinstance(old, dict)
            and isinstance(value, dict)
            and not ("name" in value and "name" in old and value["name"] != old["name"])
        ):
            out[key] = merge(old, value)
        else:
            out[key] = value
    return out


def parse_override(text: str) -> tuple[str, tuple[str | int, ...], Any]:
    """Parse `a.b=value` (set) or `~a.b` (delete) into (op, path, value)."""
    if text.startswith("~"):
        op, body, value = "delete", text[1:], None
        if "=" in body:
            raise RecipeError(f"override {text!r}: `~key` deletes a key and takes no value.")
    elif "=" in text:
        op = "set"
        body, raw_value = text.split("=", 1)
        value = yamlio.parse_value(raw_value, f"override {text!r}")
    else:
        raise RecipeError(
            f"override {text!r}: write key=value (for example train.epochs=3) or ~key to delete."
        )
    parts = body.strip().split(".")
    if not body.strip() or any(not p.strip() for p in parts):
        raise RecipeError(f"override {text[:200]!r}: the key is empty or has an empty part.")
    if len(parts) > MAX_KEY_DEPTH:
        raise RecipeError(
            f"override {text[:80]!r}...: the key is nested too deeply ({len(parts)} levels; "
            f"recipe keys have at most {MAX_KEY_DEPTH})."
        )
    # Only ASCII digits index a list: `²`.isdigit() is true, but int() refuses it.
    path = tuple(int(p) if p.isascii() and p.isdigit() else p for p in parts)
    return op, path, value


def apply_overrides(
    data: dict, overrides: Iterable[str], origins: dict[tuple, Origin] | None = None
) -> dict:
    """Apply command-line overrides to recipe data (in place) and return it."""
    origins = origins if origins is not None else {}
    for text in overrides:
        op, path, value = parse_override(text)
        if path[0] == "extends":
            raise RecipeError(f"override {text!r}: `extends` can only be set in the recipe file.")
        path = _dotted_keys(data, path)
        parent = data
        for depth, part in enumerate(path[:-1]):
            child = _child(parent, part, text, path[: depth + 1], create=op == "set")
            parent = child
        last = path[-1]
        if op == "delete":
            if isinstance(parent, dict) and last in parent:
                del parent[last]
            elif isinstance(parent, list) and isinstance(last, int) and last < len(parent):
                parent.pop(last)
            else:
                raise RecipeError(
                    f"override {text!r}: {yamlio.dotted(path)} is not in the recipe; "
                    "nothing to delete."
                )
            continue
        if isinstance(parent, list):
            if not isinstance(last, int) or last > len(parent):
                raise RecipeError(
                    f"override {text!r}: {yamlio.dotted(path[:-1])} is a list of "
                    f"{len(parent)}; index it with 0..{len(parent)}."
                )
            if last == len(parent):
                parent.append(value)
            else:
                parent[last] = value
        elif isinstance(parent, dict):
            parent[last] = value
        else:
            raise RecipeError(
                f"override {text!r}: {yamlio.dotted(path[:-1])} is a "
                f"{type(parent).__name__}, not a section; it has no key {last!r}."
            )
        for key in [k for k in origins if k[: len(path)] == path]:
            del origins[key]
        for n in range(1, len(path) + 1):  # keys this override created come from it too
            origins.setdefault(path[:n], COMMAND_LINE + text)
        origins[path] = COMMAND_LINE + text
    return data


def _dotted_keys(data: dict, path: tuple) -> tuple:
    """`path` with the parts that name one dotted key joined: in a mapping whose keys are
    recipe keys (`search.space: {optimizer.learning_rate: [...]}`), the rest of the
    override's key is one key when that key exists or the mapping's keys have dots."""
    parent: Any = data
    for depth, part in enumerate(path[:-1]):
        if not isinstance(parent, dict):
            break
        rest = ".".join(map(str, path[depth:]))
        if rest in parent or any("." in str(key) for key in parent):
            return (*path[:depth], rest)
        parent = parent.get(part) if not isinstance(part, int) else None
    return path


def _child(parent: Any, part: str | int, text: str, path: tuple, *, create: bool) -> Any:
    listed = isinstance(parent, list) and isinstance(part, int) and part < len(parent)
    if listed and isinstance(parent[part], str):  # a component by bare name takes parameters
        parent[part] = {"name": parent[part]}
    if isinstance(parent, dict):
        if part not in parent:
            if not create:
                raise RecipeError(f"override {text!r}: {yamlio.dotted(path)} is not in the recipe.")
            parent[part] = {}
        return parent[part]
    if isinstance(parent, list) and isinstance(part, int):
        if part == len(parent) and create:
            parent.append({})
        if part >= len(parent):
            raise RecipeError(
                f"override {text!r}: {yamlio.dotted(path[:-1])} has {len(parent)} entries; "
                f"there is no index {part}."
            )
        return parent[part]
    raise RecipeError(
        f"override {text!r}: {yamlio.dotted(path[:-1])} is not a section; it has no key {part!r}."
    )


def _copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value


# ---------------------------------------------------------------------------------------
# Validation
# ---------------------------------------------------------------------------------------


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
    import re

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
