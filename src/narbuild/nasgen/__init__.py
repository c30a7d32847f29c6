"""DARTS-space networks in edit-distance classes (the NAR paper's NAS set, section 4.1, A.4).

::

    from narbuild import Workspace
    from narbuild.nasgen import generate, write, parse_genotype, network_distance

    table = generate(count=3000, classes=10, seed=0)     # a pyarrow.Table, schema NAS
    write(Workspace("narbuild-data", create=True))       # the workspace's nas table

Modules: :mod:`.genotype` (notation, space, canonical form), :mod:`.distance` (exact graph edit
distance), :mod:`.sampling` (centres and classes), :mod:`.graphs` (the DARTS-level and
operator-level views), :mod:`.wl` (the tracer's graph hash in bulk), :mod:`.cost` (FLOPs and
parameters), :mod:`.modules` (the real PyTorch modules; imports torch), :mod:`.dataset` (the table).
"""

from __future__ import annotations

from narbuild.nasgen.dataset import NasSet, generate, generate_set, write
from narbuild.nasgen.distance import (
    cell_distance,
    cell_distances,
    network_distance,
    network_distances,
    networkx_ged,
)
from narbuild.nasgen.genotype import (
    OPS,
    PUBLISHED,
    Genotype,
    canonical_genotype,
    format_genotype,
    in_space,
    parse_genotype,
)
from narbuild.nasgen.graphs import DARTS_VIEW, OPERATOR_VIEW, build_graphs

__all__ = [
    "DARTS_VIEW", "OPERATOR_VIEW", "OPS", "PUBLISHED", "Genotype", "NasSet", "build_graphs",
    "canonical_genotype", "cell_distance", "cell_distances", "format_genotype", "generate",
    "generate_set", "in_space", "network_distance", "network_distances", "networkx_ged",
    "parse_genotype", "write",
]
