"""pyg: the graph neural networks of ``torch_geometric.nn.models``, on a small ring graph.

One row per exported model class that is a whole network: what its constructor requires comes
from :data:`ARGUMENTS` (one value per argument name), and its inputs from its forward signature
(:func:`example_inputs`). Left out: wrappers that take other modules (GAE, VGAE, ARGA, ARGVA,
DeepGraphInfomax, GroupAddRev, TGNMemory), single layers and parameter-free propagation
(DeepGCNLayer, JumpingKnowledge, HeteroJumpingKnowledge, InnerProductDecoder, MetaLayer,
LabelPropagation, CorrectAndSmooth), embeddings fitted to one graph (Node2Vec, MetaPath2Vec,
RENet), and the models whose inputs are not node features (MaskLabel, LPFormer, GPSE).
The molecular models (SchNet, DimeNet, DimeNet++, GNNFF, ViSNet) build their radius graph
with ``pyg-lib``, which has no wheel on PyPI: they are listed only where it is installed.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from typing import Any

from narbuild.crawler.base import manifest_row
from narbuild.errors import NarbuildError
from narbuild.sources.base import Built, Source, kwargs_of

SOURCE = Source(
    name="pyg", title="PyTorch Geometric models (torch_geometric.nn.models)",
    package="torch_geometric", offline=True, license="MIT",
    family="the model class, lower case (GraphSAGE -> graphsage)")

EXCLUDED = frozenset({
    "GAE", "VGAE", "ARGA", "ARGVA", "DeepGraphInfomax", "GroupAddRev", "TGNMemory",
    "DeepGCNLayer", "JumpingKnowledge", "HeteroJumpingKnowledge", "InnerProductDecoder",
    "MetaLayer", "LabelPropagation", "CorrectAndSmooth", "Node2Vec", "MetaPath2Vec", "RENet",
    "MaskLabel", "LPFormer", "GPSE", "GPSENodeEncoder"})

NODES, FEATURES, EDGE_FEATURES = 12, 16, 4
ARGUMENTS: dict[str, Any] = {
    "in_channels": FEATURES, "hidden_channels": 32, "out_channels": 8, "num_layers": 3,
    "edge_dim": EDGE_FEATURES, "num_timesteps": 2, "depth": 3, "num_nodes": NODES,
    "embedding_dim": 16, "num_blocks": 2, "num_bilinear": 4, "num_spherical": 3,
    "num_radial": 4, "int_emb_size": 16, "basis_emb_size": 4, "out_emb_channels": 32,
    "hidden_node_channels": 16, "hidden_edge_channels": 16,
}
"""A value per required constructor argument (small: the graph's shape, not its size, is
what the dataset keeps)."""

_EXTRA = {"PNA": {"aggregators": ["mean", "min", "max", "std"],
                  "scalers": ["identity", "amplification", "attenuation"],
                  "deg": [0, 0, NODES]},
          "MLP": {"channel_list": [FEATURES, 32, 32, 8]}}
"""Arguments a class requires beyond :data:`ARGUMENTS`: PNA's aggregators and its degree
histogram (a ring: every node has degree 2), and MLP's channel list."""


MOLECULAR = frozenset({"SchNet", "DimeNet", "DimeNetPlusPlus", "GNNFF", "ViSNet"})
"""Models that build a radius graph over atom positions with ``pyg-lib``."""


def _classes() -> dict[str, type]:
    import importlib.util

    import torch
    from torch_geometric.nn import models

    skip = EXCLUDED | (MOLECULAR if importlib.util.find_spec("pyg_lib") is None else set())
    return {n: c for n, c in sorted(vars(models).items()) if inspect.isclass(c)
            and issubclass(c, torch.nn.Module) and n not in skip}


def names() -> list[str]:
    return list(_classes())


def constructor_kwargs(cls: type, name: str) -> dict[str, Any]:
    """The class's required arguments from :data:`ARGUMENTS`, plus its entry in ``_EXTRA``."""
    params = inspect.signature(cls.__init__).parameters.values()
    required = [p.name for p in params if p.name != "self" and p.default is p.empty
                and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)]
    kwargs = {p: ARGUMENTS[p] for p in required if p in ARGUMENTS}
    return {**kwargs, **_EXTRA.get(name, {})}


def iter_rows(names: list[str] | None = None) -> Iterator[dict[str, Any]]:
    """One manifest row per model class (all, or ``names``)."""
    classes = _classes()
    for name in names if names is not None else classes:
        cls = classes[name]
        yield manifest_row(
            "pyg", name, {"class": name, "kwargs": constructor_kwargs(cls, name)},
            task="graph-ml", library="torch_geometric", module=name.lower(),
            metadata={"module": cls.__module__})


def build(config: dict[str, Any], step: str) -> Built:
    import torch

    cls = _classes().get(config["class"])
    if cls is None:
        raise NarbuildError(f"torch_geometric has no model {config['class']!r}",
                            "upgrade torch_geometric or re-crawl")
    kwargs = kwargs_of(config)
    if "deg" in kwargs:
        kwargs["deg"] = torch.tensor(kwargs["deg"], device="cpu")
    model = cls(**kwargs)
    return Built(model, example_inputs(model))


def example_inputs(model: Any) -> tuple:
    """Inputs by forward argument name, on a ring of :data:`NODES` nodes (edges both ways)."""
    import torch

    ring = torch.arange(NODES, device="cpu")
    edges = torch.stack([torch.cat([ring, (ring + 1) % NODES]),
                         torch.cat([(ring + 1) % NODES, ring])])
    provide = {
        "x": lambda: torch.randn(NODES, FEATURES, requires_grad=True),
        "edge_index": lambda: edges, "pos_edge_index": lambda: edges,
        "neg_edge_index": lambda: edges.flip(0), "edge_label_index": lambda: edges,
        "edge_attr": lambda: torch.randn(edges.shape[1], EDGE_FEATURES, requires_grad=True),
        "batch": lambda: torch.zeros(NODES, dtype=torch.long),
        "z": lambda: torch.randint(1, 9, (NODES,)),
        "pos": lambda: torch.randn(NODES, 3, requires_grad=True),
    }
    params = [p for p in inspect.signature(model.forward).parameters.values()
              if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)]
    inputs = {}
    for p in params:
        if p.name in provide and (p.default is p.empty or p.name in ("batch", "edge_index")):
            inputs[p.name] = provide[p.name]()
        elif p.default is p.empty:
            raise NarbuildError(f"no example input for {type(model).__name__}'s {p.name!r}",
                                "this model's inputs are not node features on a graph")
    return inputs
