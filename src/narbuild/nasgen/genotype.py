"""DARTS genotypes: the usual notation, the search space, and cells as small arrays.

A genotype is written as DARTS prints it::

    Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ...], normal_concat=[2, 3, 4, 5],
             reduce=[...], reduce_concat=[2, 3, 4, 5])

Slots ``2j`` and ``2j+1`` of a cell list are the two inputs of intermediate node ``j + 2``; input
0 is ``c_{k-2}``, input 1 is ``c_{k-1}``. :func:`parse_genotype` and :func:`format_genotype`
accept any genotype in that notation (NASNet, AmoebaNet, PNAS and ENAS have five nodes and
operations outside the DARTS set). The *search space* that ``gen-nas`` samples is narrower
(:func:`check_cell`): four ADD nodes, each with two distinct inputs among the cell inputs and
earlier nodes, one of :data:`OPS` on each, all four concatenated.

Inside the generator a cell is a flat ``int8`` array of :data:`CELL_SIZE` = 6 x 4 entries: entry
``src * 4 + (dst - 2)`` holds ``1 + OPS.index(op)`` for an edge ``src -> dst`` and 0 for none.
"""

from __future__ import annotations

import ast
import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from narbuild.errors import NarbuildError

OPS: tuple[str, ...] = (
    "max_pool_3x3", "avg_pool_3x3", "skip_connect", "sep_conv_3x3", "sep_conv_5x5",
    "dil_conv_3x3", "dil_conv_5x5",
)
"""The seven DARTS candidate operations (DARTS ``PRIMITIVES`` without ``none``), code = index + 1."""

STEPS = 4
"""Intermediate (ADD) nodes per cell."""
NODES = STEPS + 2
CELL_SIZE = NODES * STEPS
CONCAT: tuple[int, ...] = tuple(range(2, NODES))

Cell = tuple[tuple[str, int], ...]


@dataclass(frozen=True)
class Genotype:
    """A DARTS genotype: the normal and the reduction cell, and what each concatenates."""

    normal: Cell
    normal_concat: tuple[int, ...]
    reduce: Cell
    reduce_concat: tuple[int, ...]

    def __str__(self) -> str:
        return format_genotype(self)


def format_genotype(genotype: Genotype) -> str:
    """The genotype in DARTS notation (``repr`` of DARTS's namedtuple with lists)."""
    def cell(pairs: Cell) -> str:
        return "[" + ", ".join(f"({op!r}, {i})" for op, i in pairs) + "]"

    def concat(nodes: tuple[int, ...]) -> str:
        return "[" + ", ".join(str(n) for n in nodes) + "]"

    g = genotype
    return (f"Genotype(normal={cell(g.normal)}, normal_concat={concat(g.normal_concat)}, "
            f"reduce={cell(g.reduce)}, reduce_concat={concat(g.reduce_concat)})")


def parse_genotype(text: str) -> Genotype:
    """Read a genotype in DARTS notation; ``range(2, 6)`` is accepted for a concat list."""
    try:
        tree = ast.parse(text.strip(), mode="eval").body
    except SyntaxError as exc:
        raise NarbuildError(f"not a genotype: {text[:60]!r} ({exc.msg})",
                            "write it as Genotype(normal=[...], normal_concat=[...], ...)") from exc
    if not (isinstance(tree, ast.Call) and getattr(tree.func, "id", None) == "Genotype"):
        raise NarbuildError(f"not a genotype: {text[:60]!r}", "it must start with Genotype(")
    fields = ("normal", "normal_concat", "reduce", "reduce_concat")
    values = dict(zip(fields, tree.args))
    values.update({kw.arg: kw.value for kw in tree.keywords if kw.arg in fields})
    missing = [f for f in fields if f not in values]
    if missing:
        raise NarbuildError(f"genotype lacks {', '.join(missing)}: {text[:60]!r}")
    return Genotype(_cell(values["normal"], text), _concat(values["normal_concat"], text),
                    _cell(values["reduce"], text), _concat(values["reduce_concat"], text))


