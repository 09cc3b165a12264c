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


def _units() -> dict[str, set[str]]:
    """Top-level packages and modules of trainlab (``data``, ``engine``, ``resolve``) and the
    units each imports, from every import statement (lazy ones inside functions included)."""
    edges: dict[str, set[str]] = {}
    for path in SRC.rglob("*.py"):
        rel = path.relative_to(SRC).with_suffix("").parts
        if rel == ("__init__",):
            continue  # the package's front door re-exports; it is no layer of its own
        unit, package = rel[0], ["trainlab", *rel[:-1]]
        for node in ast.walk(ast.parse(path.read_text())):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = package[: len(package) - node.level + 1] if node.level else []
                module = ".".join([*base, node.module] if node.module else base)
                module = module if node.level else (node.module or "")
                names = [module, *(f"{module}.{a.name}" for a in node.names)]
            for name in names:
                parts = name.split(".")
                if parts[0] != "trainlab" or len(parts) < 2 or parts[1] == unit:
                    continue
                if (SRC / parts[1]).is_dir() or (SRC / f"{parts[1]}.py").exists():
                    edges.setdefault(unit, set()).add(parts[1])
    return edges


def test_no_cycles_between_packages_lazy_imports_included():
    edges = _units()

    def reach(start: str) -> set[str]:
        seen, todo = set(), [start]
        while todo:
            for nxt in edges.get(todo.pop(), ()):
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        return seen

    in_cycle = {u: sorted(t for t in edges.get(u, ()) if u in reach(t)) for u in edges}
    assert {u: t for u, t in in_cycle.items() if t} == {}


def test_the_layers_point_one_way():
    """errors/fsutil < options < config < data < models < engine < plans and run directories
    < report < building and training runs < inference < serve/tune < cli: a lower layer never
    imports a higher one. The report reads run directories, and the trainer shows a run through
    the report's callbacks, so the report sits between the two."""
    order = [
        {"errors", "fsutil", "logs", "wheels", "plugins", "registry"},
        {"options"},
        {"config"},
        {"data"},
        {"models"},
        {"engine"},
        {"resolve", "recipes", "runs", "auto"},
        {"report"},
        {"build", "trainer", "workflow", "d2l", "compat"},
        {"inference"},
        {"serve", "tune"},
        {"cli", "__main__"},
    ]
    layer = {unit: i for i, units in enumerate(order) for unit in units}
    edges = _units()
    assert set(edges) <= set(layer), f"place these in a layer: {set(edges) - set(layer)}"
    upward = sorted(
        f"{unit} -> {target}"
        for unit, targets in edges.items()
        for target in targets
        if layer[target] > layer[unit]
    )
    assert upward == []


def test_no_source_file_is_over_450_lines():
    long = [
        f"{p.relative_to(SRC)}: {n}"
        for p in SRC.rglob("*.py")
        if p.name != "d2l.py" and (n := len(p.read_text().splitlines())) > 450
    ]
    assert long == []


def test_no_branch_on_a_kind_of_data_outside_the_kinds_modules():
    """What depends on the kind of data is the kind's to say (``trainlab.data.kinds``): no
    ``kind ==``, ``is_image`` or ``task ==`` branch, and no kind's name, anywhere else."""
    import re

    names = "digits|images|tabular|regression|classification|multilabel|table"
    named = names.replace("|regression", "")  # also a model's output ("regression" values)
    pattern = re.compile(
        rf"""\bkind\s*(?:[!=]=|in)\s*[(\[]?\s*["']({names})["']|\bdata\.kind\s*[!=]="""
        rf"""|\bis_image\b|\btask\s*(?:[!=]=|in)\s*[(\[]?\s*["']({names})["']"""
        rf"""|[!=]=\s*["']({named})["']|["']({named})["']\s*[!=]="""
    )
    found = []
    for path in SRC.rglob("*.py"):
        if "kinds" in path.relative_to(SRC).parts or path.name == "d2l.py":
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if pattern.search(line):
                found.append(f"{path.relative_to(SRC)}:{number}: {line.strip()}")
    assert found == []
