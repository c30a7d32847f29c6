"""The ``variants`` protocol's queries: depth and width variants of real architectures.

Each variant is a real architecture rebuilt through its registry's own config knob, so its
family is known and its graph is new:

* transformers: the base model (``<type>/Model``) of :data:`TRANSFORMERS_TYPES` model types,
  chosen by a hash of the type name, at ``num_hidden_layers`` in :data:`DEPTHS` and at
  ``hidden_size`` x 0.5 and x 2 (the default depth; heads must still divide the width);
* timm: per module, the first :data:`TIMM_PER_MODULE` architectures (by a hash of the name) whose entrypoint
  passes a literal ``depth``/``depths``/``layers`` (and ``embed_dim``) to its model class, at
  0.5x and 2x that depth (each stage's depth for a tuple) and 0.5x its width.

Only architectures that traced in the workspace are varied, so the set is a pure function of
the registries' versions and :data:`VARIANTS_VERSION`. Variants live in their own workspace
(``<workdir>/variants``: manifest, graphs, processed), traced and preprocessed by the usual
stages; a variant whose graph equals a catalogue graph is dropped at evaluation time.
"""

from __future__ import annotations

import ast
import copy
import hashlib
import inspect
import json
import textwrap
from collections.abc import Callable, Iterator
from typing import Any

from narbuild.crawler.base import manifest_row
from narbuild.workspace import Workspace

VARIANTS_VERSION = "1"
DEPTHS = (2, 4, 8, 24)
WIDTH_SCALES = (0.5, 2.0)
TIMM_DEPTH_SCALES = (0.5, 2.0)
TRANSFORMERS_TYPES = 100
TIMM_PER_MODULE = 2
_TIMM_KNOBS = ("depth", "depths", "layers", "embed_dim", "num_heads")


def variant_rows(manifest: list[dict[str, Any]], traced: set[str]) -> Iterator[dict[str, Any]]:
    """Manifest rows of every variant of the ``traced`` rows of ``manifest`` (see the module)."""
    ok = sorted((r for r in manifest if r["model_id"] in traced), key=lambda r: r["model_id"])
    bases = [r for r in ok if r["source"] == "transformers" and r["name"].endswith("/Model")]
    bases.sort(key=lambda r: _rank(r["model_type"]))
    for row in bases[:TRANSFORMERS_TYPES]:
        yield from _transformers_variants(row)
    per_module: dict[str, int] = {}
    timm_rows = sorted((r for r in ok if r["source"] == "timm"), key=lambda r: _rank(r["name"]))
    for row in timm_rows:
        if per_module.get(row["module"], 0) < TIMM_PER_MODULE:
            found = list(_timm_variants(row))
            per_module[row["module"]] = per_module.get(row["module"], 0) + bool(found)
            yield from found


def _rank(name: str) -> str:
    return hashlib.sha256(name.encode()).hexdigest()


def _variant(row: dict[str, Any], config: dict[str, Any], knob: str, value: Any) -> dict:
    tag = ",".join(str(v) for v in value) if isinstance(value, (list, tuple)) else value
    return manifest_row(
        row["source"], f"{row['name']}#{knob}={tag}", config, task=row["task"],
        library=row["library"], module=row["module"], model_type=row["model_type"],
        architectures=row["architectures"],
        metadata={"variant_of": row["model_id"], "knob": knob, "value": value,
                  "variants_version": VARIANTS_VERSION})


