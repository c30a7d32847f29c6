"""Sampling the DARTS space: random cells, edits around a centre, and far-apart centres.

Everything here is vectorised over numpy arrays of cells (see :mod:`narbuild.nasgen.genotype`)
and driven by one ``numpy.random.Generator``, so a seed fixes every draw.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from narbuild.errors import NarbuildError
from narbuild.nasgen.distance import network_distances
from narbuild.nasgen.genotype import (
    OPS,
    STEPS,
    arrays_to_slots,
    canonical_codes,
    slots_to_arrays,
)

_NODE_OF_SLOT = 2 + np.arange(2 * STEPS) // 2   # ADD node of each slot
_IDLE_ROUNDS = 10   # give up on a class after this many rounds that add no network


def random_cells(rng: np.random.Generator, n: int) -> np.ndarray:
    """``n`` cells drawn uniformly: per node, two distinct inputs and an operation per input."""
    ops = rng.integers(1, len(OPS) + 1, size=(n, 2 * STEPS), dtype=np.int8)
    inputs = np.empty((n, 2 * STEPS), dtype=np.int8)
    for j in range(STEPS):
        node = j + 2
        first = rng.integers(0, node, size=n)
        second = rng.integers(0, node - 1, size=n)
        inputs[:, 2 * j] = first
        inputs[:, 2 * j + 1] = second + (second >= first)
    return slots_to_arrays(ops, inputs)


def mutate_cells(rng: np.random.Generator, cells: np.ndarray, active: np.ndarray) -> np.ndarray:
    """One random edit on each cell where ``active``: an operation change (cost 1) or, with
    probability 1/2 where the node has a third possible input, an input change (cost 2)."""
    ops, inputs = arrays_to_slots(cells)
    n = len(cells)
    rows = np.arange(n)
    slot = rng.integers(0, 2 * STEPS, size=n)
    node = _NODE_OF_SLOT[slot]
    move = (rng.random(n) < 0.5) & (node > 2) & active
    relabel = active & ~move
    # Operation change: any of the six other operations.
    shift = rng.integers(1, len(OPS), size=n)
    new_op = ((ops[rows, slot].astype(np.int64) - 1 + shift) % len(OPS) + 1).astype(np.int8)
    ops[rows[relabel], slot[relabel]] = new_op[relabel]
    # Input change: any input of the node except the current one and the sibling's.
    current = inputs[rows, slot].astype(np.int64)
    sibling = inputs[rows, slot ^ 1].astype(np.int64)
    low, high = np.minimum(current, sibling), np.maximum(current, sibling)
    pick = np.floor(rng.random(n) * np.maximum(node - 2, 1)).astype(np.int64)
    pick += pick >= low
    pick += pick >= high
    inputs[rows[move], slot[move]] = pick[move].astype(np.int8)
    return slots_to_arrays(ops, inputs)


def network_keys(normal: np.ndarray, reduce: np.ndarray) -> tuple[np.ndarray, np.ndarray,
                                                                  np.ndarray]:
    """Canonical keys (N, 2) int64 and canonical cells of N networks."""
    normal_code, normal_canon = canonical_codes(normal)
    reduce_code, reduce_canon = canonical_codes(reduce)
    return np.stack([normal_code, reduce_code], axis=1), normal_canon, reduce_canon


def farthest_points(normal: np.ndarray, reduce: np.ndarray, k: int) -> np.ndarray:
    """Indices of ``k`` networks chosen by farthest-point sampling (max-min network distance),
    starting from network 0; ties go to the lowest index."""
    chosen = [0]
    nearest = network_distances(normal, reduce, normal[0], reduce[0])
    while len(chosen) < k:
        pick = int(nearest.argmax())
        if nearest[pick] == 0:
            raise NarbuildError(f"the pool holds fewer than {k} distinct networks",
                                "use a larger pool")
        chosen.append(pick)
        nearest = np.minimum(nearest, network_distances(normal, reduce, normal[pick], reduce[pick]))
    return np.array(chosen)


@dataclass
class Classes:
    """Generated networks (canonical cells) with their class and distance to its centre."""

    normal: np.ndarray        # (N, 24) int8
    reduce: np.ndarray        # (N, 24) int8
    cluster: np.ndarray       # (N,) int32
    distance: np.ndarray      # (N,) int32, to the own centre
    margin: np.ndarray        # (N,) int32, nearest other centre minus own distance (> 0)
    centres: np.ndarray       # (K,) row index of each centre
    radius: int
    centre_distances: np.ndarray  # (K, K)


def class_sizes(count: int, classes: int) -> list[int]:
    """Equal class sizes; when ``classes`` does not divide ``count`` the first classes get one
    more."""
    return [count // classes + (c < count % classes) for c in range(classes)]


def generate_classes(rng: np.random.Generator, count: int, classes: int, pool: int,
                     radius: int | None = None, max_rounds: int = 200) -> Classes:
    """Ten (``classes``) far-apart centres and ``count`` distinct networks around them.

    Centres: farthest-point sampling over ``pool`` random networks. Members: each centre edited
    by 1..``radius`` random edits; a candidate is kept when its distance to its centre is at most
    ``radius``, it is strictly closer to its own centre than to any other, and no network kept
    so far is the same graph (canonical key). The centre is member 0 of its class.
    ``radius`` defaults to the largest value the centres guarantee by the triangle inequality,
    ``(d_min - 1) // 2`` with ``d_min`` the smallest distance between two centres.
    """
    sizes = class_sizes(count, classes)
    pool_normal, pool_reduce = random_cells(rng, pool), random_cells(rng, pool)
    keys, pool_normal, pool_reduce = network_keys(pool_normal, pool_reduce)
    _, first = np.unique(keys, axis=0, return_index=True)
    keep = np.sort(first)
    pool_normal, pool_reduce = pool_normal[keep], pool_reduce[keep]
    picked = farthest_points(pool_normal, pool_reduce, classes)
    c_normal, c_reduce = pool_normal[picked], pool_reduce[picked]
    between = np.stack([network_distances(c_normal, c_reduce, c_normal[i], c_reduce[i])
                        for i in range(classes)])
    d_min = int(between[~np.eye(classes, dtype=bool)].min()) if classes > 1 else 2 * 32 + 1
    if radius is None:
        radius = max(1, (d_min - 1) // 2)
    seen: set[tuple[int, int]] = set()
    parts = []
    for c in range(classes):
        parts.append(_members(rng, c, sizes[c], c_normal, c_reduce, radius, seen, max_rounds))
    normal = np.concatenate([p[0] for p in parts])
    reduce = np.concatenate([p[1] for p in parts])
    cluster = np.concatenate([np.full(len(p[0]), c, dtype=np.int32) for c, p in enumerate(parts)])
    dist = np.concatenate([p[2] for p in parts]).astype(np.int32)
    margin = np.concatenate([p[3] for p in parts]).astype(np.int32)
    starts = np.cumsum([0] + sizes[:-1])
    return Classes(normal, reduce, cluster, dist, margin, starts, radius, between)


def _members(rng, c, size, c_normal, c_reduce, radius, seen, max_rounds):
    """Class ``c``: its centre, then accepted edits of it until ``size`` networks."""
    normal, reduce = [c_normal[c][None]], [c_reduce[c][None]]
    dist, margin = [np.zeros(1, np.int32)], [_margin(c_normal[c][None], c_reduce[c][None],
                                                     c, c_normal, c_reduce, np.zeros(1))]
    key = tuple(int(x) for x in network_keys(c_normal[c][None], c_reduce[c][None])[0][0])
    seen.add(key)
    have, batch, idle = 1, max(256, 2 * size), 0
    for _ in range(max_rounds):
        if have >= size or idle >= _IDLE_ROUNDS:
            break
        before = have
        cand_n, cand_r = _edits(rng, c_normal[c], c_reduce[c], batch, radius)
        keys, cand_n, cand_r = network_keys(cand_n, cand_r)
        own = network_distances(cand_n, cand_r, c_normal[c], c_reduce[c])
        ok = (own >= 1) & (own <= radius)
        gap = _margin(cand_n, cand_r, c, c_normal, c_reduce, own)
        ok &= gap > 0
        for i in np.flatnonzero(ok):
            k = (int(keys[i, 0]), int(keys[i, 1]))
            if k in seen:
                continue
            seen.add(k)
            normal.append(cand_n[i][None])
            reduce.append(cand_r[i][None])
            dist.append(own[i:i + 1])
            margin.append(gap[i:i + 1])
            have += 1
            if have >= size:
                break
        idle = idle + 1 if have == before else 0
    if have < size:
        raise NarbuildError(f"class {c} has only {have} distinct networks within edit radius "
                            f"{radius} of its centre, {size} were asked for",
                            "ask for fewer networks per class or a larger --radius")
    return (np.concatenate(normal), np.concatenate(reduce), np.concatenate(dist),
            np.concatenate(margin))


def _margin(normal, reduce, c, c_normal, c_reduce, own):
    """Distance to the nearest other centre minus the distance to centre ``c``."""
    other = np.full(len(normal), np.iinfo(np.int32).max, dtype=np.int64)
    for j in range(len(c_normal)):
        if j != c:
            other = np.minimum(other, network_distances(normal, reduce, c_normal[j], c_reduce[j]))
    return other - own


def _edits(rng, centre_normal, centre_reduce, n, radius):
    """``n`` copies of a centre, each with 1..radius random edits spread over its two cells."""
    normal = np.repeat(centre_normal[None], n, axis=0)
    reduce = np.repeat(centre_reduce[None], n, axis=0)
    steps = rng.integers(1, radius + 1, size=n)
    for step in range(int(steps.max())):
        active = steps > step
        in_normal = rng.random(n) < 0.5
        normal = mutate_cells(rng, normal, active & in_normal)
        reduce = mutate_cells(rng, reduce, active & ~in_normal)
    return normal, reduce
