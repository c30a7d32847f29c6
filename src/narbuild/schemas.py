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
    _field("flops", pa.int64(), "FLOPs of one forward pass, FlopCounterMode convention (2 per MAC); null where not measured (fallback meta-nonzero)."),
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

PROCESSED = _schema(
    "processed",
    _field("record_id", pa.string(), "Key: '<dataset>:<first 16 hex of graph_hash>'.", False),
    _field("dataset", pa.string(), "real (traced models) | nas (gen-nas networks).", False),
    _field("model_id", pa.string(), "Representative model id (the first of model_ids)."),
    _field("model_ids", pa.list_(pa.string()), "Every model id whose graph is this record "
           "(duplicates collapsed by graph_hash)."),
    _field("num_models", pa.int32(), "Number of model ids collapsed into this record."),
    _field("source", pa.string(), "Source of the representative model (timm, torchvision, ...)."),
    _field("task", pa.string(), "Task of the representative model."),
    _field("fine_label", pa.string(), "Architecture family: metadata first (timm module, "
           "torchvision builder, transformers model_type), aliases merged; majority over model_ids."),
    _field("fine_labels", pa.list_(pa.string()), "Family of each model id, aligned with model_ids."),
    _field("label_source", pa.string(), "How fine_label was found: metadata | name-hint."),
    _field("coarse_label", pa.string(), "cnn-block | attention-block | other, read off the graph."),
    _field("split", pa.string(), "train | test: 0.9/0.1 stratified by fine_label, fixed seed."),
    _field("op_names", pa.list_(pa.string()), "Operator per node (autograd name without "
           "Backward<N>, renames folded), after removing AccumulateGrad and T."),
    _field("op_ids", pa.list_(pa.int32()), "Operator id per node: 0 unknown, 1-89 the published NAR "
           "vocabulary, 90+ narbuild's stable extra ids."),
    _field("edge_src", pa.list_(pa.int32()), "Edge producers (torch_geometric edge_index[0])."),
    _field("edge_dst", pa.list_(pa.int32()), "Edge consumers (torch_geometric edge_index[1])."),
    _field("num_nodes", pa.int32(), "Number of nodes after removal."),
    _field("num_edges", pa.int32(), "Number of edges after removal."),
    _field("node_motif", pa.list_(pa.int32()), "Per node: the macro node (motif instance) it "
           "belongs to. A motif's context graph is its nodes plus their k-hop neighbours."),
    _field("macro_motif", pa.list_(pa.int32()), "Per macro node: index into motif_keys."),
    _field("macro_edge_src", pa.list_(pa.int32()), "Macro-graph edge producers (macro nodes)."),
    _field("macro_edge_dst", pa.list_(pa.int32()), "Macro-graph edge consumers (macro nodes)."),
    _field("num_motifs", pa.int32(), "Number of macro nodes (motif instances)."),
    _field("motif_keys", pa.list_(pa.string()), "Distinct motifs of this record: a key that is "
           "the same in every graph containing that motif (hash of its encoded nodes)."),
    _field("motif_ops", pa.list_(pa.string()), "Per distinct motif: its operators in sequence "
           "order, space separated (readable form of the key)."),
    _field("steps", pa.int32(), "Neighbour-encoding steps s used for motif sampling."),
    _field("splitter", pa.string(), "Motif splitter: motif | nodes:N | count:K | random:A-B."),
    _field("graph_hash", pa.string(), "Canonical hash of the cleaned graph (operators and edges)."),
    _field("flops", pa.int64(), "FLOPs of one forward pass (from the graphs/nas table)."),
    _field("params", pa.int64(), "Parameters (from the graphs/nas table)."),
    _field("genotype", pa.string(), "nas: DARTS genotype of the representative network."),
    _field("cluster", pa.int32(), "nas: edit-distance class."),
    _field("narbuild_version", pa.string(), "narbuild version used."),
    _field("processed_at", pa.timestamp("s", tz="UTC"), "When the row was written.", False),
)

