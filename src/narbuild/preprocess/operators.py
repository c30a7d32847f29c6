"""Operators: modern autograd names onto the NAR vocabulary, and node removal.

A traced node is an autograd class name (``AddmmBackward0``, ``AccumulateGrad``, a custom
``XSoftmaxBackward``). :func:`normalise_op` strips the ``Backward<N>`` suffix and folds the
renames of :data:`RENAMES` (PyTorch 2.x spelling -> the PyTorch <= 1.10 spelling of the published
vocabulary); :func:`op_ids` looks the result up in :mod:`narbuild.preprocess.vocab`.
:func:`clean_graph` does both and removes :data:`REMOVED` (``AccumulateGrad`` parameter leaves and
``T`` transposes of weights), linking each removed node's inputs to its consumers as the paper did.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache

import numpy as np

from narbuild.preprocess.vocab import OP_ID

REMOVED: frozenset[str] = frozenset({"AccumulateGrad", "T"})
"""Operators removed before anything else (names after :func:`normalise_op`)."""

RENAMES: dict[str, str] = {
    # batch norm: the legit/no-update/backend kernels of PyTorch 2.x are the old native one
    "NativeBatchNormLegit": "NativeBatchNorm",
    "NativeBatchNormLegitNoTraining": "NativeBatchNorm",
    "BatchNormWithUpdate": "NativeBatchNorm",
    "BatchNormNoUpdate": "NativeBatchNorm",
    "CudnnBatchNorm": "NativeBatchNorm",
    "MiopenBatchNorm": "NativeBatchNorm",
    # convolution: every backend kernel (and transposed / 3-D) is one Convolution node today
    **{k: "Convolution" for k in (
        "ConvDepthwise2D", "ConvDepthwise3D", "SlowConv2D", "SlowConv3D", "SlowConvDilated2D",
        "SlowConvDilated3D", "SlowConvTranspose2D", "SlowConvTranspose3D", "CudnnConvolution",
        "CudnnConvolutionTranspose", "MkldnnConvolution", "MiopenConvolution",
        "MiopenConvolutionTranspose", "MiopenDepthwiseConvolution", "MpsConvolution",
        "MpsConvolutionTranspose", "NnpackSpatialConvolution", "ConvolutionOverrideable",
        "ThnnConv2D", "ThnnConvDepthwise2D")},
    # torch.norm is linalg_vector_norm since 1.11
    "LinalgVectorNorm": "Norm",
    # softmax without NaNs for fully masked rows (SDPA math path, 2.5+)
    "SafeSoftmax": "Softmax",
    # split/index/pool/upsample variants
    "UnsafeSplit": "Split",
    "UnsafeSplitWithSizes": "SplitWithSizes",
    "UnsafeIndex": "Index",
    "IndexPutImpl": "IndexPut",
    "UnsafeIndexPut": "IndexPut",
    "MaxPool2D": "MaxPool2DWithIndices",
    "MkldnnMaxPool2D": "MaxPool2DWithIndices",
    "MkldnnAdaptiveAvgPool2D": "AdaptiveAvgPool2D",
    "UpsampleBilinear2DAa": "UpsampleBilinear2D",
    "UpsampleBicubic2DAa": "UpsampleBicubic2D",
    "MkldnnReshape": "View",
    "LazyClone": "Clone",
    "FusedDropout": "NativeDropout",
    "MkldnnLinear": "Linear",
}
"""Today's name -> the published (or canonical extra) name it folds onto. Documented table: each
entry is the same operation under another kernel or a newer spelling."""

_SUFFIX = re.compile(r"Backward\d*$")


@cache
def normalise_op(name: str) -> str:
    """``'NativeBatchNormLegitNoTrainingBackward0'`` -> ``'NativeBatchNorm'``; names without the
    suffix (``AccumulateGrad``, ``CopySlices``) are kept as they are."""
    base = _SUFFIX.sub("", name) or name
    return RENAMES.get(base, base)


def op_id(name: str) -> int:
    """Vocabulary id of a normalised name; 0 (``unknown``) when it is in no list."""
    return OP_ID.get(name, 0)


def map_operators(nodes: Sequence[str]) -> tuple[list[str], np.ndarray]:
    """Normalised names and vocabulary ids (int32) of raw autograd node names."""
    names = [normalise_op(n) for n in nodes]
    return names, np.fromiter((op_id(n) for n in names), dtype=np.int32, count=len(names))


def remove_nodes(num_nodes: int, src: np.ndarray, dst: np.ndarray, drop: np.ndarray
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Remove the nodes where ``drop`` is true, linking each one's producers to its consumers
    (through chains of removed nodes). Returns ``(kept node indices, src, dst)`` with edges
    renumbered over the kept nodes, deduplicated and sorted."""
    src = np.asarray(src, dtype=np.int64)
    dst = np.asarray(dst, dtype=np.int64)
    drop = np.asarray(drop, dtype=bool)
    kept = np.flatnonzero(~drop)
    if drop.any() and len(src):
        order = np.argsort(dst, kind="stable")
        par_src, indptr = src[order], np.searchsorted(dst[order], np.arange(num_nodes + 1))
        done = [np.stack([src, dst])[:, ~drop[src] & ~drop[dst]]]
        front = np.stack([src, dst])[:, drop[src] & ~drop[dst]]
        while front.shape[1]:
            r, v = front
            counts = indptr[r + 1] - indptr[r]
            starts = np.repeat(indptr[r], counts)
            offsets = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
            linked = np.stack([par_src[starts + offsets], np.repeat(v, counts)])
            done.append(linked[:, ~drop[linked[0]]])
            front = np.unique(linked[:, drop[linked[0]]], axis=1)
        src, dst = np.concatenate(done, axis=1)
    new_index = np.cumsum(~drop) - 1
    pairs = np.unique(new_index[src] * max(len(kept), 1) + new_index[dst])
    n = max(len(kept), 1)
    return kept, (pairs // n).astype(np.int32), (pairs % n).astype(np.int32)


@dataclass
class CleanGraph:
    """An operator graph after normalisation and removal: what the encoder sees."""

    op_names: list[str]
    op_ids: np.ndarray
    src: np.ndarray
    dst: np.ndarray

    @property
    def num_nodes(self) -> int:
        return len(self.op_names)

    @property
    def num_edges(self) -> int:
        return len(self.src)


def clean_graph(nodes: Sequence[str], src: Sequence[int], dst: Sequence[int],
                removed: frozenset[str] = REMOVED) -> CleanGraph:
    """Normalise and map a traced graph's operators, then drop ``removed`` operators."""
    names, ids = map_operators(nodes)
    drop = np.fromiter((n in removed for n in names), dtype=bool, count=len(names))
    kept, s, d = remove_nodes(len(names), np.asarray(src), np.asarray(dst), drop)
    return CleanGraph([names[i] for i in kept], ids[kept], s, d)
