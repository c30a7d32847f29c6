"""A search query as a traced graph: from the workspace, the query cache, or a fresh trace.

A query is anything ``narbuild trace --model`` accepts, or an ``nn.Module`` with its example
inputs. Spec queries are cached by content (the spec, or the bytes of the file it names, plus
the versions of the libraries that build and trace it) under ``<workspace>/cache/queries``, so
a second search of the same query does not trace again.
"""

from __future__ import annotations

import functools
import hashlib
import json
from importlib import metadata
from pathlib import Path
from typing import Any

import pyarrow.compute as pc

from narbuild import tracing
from narbuild._version import __version__
from narbuild.errors import NarbuildError
from narbuild.workspace import Workspace, write_text_atomic

_GRAPH_FIELDS = ("model_id", "nodes", "edge_src", "edge_dst", "flops", "params", "graph_hash")
_LIBRARIES = ("torch", "torchvision", "timm", "transformers")


class QueryGraph:
    """The traced graph of a spec query: found at once (the workspace's, or the query cache's),
    or traced in an isolated worker under ``limits`` (a :class:`TraceOptions`) that starts now
    and is collected by :meth:`result`, so the caller can load its indexes meanwhile.
    ``graphs``: the workspace's graphs held in memory (a server's), else the table is read."""

    def __init__(self, ws: Workspace, spec: str, limits: Any = None,
                 graphs: WorkspaceGraphs | None = None) -> None:
        self._found: tuple[dict[str, Any], str] | None = None
        self._pending = None
        known = graphs.get(spec) if graphs is not None else _workspace_graph(ws, spec)
        if known is not None:  # no cache key (it hashes the file and reads library versions)
            self._found = known, "workspace"
            return
        self._cache = ws.root / "cache" / "queries" / f"{_spec_key(spec)}.json"
        if (cached := _cached_graph(self._cache)) is not None:
            self._found = cached, "cache"
        else:
            from narbuild.tracing.workers import PendingTrace

            self._pending = PendingTrace(spec, limits)

    def result(self) -> tuple[dict[str, Any], str]:
        """The graph and where it came from; a failed trace raises a one-line error."""
        if self._found is None:
            self._found = _ok_graph(self._pending.result()), "traced"
            try:
                self._cache.parent.mkdir(parents=True, exist_ok=True)
                write_text_atomic(self._cache, json.dumps(self._found[0]))
            except OSError:  # a read-only workspace: search works, the next one traces again
                pass
        return self._found

    def cancel(self) -> None:
        """Stop a trace still running (the caller failed before it needed the graph)."""
        if self._pending is not None and self._found is None:
            self._pending.cancel()


def _cached_graph(path: Path) -> dict[str, Any] | None:
    if path.is_file():
        try:
            graph = json.loads(path.read_text())
            if isinstance(graph, dict) and set(_GRAPH_FIELDS) <= set(graph):
                return graph
        except (OSError, ValueError):  # a torn or foreign file: trace again, overwrite it
            pass
    return None


def module_graph(module: Any, example_inputs: Any = None) -> dict[str, Any]:
    """Trace an ``nn.Module`` a user holds (inputs inferred as ``trace --model`` does when
    ``example_inputs`` is None)."""
    import torch

    from narbuild.tracing.spec import canonical_attention, infer_inputs, trace_user_module

    if not isinstance(module, torch.nn.Module):
        raise NarbuildError(f"cannot search for a {type(module).__name__}",
                            "pass an nn.Module or a model spec such as timm:resnet50")
    if example_inputs is None:
        example_inputs = infer_inputs(canonical_attention(module))
    return _ok_graph(trace_user_module(f"module:{type(module).__name__}", module,
                                       example_inputs))


def _ok_graph(row: dict[str, Any]) -> dict[str, Any]:
    if row["status"] != "ok":
        raise NarbuildError(f"tracing {row['model_id']} failed: {row['error']}",
                            "fix the model or its example inputs; `narbuild trace --model` "
                            "shows the same trace")
    if not row.get("nodes"):
        raise NarbuildError(f"{row['model_id']} traced to an empty graph",
                            "its outputs need a gradient path from trainable parameters")
    return {k: row[k] for k in _GRAPH_FIELDS}


class WorkspaceGraphs:
    """The workspace's traced graphs in memory, for many lookups (a server's): one read of the
    table, operator names dictionary-encoded (a tenth of the plain strings' memory)."""

    def __init__(self, ws: Workspace) -> None:
        table = ws.table("graphs")
        self.rows: dict[str, int] = {}
        self.table = None
        if table.exists():
            t = table.read([*_GRAPH_FIELDS, "status"])
            t = t.filter(pc.equal(t["status"], "ok")).combine_chunks()
            nodes = t["nodes"].chunk(0) if t.num_rows else None
            if nodes is not None:
                encoded = type(nodes).from_arrays(nodes.offsets, pc.dictionary_encode(
                    nodes.values))
                t = t.set_column(t.schema.get_field_index("nodes"), "nodes", encoded)
            self.table = t
            self.rows = {m: i for i, m in enumerate(t["model_id"].to_pylist())}

    def get(self, spec: str) -> dict[str, Any] | None:
        """The graph of a registry id the workspace traced, else None."""
        row = next((self.rows[n] for n in _names(spec) if n in self.rows), None)
        if row is None:
            return None
        return {k: self.table[k][row].as_py() for k in _GRAPH_FIELDS}


def _names(spec: str) -> list[str]:
    """The model ids a registry spec may be in the graphs table under."""
    if ":" not in spec or spec.endswith((".py", ".json")):
        return []
    if spec.startswith("transformers:") and "/" not in spec:
        return [spec, f"{spec}/Model"]  # the base model, as `trace --model` resolves it
    return [spec]


def _workspace_graph(ws: Workspace, spec: str) -> dict[str, Any] | None:
    """The workspace's own traced graph of a registry id, if it holds one."""
    table = ws.table("graphs")
    names = _names(spec)
    if not names or not table.exists():
        return None
    ids = table.read(["model_id", "status"])
    ok = pc.equal(ids["status"], "ok")
    found = [n for n in names if pc.any(pc.and_(pc.equal(ids["model_id"], n), ok)).as_py()]
    if not found:
        return None
    rows = table.read(list(_GRAPH_FIELDS) + ["status"])
    rows = rows.filter(pc.and_(pc.equal(rows["model_id"], found[0]),
                               pc.equal(rows["status"], "ok")))
    return {k: rows[k][0].as_py() for k in _GRAPH_FIELDS}


@functools.cache
def _tracer_digest() -> str:
    """Hash of the tracer's own source, so a changed tracer never reuses an old query graph."""
    digest = hashlib.sha256()
    for path in sorted(Path(tracing.__file__).parent.glob("*.py")):
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def _spec_key(spec: str) -> str:
    """Content key of a spec: what it names (file bytes for files) and the tracer's versions."""
    parts = [spec, __version__, _tracer_digest()]
    file = spec.rpartition(":")[0] if ".py:" in spec else spec
    if file.endswith((".py", ".json")) and Path(file).is_file():
        parts.append(hashlib.sha256(Path(file).read_bytes()).hexdigest())
        parts[0] = f"{Path(file).name}{spec[len(file):]}"
    for name in _LIBRARIES:
        try:
            parts.append(f"{name}=={metadata.version(name)}")
        except metadata.PackageNotFoundError:
            parts.append(f"{name}==none")
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:24]