def _cell(node: ast.expr, text: str) -> Cell:
    try:
        pairs = ast.literal_eval(node)
        return tuple((str(op), int(i)) for op, i, *_ in pairs)
    except (ValueError, TypeError) as exc:
        raise NarbuildError(f"genotype cell is not a list of (op, input) pairs: {text[:60]!r}") from exc


def _concat(node: ast.expr, text: str) -> tuple[int, ...]:
    if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "range":
        return tuple(range(*(int(ast.literal_eval(a)) for a in node.args)))
    try:
        return tuple(int(i) for i in ast.literal_eval(node))
    except (ValueError, TypeError) as exc:
        raise NarbuildError(f"genotype concat is not a list of node numbers: {text[:60]!r}") from exc


def check_cell(pairs: Sequence[tuple[str, int]], concat: Sequence[int] = CONCAT) -> None:
    """Raise :class:`NarbuildError` unless the cell is in the generator's DARTS space."""
    if len(pairs) != 2 * STEPS:
        raise NarbuildError(f"a cell has {len(pairs)} (op, input) pairs, the space has "
                            f"{2 * STEPS} ({STEPS} ADD nodes x 2 inputs)")
    for slot, (op, i) in enumerate(pairs):
        node = 2 + slot // 2
        if op not in OPS:
            raise NarbuildError(f"operation {op!r} is not in the DARTS space",
                                f"use one of {', '.join(OPS)}")
        if not 0 <= i < node:
            raise NarbuildError(f"node {node} takes input {i}; it may only read nodes 0..{node - 1}")
    for j in range(STEPS):
        if pairs[2 * j][1] == pairs[2 * j + 1][1]:
            raise NarbuildError(f"node {j + 2} takes input {pairs[2 * j][1]} twice; "
                                "the two inputs of an ADD node must differ")
    if tuple(concat) != CONCAT:
        raise NarbuildError(f"the cell concatenates {list(concat)}, the space concatenates "
                            f"{list(CONCAT)}")


def in_space(genotype: Genotype) -> bool:
    """Whether both cells are in the generator's DARTS space."""
    try:
        check_cell(genotype.normal, genotype.normal_concat)
        check_cell(genotype.reduce, genotype.reduce_concat)
    except NarbuildError:
        return False
    return True


