"""The import graph of keras_resnets' modules, read from their source (ast; nothing imported).

    python tests/import_graph.py            # module -> the package modules it imports
    python tests/import_graph.py --rooms    # the same, one node per top-level room

An import inside a function (a lazy import) counts as an edge like a top-level one, marked
with `*`: the design question is which module depends on which, not when. Package
`__init__`s re-exporting their own children are edges too. tests/test_import_graph.py checks
that the graph has no cycle between rooms and that nothing in the package imports the
repository's `benchmarks/`.
"""

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "keras_resnets"


def modules(root=ROOT, package=PACKAGE):
    """{dotted module name: path} of every .py file in the package."""
    found = {}
    for path in sorted((root / package).rglob("*.py")):
        parts = path.relative_to(root).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


def _resolve(name, known):
    """The longest known module that `name` (a dotted import target) names or lies in."""
    while name and name not in known:
        name = name.rpartition(".")[0]
    return name or None


def imports(path, module, known):
    """{(imported module, lazy)} for the imports in `path`: modules of the package (`known`),
    or the top-level name of an outside one ('benchmarks', 'keras', ...)."""
    tree = ast.parse(path.read_text(), str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    top_level = {id(node) for node in tree.body}
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parts + ([base] if base else []))
            # `from pkg import sub` imports the submodule `pkg.sub` where there is one, else
            # a name of `pkg`.
            targets = [
                f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base
                for alias in node.names
            ]
        else:
            continue
        lazy = id(node) not in top_level
        for target in targets:
            if target == PACKAGE or target.startswith(PACKAGE + "."):
                resolved = _resolve(target, known)
                if resolved != module:
                    found.add((resolved, lazy))
            else:
                found.add((target.split(".")[0], lazy))
    return found


def graph(root=ROOT):
    """{module: {(imported package module or outside top-level name, lazy)}}."""
    known = modules(root)
    return {module: imports(path, module, known) for module, path in known.items()}


def room(module):
    """The top-level room of a module: keras_resnets.training.distribute.base -> training."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def room_graph(edges):
    """{room: {rooms it imports}}, without a room's imports of itself."""
    rooms = {}
    for module, targets in edges.items():
        for target, _ in targets:
            if target.startswith(PACKAGE) and room(target) != room(module):
                rooms.setdefault(room(module), set()).add(room(target))
        rooms.setdefault(room(module), set())
    return rooms


def cycles(adjacency):
    """The strongly connected components of more than one node (Tarjan)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(node):
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for other in adjacency.get(node, ()):
            if other not in adjacency:
                continue
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in on_stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while True:
                other = stack.pop()
                on_stack.discard(other)
                component.append(other)
                if other == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(adjacency):
        if node not in index:
            visit(node)
    return found


def main(argv):
    edges = graph()
    if "--rooms" in argv:
        rooms = room_graph(edges)
        for name in sorted(rooms):
            print(f"{name} -> {', '.join(sorted(rooms[name])) or '(nothing in the package)'}")
        print(f"cycles between rooms: {cycles(rooms) or 'none'}")
    else:
        for module in sorted(edges):
            inside = sorted(
                f"{t}{'*' if lazy else ''}" for t, lazy in edges[module] if t.startswith(PACKAGE)
            )
            print(f"{module} -> {', '.join(inside) or '-'}")
        modules_only = {m: {t for t, _ in e if t.startswith(PACKAGE)} for m, e in edges.items()}
        print(f"cycles between modules: {cycles(modules_only) or 'none'}")
    outside = sorted(m for m, e in edges.items() if any(t == "benchmarks" for t, _ in e))
    print(f"modules importing benchmarks: {', '.join(outside) or 'none'}")


if __name__ == "__main__":
    main(sys.argv[1:])
