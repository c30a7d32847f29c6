"""Every table's pyarrow schema, in one place.

Each table is a folder of Parquet files inside the workspace. Every file carries
``narbuild.table`` and ``narbuild.schema_version`` in its schema metadata, so a foreign or
outdated file is recognised instead of silently mixed in. Bump :data:`SCHEMA_VERSION` when a
column changes meaning; the dataset card documents the columns from the ``doc`` metadata here.
"""

from __future__ import annotations

import pyarrow as pa

SCHEMA_VERSION = "1"


def _field(name: str, type_: pa.DataType, doc: str, nullable: bool = True) -> pa.Field:
    return pa.field(name, type_, nullable=nullable, metadata={"doc": doc})


def _schema(table: str, *fields: pa.Field) -> pa.Schema:
    return pa.schema(
        list(fields),
        metadata={"narbuild.table": table, "narbuild.schema_version": SCHEMA_VERSION},
    )


MANIFEST = _schema(
    "manifest",
    _field("model_id", pa.string(), "Key: '<source>:<name>', e.g. 'timm:resnet50'.", False),
    _field("source", pa.string(), "timm | torchvision | transformers | hf-hub | torch-hub.", False),
    _field("name", pa.string(), "Name inside the source (architecture, builder, repo id).", False),
    _field("repo", pa.string(), "Hub or GitHub repository the model comes from, if any."),
    _field("revision", pa.string(), "Commit sha of the repository the config was read at."),
    _field("task", pa.string(), "Task of the model or head (pipeline tag style)."),
    _field("library", pa.string(), "Library that builds the model: timm, torchvision, transformers."),
    _field("module", pa.string(), "Family hint: timm module or torchvision builder module."),
    _field("model_type", pa.string(), "Family hint: transformers model_type."),
    _field("architectures", pa.list_(pa.string()), "Family hint: model classes (transformers)."),
    _field("config", pa.string(), "JSON needed to build the model without weights."),
    _field("config_hash", pa.string(), "sha256 of the canonical config JSON."),
    _field("metadata", pa.string(), "JSON of extra facts (published params/FLOPs, tags, ...)."),
    _field("needs_remote_code", pa.bool_(), "Building runs code from the repo (trust_remote_code)."),
    _field("status", pa.string(), "ok | error (a Hub repo that could not be read).", False),
    _field("error", pa.string(), "Why the row is an error row."),
    _field("crawled_at", pa.timestamp("s", tz="UTC"), "When the row was crawled.", False),
)

GRAPHS = _schema(
    "graphs",
    _field("model_id", pa.string(), "Key: the manifest's model id.", False),
    _field("status", pa.string(), "ok | error.", False),
    _field("error", pa.string(), "One-line reason when status is error."),
    _field("nodes", pa.list_(pa.string()), "Autograd operator per node, e.g. 'AddmmBackward0'."),
    _field("edge_src", pa.list_(pa.int32()), "Edge producers (node indices); data flows src -> dst."),
    _field("edge_dst", pa.list_(pa.int32()), "Edge consumers (node indices)."),
    _field("num_nodes", pa.int32(), "Number of nodes."),
    _field("num_edges", pa.int32(), "Number of edges."),
    _field("graph_hash", pa.string(), "Canonical hash: same structure and operators, same hash."),
    _field("flops", pa.int64(), "FLOPs of one forward pass, FlopCounterMode convention (2 per MAC)."),
    _field("macs", pa.int64(), "Multiply-accumulates of one forward pass (flops / 2)."),
    _field("params", pa.int64(), "Parameters, shared/tied ones counted once."),
    _field("inputs", pa.string(), "JSON: input name -> {shape, dtype}."),
    _field("outputs", pa.string(), "JSON: list of traced output shapes."),
    _field("device", pa.string(), "Device the forward pass ran on (meta or cpu)."),
    _field("dtype", pa.string(), "Parameter dtype during the trace."),
    _field("fallback", pa.string(), "Fallback step that succeeded (or the last tried)."),
    _field("attention", pa.string(), "Attention implementation requested (canonical: eager/math)."),
    _field("config_hash", pa.string(), "Manifest config hash this row was traced from."),
    _field("wall_time_s", pa.float64(), "Seconds spent building, running and walking the model."),
    _field("peak_rss_mb", pa.float64(), "Worker peak resident memory after this model (MiB)."),
    _field("torch_version", pa.string(), "torch version used."),
    _field("narbuild_version", pa.string(), "narbuild version used."),
    _field("traced_at", pa.timestamp("s", tz="UTC"), "When the row was traced.", False),
)

NAS = _schema(
    "nas",
    *[f for f in GRAPHS],
    _field("genotype", pa.string(), "DARTS genotype, canonical form, in the usual notation."),
    _field("darts_nodes", pa.list_(pa.string()), "DARTS-level graph: node labels (ops, add, concat, ...)."),
    _field("darts_edge_src", pa.list_(pa.int32()), "DARTS-level graph: edge producers."),
    _field("darts_edge_dst", pa.list_(pa.int32()), "DARTS-level graph: edge consumers."),
    _field("cluster", pa.int32(), "Edit-distance class (0-based)."),
    _field("centre", pa.string(), "Genotype of the class centre."),
    _field("distance", pa.int32(), "Graph edit distance to the class centre."),
)

TABLES: dict[str, tuple[pa.Schema, str]] = {
    "manifest": (MANIFEST, "model_id"),
    "graphs": (GRAPHS, "model_id"),
    "nas": (NAS, "model_id"),
}
"""Table name -> (schema, key column)."""


def column_docs(schema: pa.Schema) -> dict[str, str]:
    """Column name -> documentation string, for dataset cards and ``--help``."""
    return {f.name: (f.metadata or {}).get(b"doc", b"").decode() for f in schema}
