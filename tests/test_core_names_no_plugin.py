"""The core names no plugin: no code under kplug/ (docstrings and comments apart) mentions a
built-in plugin's package, a hook or component kind only a plugin declares, a plugin's
command or a library only a plugin uses. Plugins bring those through their own hooks
(`add_hookspecs`, `component_kinds`, `recipe_sections`, `register_commands`)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PLUGIN_PACKAGES = sorted(
    p.name for p in (ROOT / "plugins").iterdir() if p.name.startswith("kplug_")
)
PLUGIN_NAMES = [
    *PLUGIN_PACKAGES,
    "layout_rules", "register_cleaners", "register_tokenizers", "register_tuners",  # hooks
    "cleaner", "tokenizer", "tuner",  # component kinds plugins declare
    "Cleaner", "Tokenizer",  # the text plugin's base classes
    "search",  # the tuner plugin's recipe section
    "kplug launch", "kplug tune", "kplug generate", "kplug sample",  # plugins' commands
    "keras-hub", "keras_hub", "keras-tuner", "keras_tuner",  # libraries of plugins
    "tensorflow-model-optimization", "tensorflow_model_optimization",
]  # fmt: skip
PATTERN = re.compile(
    r"(?<![A-Za-z_])(" + "|".join(map(re.escape, PLUGIN_NAMES)) + r")(?![A-Za-z_])"
)


def code_texts(tree: ast.AST) -> list[tuple[int, str]]:
    """(line, text) of every identifier, import and string in `tree` but its docstrings."""
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
        and node.body and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }  # fmt: skip
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            if id(node) not in docstrings:
                out.append((node.lineno, node.value))
        elif isinstance(node, ast.Name):
            out.append((node.lineno, node.id))
        elif isinstance(node, ast.Attribute) and node.attr != "search":  # re's, not a section
            out.append((node.lineno, node.attr))
        elif isinstance(node, ast.alias):
            out.append((node.lineno, node.name))
        elif isinstance(node, ast.ImportFrom) and node.module:
            out.append((node.lineno, node.module))
        elif isinstance(node, ast.FunctionDef | ast.ClassDef):
            out.append((node.lineno, node.name))
    return out


def plugin_names_in(source: str) -> list[tuple[int, str]]:
    return [(line, match.group()) for line, text in code_texts(ast.parse(source))
            for match in PATTERN.finditer(text)]  # fmt: skip


# Known leftovers allowed by file: none. (The last ones, a text run's tokenizer in
# inference.json and evaluate's pins, keras-hub's baseline and the tokenizer's vocabulary
# in plan, went to the plugins' `inference_fields`, `evaluation_overrides` and `estimate`.)
KNOWN_LEFTOVERS: dict[str, set[str]] = {}


def test_the_core_names_no_plugin():
    found = []
    for path in sorted((ROOT / "kplug").rglob("*.py")):
        allowed = KNOWN_LEFTOVERS.get(path.relative_to(ROOT).as_posix(), set())
        for line, name in plugin_names_in(path.read_text("utf-8")):
            if name not in allowed:
                found.append(f"{path.relative_to(ROOT)}:{line}: {name}")
    assert not found, "the core names plugins:\n" + "\n".join(found)


def test_the_check_catches_each_way_of_naming_a_plugin():
    source = '''
"""A docstring may mention kplug_tune and layout_rules."""
import kplug_text
from kplug_distribute.plugin import make_default
hook.layout_rules(architecture="bert")
KINDS = {"register_cleaners": "cleaner"}
raise RunError("resume with kplug launch --restart-failed")
for dist in ("keras-hub", "numpy"): pass
if data.get("search"): pass
'''
    names = sorted(name for _, name in plugin_names_in(source))
    assert names == sorted(
        [
            "kplug_text",
            "kplug_distribute",
            "layout_rules",
            "register_cleaners",
            "cleaner",
            "kplug launch",
            "keras-hub",
            "search",
        ]
    )
