"""What the web app asks of a workspace: a query (a model id, an uploaded file or a pasted
config) turned into a search, and the pictures of a result; searchers stay warm between queries.

Uploads are checked before anything runs: size, suffix, Python syntax (parsed, not run) or
JSON. They are copied into the engine's own temporary folder, never into the workspace, and a
``.py`` file is run only inside the tracer's isolated worker process, under its time and memory
limits (:func:`narbuild.tracing.trace_isolated`).
"""

from __future__ import annotations

import ast
import json
import shutil
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from narbuild.errors import NarbuildError
from narbuild.retrieval.query import WorkspaceGraphs
from narbuild.retrieval.rankers import DEFAULT_METHOD
from narbuild.retrieval.search import Searcher, SearchResult
from narbuild.tracing.workers import TraceOptions
from narbuild.workspace import Workspace

MAX_UPLOAD_BYTES = 1_000_000
"""The largest file or pasted config a query may be (a model file, not weights)."""
SCOPES = ("real", "nas", "all")
WL_METHODS = ("wl-fam", "wl")


@dataclass
class Query:
    """One query, as the page sends it: exactly one of ``model_id``, ``file`` (a ``.py`` or
    ``config.json`` path, with ``factory`` for a ``.py``) and ``config`` (pasted JSON)."""

    model_id: str = ""
    file: str | None = None
    factory: str = ""
    config: str = ""


