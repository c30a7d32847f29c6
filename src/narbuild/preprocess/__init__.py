"""Stage 3, ``narbuild preprocess``: operator vocabulary, labels, duplicate collapse, motifs and
macro graphs, split (the NAR paper, sections 3.2-3.3 and 4.1).

::

    from narbuild import Workspace
    from narbuild.preprocess import preprocess, clean_graph, split_graph, coarse_label

    summary = preprocess(Workspace("narbuild-data"), dataset="all", steps=2)   # the table
    g = clean_graph(row["nodes"], row["edge_src"], row["edge_dst"])           # one new graph
    cut = split_graph(g.op_names, g.src, g.dst, steps=2)                      # its motifs
    cut.node_motif, cut.keys, cut.macro_src, cut.macro_dst

Modules: :mod:`.vocab` (the fixed operator ids), :mod:`.operators` (name mapping, node removal),
:mod:`.encode` (neighbour encoding, graph hash, node order), :mod:`.motifs` (motif sampling, macro
and context graphs, Table-2 splitters), :mod:`.labels` (fine and coarse labels), :mod:`.split`
(the stratified split), :mod:`.pipeline` (the stage), :mod:`.cli` (the command).
"""

from __future__ import annotations

from narbuild.preprocess.encode import encode, graph_hash, node_order
from narbuild.preprocess.labels import coarse_label, fine_label, name_hint
from narbuild.preprocess.motifs import MotifSplit, context_graph, macro_edges, split_graph
from narbuild.preprocess.operators import (
    REMOVED,
    RENAMES,
    CleanGraph,
    clean_graph,
    map_operators,
    normalise_op,
    remove_nodes,
)
from narbuild.preprocess.pipeline import PreprocessSummary, preprocess, process_codes
from narbuild.preprocess.split import stratified_split
from narbuild.preprocess.vocab import EXTRA, OP_ID, PUBLISHED, VOCAB

__all__ = [
    "EXTRA", "OP_ID", "PUBLISHED", "REMOVED", "RENAMES", "VOCAB", "CleanGraph", "MotifSplit",
    "PreprocessSummary", "clean_graph", "coarse_label", "context_graph", "encode", "fine_label",
    "graph_hash", "macro_edges", "map_operators", "name_hint", "node_order", "normalise_op",
    "preprocess", "process_codes", "remove_nodes", "split_graph", "stratified_split",
]