EMBEDDINGS = _schema(
    "embeddings",
    _field("embedding_id", pa.string(), "Key: '<method>:<record_id>'.", False),
    _field("record_id", pa.string(), "The processed record this vector embeds.", False),
    _field("dataset", pa.string(), "real | nas (as in the processed table).", False),
    _field("model_id", pa.string(), "Representative model id of the record (readability)."),
    _field("method", pa.string(), "The learned encoder that made the vector: nar | gcn | gat | vae "
           "(WL rankings are computed at search time, not stored).", False),
    _field("encoder_id", pa.string(), "Which trained encoder: '<method>@<checkpoint content "
           "hash>', with ' (bundled)' for a checkpoint shipped with narbuild."),
    _field("dim", pa.int32(), "Length of vector."),
    _field("vector", pa.list_(pa.float32()), "The embedding; compare with cosine similarity."),
    _field("narbuild_version", pa.string(), "narbuild version used."),
    _field("embedded_at", pa.timestamp("s", tz="UTC"), "When the row was written.", False),
)

NAS_IO = _schema(
    "nas_io",
    _field("model_id", pa.string(), "Key: the network's model id in the nas table.", False),
    _field("split", pa.string(), "train (labelled training networks) | val (unseen networks, "
           "for the unseen-networks evaluation).", False),
    _field("genotype", pa.string(), "DARTS genotype (as in the nas table)."),
    _field("cluster", pa.int32(), "Edit-distance class (as in the nas table)."),
    _field("params", pa.int64(), "Parameters of the trained network (width and depth in settings)."),
    _field("accuracy", pa.float64(), "Accuracy on the validation images after training."),
    _field("unseen_accuracy", pa.float64(), "Accuracy on the unseen (held-out) images."),
    _field("train_loss", pa.float64(), "Mean training loss of the last epoch."),
    _field("features", pa.int32(), "F: length of a pooled feature vector (input of the last "
           "dense layer)."),
    _field("val_outputs", pa.list_(pa.float32()), "Raw global-average-pooled features on the "
           "validation images, row-major (images x F), images in settings.val_images order."),
    _field("unseen_outputs", pa.list_(pa.float32()), "Raw pooled features on the unseen "
           "images, row-major (images x F), in settings.unseen_images order."),
    _field("dense_weight", pa.list_(pa.float32()), "Last dense layer's weights, row-major "
           "(classes x F)."),
    _field("dense_bias", pa.list_(pa.float32()), "Last dense layer's bias (classes)."),
    _field("val_io", pa.list_(pa.float32()), "Preprocessed outputs on the validation images "
           "(images x (F + 1)): scaled by the network's mean and std, 1 appended, sorted by the "
           "image class's dense weights (bias appended) and multiplied by them, then scaled per "
           "feature by the training networks' statistics. Null until every network is trained."),
    _field("unseen_io", pa.list_(pa.float32()), "Preprocessed outputs on the unseen images "
           "(images x (F + 1)), as val_io."),
    _field("seed", pa.int64(), "Seed of this network's initial weights and batch order."),
    _field("seconds", pa.float64(), "Seconds to build, train and evaluate the network."),
    _field("settings", pa.string(), "JSON: the run's options (networks, seed, training budget, "
           "image dataset, the validation and unseen image indices and labels)."),
    _field("torch_version", pa.string(), "torch version used."),
    _field("narbuild_version", pa.string(), "narbuild version used."),
    _field("trained_at", pa.timestamp("s", tz="UTC"), "When the network was trained.", False),
)

TABLES: dict[str, tuple[pa.Schema, str]] = {
    "manifest": (MANIFEST, "model_id"),
    "graphs": (GRAPHS, "model_id"),
    "nas": (NAS, "model_id"),
    "processed": (PROCESSED, "record_id"),
    "embeddings": (EMBEDDINGS, "embedding_id"),
    "nas_io": (NAS_IO, "model_id"),
}
"""Table name -> (schema, key column)."""


def column_docs(schema: pa.Schema) -> dict[str, str]:
    """Column name -> documentation string, for dataset cards and ``--help``."""
    return {f.name: (f.metadata or {}).get(b"doc", b"").decode() for f in schema}
