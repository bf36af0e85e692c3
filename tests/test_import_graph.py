"""No import circle in kplug/: the import graph, read with `ast`, is acyclic.

Every `import` that runs counts, at module level or inside a function. Imports under
`if TYPE_CHECKING:` do not run; they are checked too, in a second graph, with one known
circle allowed only if named in `TYPE_LEVEL_ALLOWED` (none today).
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "kplug"


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


# Type-level circles allowed by name: none. (The last one, recipe -> plugins, went when
# recipe validation started taking its registry explicitly and firing no hook.)
TYPE_LEVEL_ALLOWED: set[tuple[str, str]] = set()


def _imports(tree: ast.AST, type_level: bool = False):
    """Import nodes that run, and with `type_level` those under `if TYPE_CHECKING:`."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.If) and _is_type_checking(node) and not type_level:
            yield from (n for child in node.orelse for n in _imports_in(child, type_level))
            continue
        yield from _imports_in(node, type_level)


def _imports_in(node: ast.AST, type_level: bool = False):
    if isinstance(node, (ast.Import, ast.ImportFrom)):
        yield node
    else:
        yield from _imports(node, type_level)


def import_graph(modules: dict[str, str], type_level: bool = False) -> dict[str, set[str]]:
    """Module name -> the kplug modules it imports, from each module's source."""
    graph: dict[str, set[str]] = {}
    for name, source in modules.items():
        targets: set[str] = set()
        for node in _imports(ast.parse(source, name), type_level):
            if isinstance(node, ast.Import):
                candidates = [alias.name for alias in node.names]
            elif node.level == 0 and node.module:
                candidates = [f"{node.module}.{alias.name}" for alias in node.names]
                candidates = [c if c in modules else node.module for c in candidates]
            else:
                continue
            targets |= {c for c in candidates if c in modules and c != name}
        graph[name] = targets
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle as `[a, b, ..., a]`, or None."""
    done: set[str] = set()
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        if node in path:
            return [*path[path.index(node) :], node]
        if node in done:
            return None
        path.append(node)
        for target in sorted(graph.get(node, ())):
            cycle = visit(target)
            if cycle:
                return cycle
        path.pop()
        done.add(node)
        return None

    for node in sorted(graph):
        cycle = visit(node)
        if cycle:
            return cycle
    return None


def kplug_sources() -> dict[str, str]:
    return {module_name(p): p.read_text("utf-8") for p in sorted(PACKAGE.rglob("*.py"))}


def test_kplug_has_no_import_circle():
    cycle = find_cycle(import_graph(kplug_sources()))
    assert cycle is None, "import circle in kplug/: " + " -> ".join(cycle or [])


def test_kplug_has_no_type_level_import_circle():
    graph = import_graph(kplug_sources(), type_level=True)
    for module, target in TYPE_LEVEL_ALLOWED:
        assert target in graph[module], f"{module} -> {target} is gone: drop its allowance"
        graph[module].discard(target)
    cycle = find_cycle(graph)
    assert cycle is None, "type-level import circle in kplug/: " + " -> ".join(cycle or [])


def test_the_graph_sees_function_level_imports_and_skips_type_checking_ones():
    modules = {
        "kplug.a": "from kplug.b import f\n",
        "kplug.b": "def f():\n    from kplug import a\n",
        "kplug.c": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import kplug.a\n",
    }
    graph = import_graph(modules)
    assert graph == {"kplug.a": {"kplug.b"}, "kplug.b": {"kplug.a"}, "kplug.c": set()}
    assert find_cycle(graph) == ["kplug.a", "kplug.b", "kplug.a"]
    assert find_cycle({"kplug.a": {"kplug.b"}, "kplug.b": set()}) is None
    assert import_graph(modules, type_level=True)["kplug.c"] == {"kplug.a"}


def test_the_graph_of_kplug_has_the_modules_it_should():
    graph = import_graph(kplug_sources())
    assert "kplug.stages" in graph["kplug.training.plan"]  # function-level import, seen
    assert "kplug.runner" not in graph["kplug.training.plan"]
    assert "kplug.training.options" in graph["kplug.recipe.recipe"]