def cell_to_array(pairs: Sequence[tuple[str, int]]) -> np.ndarray:
    """A cell as its flat op-code matrix (see the module docstring)."""
    check_cell(pairs)
    cell = np.zeros(CELL_SIZE, dtype=np.int8)
    for slot, (op, i) in enumerate(pairs):
        cell[i * STEPS + slot // 2] = OPS.index(op) + 1
    return cell


def array_to_cell(cell: np.ndarray) -> Cell:
    """The (op, input) pairs of a cell array, each node's inputs in ascending order."""
    matrix = np.asarray(cell).reshape(NODES, STEPS)
    pairs = []
    for j in range(STEPS):
        for src in np.flatnonzero(matrix[:, j]):
            pairs.append((OPS[matrix[src, j] - 1], int(src)))
    return tuple(pairs)


def slots_to_arrays(ops: np.ndarray, inputs: np.ndarray) -> np.ndarray:
    """Cells given as slot arrays (``ops`` codes 1..7 and ``inputs``, both (N, 8)) -> (N, 24)."""
    n = ops.shape[0]
    cells = np.zeros((n, CELL_SIZE), dtype=np.int8)
    rows = np.repeat(np.arange(n), 2 * STEPS)
    dst = np.tile(np.arange(2 * STEPS) // 2, n)
    cells[rows, inputs.reshape(-1).astype(np.int64) * STEPS + dst] = ops.reshape(-1)
    return cells


def arrays_to_slots(cells: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Inverse of :func:`slots_to_arrays`, each node's inputs in ascending order."""
    matrix = cells.reshape(-1, NODES, STEPS)
    present = matrix != 0
    first = present.argmax(axis=1)                          # (N, 4) lowest source
    second = NODES - 1 - present[:, ::-1, :].argmax(axis=1)  # highest source
    inputs = np.stack([first, second], axis=2).reshape(-1, 2 * STEPS)
    rows = np.arange(len(cells))[:, None]
    ops = matrix[rows, inputs, np.arange(2 * STEPS)[None, :] // 2]
    return ops.astype(np.int8), inputs.astype(np.int8)


# --- isomorphism: relabelling the four ADD nodes -------------------------------------------

def _perm_index() -> np.ndarray:
    """(24, CELL_SIZE) gather indices: ``cell[PERMS[p]]`` is the cell with ADD nodes relabelled."""
    out = []
    for perm in itertools.permutations(range(STEPS)):
        node_map = [0, 1] + [2 + p for p in perm]        # old node -> new node
        inverse = [0] * NODES
        for old, new in enumerate(node_map):
            inverse[new] = old
        out.append([inverse[s] * STEPS + (inverse[2 + d] - 2)
                    for s in range(NODES) for d in range(STEPS)])
    return np.array(out, dtype=np.int64)


PERMS = _perm_index()
"""Gather indices of the 4! relabellings of the ADD nodes (inputs and output stay anchored)."""

_UPPER = np.array([s < d + 2 for s in range(NODES) for d in range(STEPS)])
_CODE_POS = np.flatnonzero(_UPPER)                # the 14 positions a DAG-ordered cell may use
_CODE_WEIGHTS = 8 ** np.arange(len(_CODE_POS) - 1, -1, -1, dtype=np.int64)


def canonical_codes(cells: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Canonical form of each cell: (code, canonical cell array).

    Two cells get the same code exactly when they are the same graph up to renumbering the ADD
    nodes (which also covers swapping the two inputs of a node). The canonical cell is the
    relabelling, among those that keep DARTS's order (each node reads only earlier nodes), with
    the smallest code.
    """
    cells = np.asarray(cells, dtype=np.int8).reshape(-1, CELL_SIZE)
    permuted = cells[:, PERMS]                                     # (N, 24, 24)
    ordered = ~(permuted[:, :, ~_UPPER] != 0).any(axis=2)          # (N, 24)
    codes = permuted[:, :, _CODE_POS].astype(np.int64) @ _CODE_WEIGHTS
    codes = np.where(ordered, codes, np.iinfo(np.int64).max)
    best = codes.argmin(axis=1)
    rows = np.arange(len(cells))
    return codes[rows, best], permuted[rows, best]


def canonical_cell(pairs: Sequence[tuple[str, int]]) -> Cell:
    """The canonical (op, input) pairs of a cell in the DARTS space."""
    _, cell = canonical_codes(cell_to_array(pairs))
    return array_to_cell(cell[0])


def canonical_genotype(genotype: Genotype) -> Genotype:
    """The canonical form: equal for genotypes that describe the same two cells."""
    return Genotype(canonical_cell(genotype.normal), CONCAT,
                    canonical_cell(genotype.reduce), CONCAT)


# --- well-known genotypes (DARTS genotypes.py and its successors) ---------------------------

PUBLISHED: dict[str, str] = {
    "NASNet": (
        "Genotype(normal=[('sep_conv_5x5', 1), ('sep_conv_3x3', 0), ('sep_conv_5x5', 0), "
        "('sep_conv_3x3', 0), ('avg_pool_3x3', 1), ('skip_connect', 0), ('avg_pool_3x3', 0), "
        "('avg_pool_3x3', 0), ('sep_conv_3x3', 1), ('skip_connect', 1)], "
        "normal_concat=[2, 3, 4, 5, 6], "
        "reduce=[('sep_conv_5x5', 1), ('sep_conv_7x7', 0), ('max_pool_3x3', 1), "
        "('sep_conv_7x7', 0), ('avg_pool_3x3', 1), ('sep_conv_5x5', 0), ('skip_connect', 3), "
        "('avg_pool_3x3', 2), ('sep_conv_3x3', 2), ('max_pool_3x3', 1)], "
        "reduce_concat=[4, 5, 6])"
    ),
    "AmoebaNet": (
        "Genotype(normal=[('avg_pool_3x3', 0), ('max_pool_3x3', 1), ('sep_conv_3x3', 0), "
        "('sep_conv_5x5', 2), ('sep_conv_3x3', 0), ('avg_pool_3x3', 3), ('sep_conv_3x3', 1), "
        "('skip_connect', 1), ('skip_connect', 0), ('avg_pool_3x3', 1)], "
        "normal_concat=[4, 5, 6], "
        "reduce=[('avg_pool_3x3', 0), ('sep_conv_3x3', 1), ('max_pool_3x3', 0), "
        "('sep_conv_7x7', 2), ('sep_conv_7x7', 0), ('avg_pool_3x3', 1), ('max_pool_3x3', 0), "
        "('max_pool_3x3', 1), ('conv_7x1_1x7', 0), ('sep_conv_3x3', 5)], "
        "reduce_concat=[3, 4, 6])"
    ),
    "PNASNet": (
        "Genotype(normal=[('sep_conv_5x5', 0), ('max_pool_3x3', 0), ('sep_conv_7x7', 1), "
        "('max_pool_3x3', 1), ('sep_conv_5x5', 1), ('sep_conv_3x3', 1), ('sep_conv_3x3', 4), "
        "('max_pool_3x3', 1), ('sep_conv_3x3', 0), ('skip_connect', 1)], "
        "normal_concat=[2, 3, 4, 5, 6], "
        "reduce=[('sep_conv_5x5', 0), ('max_pool_3x3', 0), ('sep_conv_7x7', 1), "
        "('max_pool_3x3', 1), ('sep_conv_5x5', 1), ('sep_conv_3x3', 1), ('sep_conv_3x3', 4), "
        "('max_pool_3x3', 1), ('sep_conv_3x3', 0), ('skip_connect', 1)], "
        "reduce_concat=[2, 3, 4, 5, 6])"
    ),
    "ENASNet": (
        "Genotype(normal=[('sep_conv_3x3', 1), ('skip_connect', 1), ('sep_conv_5x5', 1), "
        "('skip_connect', 0), ('avg_pool_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), "
        "('avg_pool_3x3', 1), ('sep_conv_5x5', 1), ('avg_pool_3x3', 0)], "
        "normal_concat=[2, 3, 4, 5, 6], "
        "reduce=[('sep_conv_5x5', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 1), "
        "('avg_pool_3x3', 1), ('sep_conv_3x3', 1), ('avg_pool_3x3', 1), ('avg_pool_3x3', 1), "
        "('sep_conv_5x5', 4), ('sep_conv_3x3', 5), ('sep_conv_5x5', 0)], "
        "reduce_concat=[2, 3, 4, 5, 6])"
    ),
    "DARTS_V1": (
        "Genotype(normal=[('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('skip_connect', 0), "
        "('sep_conv_3x3', 1), ('skip_connect', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), "
        "('skip_connect', 2)], normal_concat=[2, 3, 4, 5], "
        "reduce=[('max_pool_3x3', 0), ('max_pool_3x3', 1), ('skip_connect', 2), "
        "('max_pool_3x3', 0), ('max_pool_3x3', 0), ('skip_connect', 2), ('skip_connect', 2), "
        "('avg_pool_3x3', 0)], reduce_concat=[2, 3, 4, 5])"
    ),
    "DARTS_V2": (
        "Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), "
        "('sep_conv_3x3', 1), ('sep_conv_3x3', 1), ('skip_connect', 0), ('skip_connect', 0), "
        "('dil_conv_3x3', 2)], normal_concat=[2, 3, 4, 5], "
        "reduce=[('max_pool_3x3', 0), ('max_pool_3x3', 1), ('skip_connect', 2), "
        "('max_pool_3x3', 1), ('max_pool_3x3', 0), ('skip_connect', 2), ('skip_connect', 2), "
        "('max_pool_3x3', 1)], reduce_concat=[2, 3, 4, 5])"
    ),
}
"""Published genotypes in DARTS notation, as DARTS's ``genotypes.py`` (and the DARTS successors
that added ENAS and PNAS) list them. Only DARTS V1 and V2 lie in the four-node DARTS space; the
others have five nodes, ``sep_conv_7x7`` / ``conv_7x1_1x7`` or an input used twice."""