class SearchEngine:
    """Searches over one workspace, with a warm :class:`Searcher` per scope and method."""

    def __init__(self, workspace: Workspace | str | Path | None = None,
                 limits: TraceOptions | None = None,
                 max_upload_bytes: int = MAX_UPLOAD_BYTES) -> None:
        self.ws = workspace if isinstance(workspace, Workspace) else Workspace(workspace)
        self.limits = limits or TraceOptions(timeout_s=60.0)
        self.max_upload_bytes = max_upload_bytes
        self._searchers: dict[tuple[str, str], Searcher] = {}
        self._macro: dict[str, dict[str, dict[str, Any]]] = {}
        self._maps: dict[tuple[str, str, str], tuple[list[str], np.ndarray]] = {}
        self._lock = threading.Lock()
        self._workspace_graphs: WorkspaceGraphs | None = None
        self._uploads = Path(tempfile.mkdtemp(prefix="narbuild-serve-"))

    def warm(self, dataset: str = "real", method: str = DEFAULT_METHOD) -> None:
        """Import the tracer's libraries once (a query's trace worker forks from this process
        and starts in milliseconds) and open the default searcher's indexes, with a search of
        a model the workspace holds."""
        from narbuild.tracing.workers import preload_libraries

        preload_libraries()
        known = next(iter(self._graphs().rows), None)  # the graphs held for every query
        if known:
            try:
                self.search(Query(model_id=known), method, 1, dataset)
            except NarbuildError:  # not searchable yet: each query will say why
                pass

    def close(self) -> None:
        """Remove the uploads folder."""
        shutil.rmtree(self._uploads, ignore_errors=True)

    # ------------------------------------------------------------------ what the page offers

    def model_ids(self) -> list[str]:
        """Every model id of the workspace's manifest (the query box completes them)."""
        table = self.ws.table("manifest")
        return sorted(table.keys()) if table.exists() else []

    def methods(self) -> list[str]:
        """The default, the WL methods, then every learned method the workspace holds
        embeddings of or narbuild bundles, alone and fused with wl-fam."""
        from narbuild.encoder.bundled import BUNDLED

        table = self.ws.table("embeddings")
        stored = (set(table.read(["method"]).column("method").to_pylist())
                  if table.exists() else set())
        learned = sorted(stored | set(BUNDLED))
        fused = [f"{m}+wl-fam" for m in learned]
        return [DEFAULT_METHOD, *WL_METHODS,
                *(m for m in [*learned, *fused] if m != DEFAULT_METHOD)]

    # ------------------------------------------------------------------ searching

    def search(self, query: Query, method: str = DEFAULT_METHOD, k: int = 10,
               dataset: str = "real") -> SearchResult:
        """The ``k`` closest records to ``query``; a bad query is a one-line
        :class:`NarbuildError` and changes nothing."""
        if dataset not in SCOPES:
            raise NarbuildError(f"unknown dataset {dataset!r}", f"choose {', '.join(SCOPES)}")
        if not 1 <= k <= 100:
            raise NarbuildError(f"k must be between 1 and 100, got {k}", "ask for 10, say")
        spec = self.spec_of(query)
        with self._lock:  # one search at a time: the searchers and the trace worker are shared
            searcher = self._searchers.get((dataset, method))
            if searcher is None:
                searcher = Searcher(self.ws, dataset, method)
                searcher.graphs = self._graphs()
            result = searcher.search(spec, k=k, limits=self.limits)
            self._searchers[(dataset, method)] = searcher  # kept once it has answered
        return result

    def _graphs(self) -> WorkspaceGraphs:
        """The workspace's graphs in memory, shared by every searcher."""
        if self._workspace_graphs is None:
            self._workspace_graphs = WorkspaceGraphs(self.ws)
        return self._workspace_graphs

    def spec_of(self, query: Query) -> str:
        """The tracer's spec of a query: the id, or a checked copy of the upload."""
        given = [bool(query.model_id.strip()), bool(query.file), bool(query.config.strip())]
        if sum(given) != 1:
            raise NarbuildError("give one query: a model id, a file or a pasted config",
                                "clear the other fields")
        if query.model_id.strip():
            return query.model_id.strip()
        if query.config.strip():
            return self._config_spec(query.config.encode())
        path = Path(query.file)
        data = path.read_bytes()
        if path.suffix == ".json":
            return self._config_spec(data)
        if path.suffix != ".py":
            raise NarbuildError(f"{path.name} is neither a .py file nor a config.json",
                                "upload a Python file with a factory, or a config.json")
        return self._python_spec(path.name, data, query.factory.strip())

    def _checked_size(self, data: bytes, what: str) -> None:
        if len(data) > self.max_upload_bytes:
            raise NarbuildError(f"the {what} is {len(data):,} bytes, over the "
                                f"{self.max_upload_bytes:,}-byte limit",
                                "upload the model's definition, not its weights")

    def _config_spec(self, data: bytes) -> str:
        self._checked_size(data, "config")
        try:
            config = json.loads(data)
        except ValueError as exc:
            raise NarbuildError(f"the config is not JSON ({exc})",
                                "paste a Hugging Face config.json") from exc
        if not isinstance(config, dict) or not (
                (config.get("model_type") and config.get("architectures"))
                or config.get("architecture")):
            raise NarbuildError("the config names no model_type and architectures "
                                "(transformers) or architecture (timm)",
                                "paste a model's config.json from the Hugging Face Hub")
        folder = Path(tempfile.mkdtemp(dir=self._uploads))
        (folder / "config.json").write_bytes(data)
        return str(folder / "config.json")

    def _python_spec(self, name: str, data: bytes, factory: str) -> str:
        self._checked_size(data, "file")
        try:
            tree = ast.parse(data, filename=name)
        except (SyntaxError, ValueError) as exc:
            raise NarbuildError(f"{name} is not Python: {exc.__class__.__name__} "
                                f"{getattr(exc, 'msg', exc)}",
                                "upload a .py file that defines a factory function") from exc
        functions = [n.name for n in tree.body
                     if isinstance(n, ast.FunctionDef) and not n.name.startswith("_")
                     and n.name != "example_inputs"]
        if not factory:
            if len(functions) != 1:
                raise NarbuildError(f"{name} defines {len(functions)} functions "
                                    f"({', '.join(functions) or 'none'})",
                                    "name the factory that returns the model")
            factory = functions[0]
        elif factory not in functions:
            raise NarbuildError(f"{name} defines no function {factory!r}",
                                f"functions there: {', '.join(functions) or 'none'}")
        folder = Path(tempfile.mkdtemp(dir=self._uploads))
        stem = "".join(c if c.isalnum() or c == "_" else "_" for c in Path(name).stem) or "model"
        path = folder / f"{stem}.py"
        path.write_bytes(data)
        return f"{path}:{factory}"

    # ------------------------------------------------------------------ pictures

    def macro_graph(self, dataset: str, record_id: str) -> dict[str, Any]:
        """A record's macro graph and motifs (read once per dataset)."""
        if dataset not in self._macro:
            columns = ["record_id", "macro_motif", "macro_edge_src", "macro_edge_dst",
                       "motif_keys", "motif_ops"]
            rows = self.ws.table("processed").read(columns, subdir=dataset).to_pylist()
            self._macro[dataset] = {r["record_id"]: r for r in rows}
        return self._macro[dataset][record_id]

    def map_points(self, dataset: str, method: str, scope: str) -> tuple[list[str], np.ndarray]:
        """2-D coordinates of every record of ``dataset``: the first two principal axes of the
        vectors the method ranks with (computed once)."""
        key = (dataset, method, scope)
        if key not in self._maps:
            from sklearn.decomposition import TruncatedSVD

            searcher = self._searchers[(scope, method)]
            ranker = next(d.ranker for d in searcher._datasets if d.name == dataset)
            points = TruncatedSVD(2, random_state=0).fit_transform(ranker.vectors())
            self._maps[key] = (list(ranker.ids), points)
        return self._maps[key]
