"""No import cycles in the package: imports run one way (DESIGN.md §9).

Why a test: a cycle works until someone moves an import and then fails at start-up with a
half-initialised module. Every ``import`` under ``src/truecount`` is counted, including those
under ``TYPE_CHECKING`` and inside functions (a lazy import hides a cycle, it does not break
it). Importing an ancestor package (``from . import merkle``, ``import truecount``) is not an
edge: Python initialises the parent first, by design.
"""

from __future__ import annotations

import ast
from pathlib import Path

import truecount

ROOT = Path(truecount.__file__).parent

#: Cycles kept on purpose, each with its reason. The Zendesk ETL and audits readers build on
#: the Zendesk module's pieces, and the Zendesk adapter hands those files to them.
ALLOWED: frozenset[frozenset[str]] = frozenset(
    {
        frozenset(
            {
                "truecount.adapters.zendesk",
                "truecount.adapters.zendesk_audits",
                "truecount.adapters.zendesk_etl",
            }
        )
    }
)


def _modules() -> dict[str, Path]:
    out: dict[str, Path] = {}
    for path in ROOT.rglob("*.py"):
        parts = ["truecount", *path.relative_to(ROOT).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _graph(mods: dict[str, Path]) -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for name, path in mods.items():
        package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
        deps: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                deps.update(a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package[: len(package) - node.level + 1]
                    target = ".".join(base + ([node.module] if node.module else []))
                else:
                    target = node.module or ""
                deps.add(target)
                deps.update(f"{target}.{a.name}" for a in node.names)
        ancestors = {".".join(name.split(".")[:i]) for i in range(1, name.count(".") + 1)}
        graph[name] = {d for d in deps if d in mods and d != name and d not in ancestors}
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[frozenset[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[frozenset[str]] = []
    for root in sorted(graph):
        if root in index:
            continue
        work: list[tuple[str, list[str]]] = [(root, sorted(graph[root]))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, todo = work[-1]
            if todo:
                nxt = todo.pop()
                if nxt not in index:
                    index[nxt] = low[nxt] = len(index)
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, sorted(graph[nxt])))
                elif nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                comp: set[str] = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    comp.add(member)
                    if member == node:
                        break
                if len(comp) > 1:
                    found.append(frozenset(comp))
    return found


def test_the_walker_sees_a_cycle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert _cycles(graph) == [frozenset({"a", "b", "c"})]


def test_no_import_cycles() -> None:
    cycles = [sorted(c) for c in _cycles(_graph(_modules())) if c not in ALLOWED]
    assert cycles == [], f"import cycles (move what is shared so imports go one way): {cycles}"


def test_the_named_cycles_stay_broken() -> None:
    graph = _graph(_modules())
    assert "truecount.billing.reconcile" not in graph["truecount.billing.terms"]
    assert "truecount.workspace" not in graph["truecount.history.versions"]
