"""The architecture as a test: engine/ never imports report/, and no module imports in a circle.

Imports are read from the source (every ``import`` statement, at module level or inside a
function), so a lazy import counts as much as a top-level one.
"""

import ast
from pathlib import Path

import trainlab

SRC = Path(trainlab.__file__).parent


def _module_name(path: Path) -> str:
    parts = path.relative_to(SRC.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports() -> dict[str, set[str]]:
    modules = {_module_name(p): p for p in SRC.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        targets = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                targets.add(node.module)
                targets.update(f"{node.module}.{a.name}" for a in node.names)
            elif isinstance(node, ast.Import):
                targets.update(a.name for a in node.names)
        graph[name] = {t for t in targets if t in modules and t != name}
    return graph


def test_engine_imports_nothing_from_report():
    graph = _imports()
    offenders = {
        module: sorted(t for t in targets if t.startswith("trainlab.report"))
        for module, targets in graph.items()
        if module.startswith("trainlab.engine")
    }
    assert {m: t for m, t in offenders.items() if t} == {}


def test_no_import_cycles():
    graph = _imports()
    # a package's __init__ importing its own submodules is how packages export; not a cycle
    edges = {m: {t for t in targets if m != t.rsplit(".", 1)[0]} for m, targets in graph.items()}
    state: dict[str, int] = {}
    cycles = []

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                cycles.append(path[path.index(nxt) :] + [nxt])
            elif nxt not in state:
                visit(nxt, [*path, nxt])
        state[node] = 2

    for module in sorted(edges):
        if module not in state:
            visit(module, [module])
    assert cycles == []