def _transformers_variants(row: dict[str, Any]) -> Iterator[dict[str, Any]]:
    from transformers.models.auto.configuration_auto import CONFIG_MAPPING

    base = json.loads(row["config"])
    try:
        parsed = CONFIG_MAPPING[base["model_type"]].from_dict(base["config"])
    except Exception:  # noqa: BLE001 - a config that does not parse gets no variant
        return

    def read(name: str) -> Any:
        try:
            return getattr(parsed, name)
        except Exception:  # noqa: BLE001 - a composite config may not answer
            return None

    def with_value(name: str, value: int) -> dict[str, Any] | None:
        old = read(name)
        if not isinstance(old, int) or old == value:
            return None
        try:
            cfg = copy.deepcopy(parsed)
            setattr(cfg, name, value)  # through the config's attribute_map (n_layer, d_model)
            plain = cfg.to_dict()
        except Exception:  # noqa: BLE001 - a config without the knob gets no variant
            return None
        if name == "num_hidden_layers":  # per-layer lists follow the new depth
            for key, v in list(plain.items()):
                if isinstance(v, list) and len(v) == old and old:
                    plain[key] = [v[i % old] for i in range(value)]
        return {**base, "config": plain}

    for depth in DEPTHS:
        if (config := with_value("num_hidden_layers", depth)) is not None:
            yield _variant(row, config, "layers", depth)
    width, heads = read("hidden_size"), read("num_attention_heads")
    for scale in WIDTH_SCALES if isinstance(width, int) else ():
        value = int(width * scale)
        if isinstance(heads, int) and heads and value % heads:
            continue
        if (config := with_value("hidden_size", value)) is not None:
            yield _variant(row, config, "hidden", value)


def timm_knobs(name: str) -> dict[str, Any]:
    """The literal ``depth``/``depths``/``layers``/``embed_dim``/``num_heads`` that timm's
    entrypoint for ``name`` passes to its model class (empty when it passes none)."""
    from timm.models import _registry

    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(_registry.model_entrypoint(name))))
    except (OSError, TypeError, RuntimeError, SyntaxError):
        return {}
    found: dict[str, Any] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.keyword) and node.arg in _TIMM_KNOBS and node.arg not in found:
            try:
                found[node.arg] = ast.literal_eval(node.value)
            except ValueError:
                continue
    return found


def _timm_variants(row: dict[str, Any]) -> Iterator[dict[str, Any]]:
    base = json.loads(row["config"])
    knobs = timm_knobs(base["architecture"])
    for knob in ("depth", "depths", "layers"):
        value = knobs.get(knob)
        if isinstance(value, int) or (isinstance(value, (list, tuple)) and value
                                      and all(isinstance(v, int) for v in value)):
            for scale in TIMM_DEPTH_SCALES:
                new = _scaled(value, scale)
                if new != value:
                    yield _variant(row, {**base, "kwargs": {knob: new}}, knob, new)
            break
    width, heads = knobs.get("embed_dim"), knobs.get("num_heads")
    if isinstance(width, int) and isinstance(heads, int) and (width // 2) % heads == 0:
        yield _variant(row, {**base, "kwargs": {"embed_dim": width // 2}}, "embed_dim",
                       width // 2)


def _scaled(value: int | list | tuple, scale: float) -> int | list[int]:
    if isinstance(value, int):
        return max(1, round(value * scale))
    return [max(1, round(v * scale)) for v in value]


def build_variants(ws: Workspace, workers: int = 2,
                   on_step: Callable[[str], None] | None = None) -> Workspace:
    """Crawl, trace and preprocess the variants of ``ws``'s traced catalogue into
    ``<workdir>/variants`` (each stage resumes where an interrupted run stopped)."""
    from narbuild.preprocess.pipeline import preprocess
    from narbuild.tracing.runner import trace_catalog
    from narbuild.tracing.workers import TraceOptions

    sub = Workspace(ws.root / "variants", create=True)
    state = sub.root / "variants.json"
    if not (state.exists() and json.loads(state.read_text()).get("version") == VARIANTS_VERSION):
        graphs = ws.table("graphs").read(["model_id", "status"]).to_pylist()
        traced = {g["model_id"] for g in graphs if g["status"] == "ok"}
        rows = list(variant_rows(ws.table("manifest").read().to_pylist(), traced))
        with sub.writer("variants"):
            manifest = sub.table("manifest")
            manifest.replace(manifest.to_arrow(rows))
        state.write_text(json.dumps({"version": VARIANTS_VERSION, "rows": len(rows)}))
    if on_step:
        on_step("trace")
    trace_catalog(sub, TraceOptions(workers=workers))
    if on_step:
        on_step("preprocess")
    preprocess(sub, "real", workers=workers)
    return sub
