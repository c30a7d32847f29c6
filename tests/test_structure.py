"""The layout's contracts: no import cycles between narbuild's modules (lazy imports included),
and the registry and CLI stay light to import."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import networkx as nx

ROOT = Path(__file__).resolve().parent.parent / "src"


def _modules() -> dict[str, Path]:
    out = {}
    for path in (ROOT / "narbuild").rglob("*.py"):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return out


def _target(name: str, modules: dict[str, Path]) -> str | None:
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def _imported(node: ast.AST) -> list[str]:
    """What a node imports: ``import x``, ``from x import y`` (the submodule ``x.y``, else the
    package ``x``), or a ``"narbuild.x:attr"`` string that code imports by name (the CLI's
    stage commands)."""
    if isinstance(node, ast.Import):
        return [a.name for a in node.names]
    if isinstance(node, ast.ImportFrom) and node.module and not node.level:
        return [f"{node.module}.{a.name}" for a in node.names]
    if isinstance(node, ast.Constant) and isinstance(node.value, str) and re.fullmatch(
            r"narbuild(\.\w+)+:\w+", node.value):
        return [node.value.partition(":")[0]]
    return []


def import_graph() -> nx.DiGraph:
    """Module -> module it imports, at any depth of its code (function-level imports too)."""
    modules, graph = _modules(), nx.DiGraph()
    for module, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text())):
            names = _imported(node)
            for name in names:
                target = _target(name, modules) if name.startswith("narbuild") else None
                if target and target != module:
                    graph.add_edge(module, target)
    return graph


def test_no_import_cycles():
    cycles = sorted(nx.simple_cycles(import_graph()), key=len)
    assert not cycles, "\n".join(" -> ".join(c) for c in cycles[:10])


def test_the_registry_and_the_cli_import_without_torch():
    code = ("import sys, narbuild.cli, narbuild.sources as s; s.all_sources(); "
            "print(sorted(m for m in ('torch', 'timm', 'transformers', 'ultralytics') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
