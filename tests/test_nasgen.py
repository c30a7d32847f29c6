"""`narbuild gen-nas`: genotypes, exact edit distance, graph views against real traces, classes."""

from __future__ import annotations

import hashlib
import io
import itertools
import time

import click
import networkx as nx
import numpy as np
import pyarrow.parquet as pq
import pytest
import torch
from click.testing import CliRunner

from narbuild import NarbuildError, Workspace
from narbuild.cli import Context
from narbuild.nasgen import (
    PUBLISHED,
    Genotype,
    canonical_genotype,
    cell_distance,
    format_genotype,
    generate,
    generate_set,
    in_space,
    network_distance,
    networkx_ged,
    parse_genotype,
    write,
)
from narbuild.nasgen.cli import gen_nas
from narbuild.nasgen.cost import network_costs
from narbuild.nasgen.genotype import (
    CONCAT,
    array_to_cell,
    canonical_codes,
    cell_to_array,
    check_cell,
)
from narbuild.nasgen.graphs import (
    DARTS_VIEW,
    OPERATOR_VIEW,
    REMOVED_OPS,
    build_graphs,
    cell_graph,
    network_graph,
)
from narbuild.nasgen.modules import INPUT_SHAPE, DartsCell, DartsNetwork
from narbuild.nasgen.sampling import mutate_cells, random_cells
from narbuild.nasgen.wl import wl_hashes
from narbuild.tracing.graph import OpGraph, remove_ops, walk_autograd

DARTS_V2 = parse_genotype(PUBLISHED["DARTS_V2"])


def random_genotypes(seed: int, n: int) -> list[Genotype]:
    rng = np.random.default_rng(seed)
    normal, reduce = random_cells(rng, n), random_cells(rng, n)
    return [Genotype(array_to_cell(a), CONCAT, array_to_cell(b), CONCAT)
            for a, b in zip(normal, reduce)]


def arrays(genotypes: list[Genotype]) -> tuple[np.ndarray, np.ndarray]:
    return (np.stack([cell_to_array(g.normal) for g in genotypes]),
            np.stack([cell_to_array(g.reduce) for g in genotypes]))


def ascending(g: Genotype) -> Genotype:
    """The genotype with each node's two inputs listed in ascending order."""
    return Genotype(array_to_cell(cell_to_array(g.normal)), CONCAT,
                    array_to_cell(cell_to_array(g.reduce)), CONCAT)


def traced(module: torch.nn.Module, *inputs: torch.Tensor) -> OpGraph:
    """Our tracer's core: walk the autograd graph, drop parameter leaves and TBackward0."""
    return remove_ops(walk_autograd([module(*inputs)]), set(REMOVED_OPS))


def same_graph(a: OpGraph, nodes: list[str], edges: list[tuple[int, int]]) -> bool:
    b = OpGraph(nodes, edges)
    return (a.graph_hash() == b.graph_hash() and
            nx.is_isomorphic(a.to_networkx(), b.to_networkx(),
                             node_match=lambda x, y: x["op"] == y["op"]))


# --- genotypes ------------------------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_published_genotypes_round_trip(name):
    text = PUBLISHED[name]
    genotype = parse_genotype(text)
    assert format_genotype(genotype) == text == str(genotype)
    assert parse_genotype(format_genotype(genotype)) == genotype
    assert in_space(genotype) == name.startswith("DARTS")


def test_parse_accepts_range_and_rejects_garbage():
    text = PUBLISHED["DARTS_V1"].replace("normal_concat=[2, 3, 4, 5]", "normal_concat=range(2, 6)")
    assert parse_genotype(text) == parse_genotype(PUBLISHED["DARTS_V1"])
    for bad in ["Genotype(normal=[", "Cell(normal=[])", "Genotype(normal=[('x', 0)])"]:
        with pytest.raises(NarbuildError):
            parse_genotype(bad)
    nasnet = parse_genotype(PUBLISHED["NASNet"])
    with pytest.raises(NarbuildError, match="pairs"):
        check_cell(nasnet.normal)
    with pytest.raises(NarbuildError, match="twice"):
        check_cell([("skip_connect", 0), ("skip_connect", 0)] + list(DARTS_V2.normal[2:]))


def test_canonical_form_ignores_input_order_and_node_numbering():
    cell = (("sep_conv_3x3", 0), ("max_pool_3x3", 1),      # node 2
            ("dil_conv_3x3", 1), ("skip_connect", 0),      # node 3 (reads inputs only)
            ("avg_pool_3x3", 2), ("sep_conv_5x5", 3),      # node 4
            ("skip_connect", 4), ("sep_conv_3x3", 2))      # node 5
    swapped = (cell[3], cell[2], cell[1], cell[0],         # nodes 2 and 3 renumbered,
               ("sep_conv_5x5", 2), ("avg_pool_3x3", 3),   # pairs listed in another order
               ("sep_conv_3x3", 3), ("skip_connect", 4))
    a = Genotype(cell, CONCAT, DARTS_V2.reduce, CONCAT)
    b = Genotype(swapped, CONCAT, DARTS_V2.reduce, CONCAT)
    assert a != b and canonical_genotype(a) == canonical_genotype(b)
    assert canonical_genotype(canonical_genotype(a)) == canonical_genotype(a)
    assert network_distance(a, b) == 0
    changed = Genotype(cell[:-1] + (("sep_conv_5x5", 2),), CONCAT, DARTS_V2.reduce, CONCAT)
    assert canonical_genotype(changed) != canonical_genotype(a)


def test_canonical_code_is_zero_distance_on_random_cells():
    rng = np.random.default_rng(5)
    cells = random_cells(rng, 400)
    near = mutate_cells(rng, cells, rng.random(400) < 0.5)
    codes_a, _ = canonical_codes(cells)
    codes_b, _ = canonical_codes(near)
    for i in range(400):
        zero = cell_distance(array_to_cell(cells[i]), array_to_cell(near[i])) == 0
        assert zero == (codes_a[i] == codes_b[i])


# --- distance -------------------------------------------------------------------------------

def test_edit_costs():
    base = DARTS_V2.normal
    op_change = (("max_pool_3x3", 0),) + base[1:]
    input_change = base[:5] + (("skip_connect", 2),) + base[6:]
    both = base[:5] + (("max_pool_3x3", 2),) + base[6:]
    twin = base[:7] + (("dil_conv_3x3", 3),)   # nodes 2 and 3 are alike: same graph
    assert cell_distance(base, op_change) == 1
    assert cell_distance(base, input_change) == 2
    assert cell_distance(base, both) == 2
    assert cell_distance(base, base) == cell_distance(base, twin) == 0


def test_distance_equals_networkx_exact_ged():
    pytest.importorskip("scipy")  # networkx's graph_edit_distance needs it
    rng = np.random.default_rng(7)
    a = random_cells(rng, 60)
    far = random_cells(rng, 30)
    near = a[30:].copy()
    for _ in range(3):
        near = mutate_cells(rng, near, rng.random(30) < 0.8)
    others = np.concatenate([far, near])
    distances = set()
    for x, y in zip(a, others):
        ours = cell_distance(array_to_cell(x), array_to_cell(y))
        assert ours == networkx_ged(array_to_cell(x), array_to_cell(y))
        distances.add(ours)
    assert len(distances) >= 6  # the sample covers near and far pairs


def test_network_distance_is_sum_of_cells_and_symmetric():
    g = random_genotypes(3, 8)
    for a, b in itertools.combinations(g, 2):
        d = network_distance(a, b)
        assert d == network_distance(b, a)
        assert d == cell_distance(a.normal, b.normal) + cell_distance(a.reduce, b.reduce)


# --- graph views against real modules -------------------------------------------------------

@pytest.mark.parametrize("reduction,reduction_prev", [(False, False), (True, False),
                                                      (False, True), (True, True)])
def test_cell_expansion_matches_traced_cell(reduction, reduction_prev):
    for genotype in [DARTS_V2] + random_genotypes(11, 4):
        pairs = genotype.reduce if reduction else genotype.normal
        with torch.device("meta"):
            cell = DartsCell(pairs, 12, 16, 8, reduction, reduction_prev).eval()
            s0 = torch.randn(1, 12, 16 if reduction_prev else 8, 16 if reduction_prev else 8,
                             requires_grad=True)
            s1 = torch.randn(1, 16, 8, 8, requires_grad=True)
        assert same_graph(traced(cell, s0, s1), *cell_graph(pairs, reduction, reduction_prev))


@pytest.mark.parametrize("depth,extra", [(3, 3), (5, 3), (8, 1)])
def test_network_expansion_matches_traced_network(depth, extra):
    genotypes = [DARTS_V2, parse_genotype(PUBLISHED["DARTS_V1"])] + random_genotypes(depth, extra)
    batch = build_graphs(*arrays(genotypes), depth, OPERATOR_VIEW)
    for i, genotype in enumerate(genotypes):
        with torch.device("meta"):
            net = DartsNetwork(genotype, depth, channels=8).eval()
            x = torch.randn(*INPUT_SHAPE, requires_grad=True)
        reference = network_graph(genotype, depth)
        # The bulk builder lists each node's inputs in ascending order: same nodes and edges as
        # the piece-by-piece builder on that ordering of the genotype.
        assert batch.graph(i) == network_graph(ascending(genotype), depth)
        assert same_graph(traced(net, x), *reference)


def test_darts_view_draws_every_operation():
    nodes, _ = network_graph(DARTS_V2, 5, DARTS_VIEW)
    assert nodes[0] == "stem" and nodes[-2:] == ["global_avg_pool", "classifier"]
    assert nodes.count("concat") == 5 and nodes.count("add") == 20
    assert nodes.count("skip_connect") == 3 * 2 + 2 * 3   # 2 per normal, 3 per reduction cell
    assert len(nodes) == 1 + 5 * (8 + 4 + 1) + 2
    assert build_graphs(*arrays([DARTS_V2]), 5, DARTS_VIEW).graph(0) == \
        network_graph(ascending(DARTS_V2), 5, DARTS_VIEW)


def test_costs_match_flop_counter_and_parameters():
    from torch.utils.flop_counter import FlopCounterMode

    genotypes = [DARTS_V2] + random_genotypes(2, 2)
    flops, params = network_costs(*arrays(genotypes), depth=5, channels=16)
    for i, genotype in enumerate(genotypes):
        with torch.device("meta"):
            net = DartsNetwork(genotype, 5, channels=16).eval()
            x = torch.randn(*INPUT_SHAPE)
        counter = FlopCounterMode(display=False)
        with counter:
            net(x)
        assert flops[i] == counter.get_total_flops()
        assert params[i] == sum(p.numel() for p in net.parameters())


def test_bulk_wl_hash_equals_graph_hash():
    genotypes = random_genotypes(4, 40)
    batch = build_graphs(*arrays(genotypes), 5, OPERATOR_VIEW)
    hashes = wl_hashes(batch.vocab, batch.labels, batch.num_nodes, batch.src, batch.dst,
                       batch.num_edges)
    for i in range(len(genotypes)):
        assert hashes[i] == OpGraph(*batch.graph(i)).graph_hash()
    assert len(set(hashes)) == len(genotypes)


# --- the generated set ----------------------------------------------------------------------

@pytest.fixture(scope="module")
def small_set():
    return generate_set(count=400, classes=4, seed=3, depth=5, pool=2000)


def test_classes_are_equal_and_strictly_nearest(small_set):
    table = small_set.table
    rows = table.to_pylist()
    assert np.bincount(table.column("cluster").to_numpy()).tolist() == [100] * 4
    centres = {r["cluster"]: parse_genotype(r["centre"]) for r in rows}
    assert len(set(map(str, centres.values()))) == 4
    for r in rows:
        g = parse_genotype(r["genotype"])
        d = {c: network_distance(g, centre) for c, centre in centres.items()}
        assert d[r["cluster"]] == r["distance"] <= small_set.classes.radius
        assert all(d[r["cluster"]] < v for c, v in d.items() if c != r["cluster"])
    assert sum(r["distance"] == 0 for r in rows) == 4
    assert rows[0]["model_id"] == "nas:0-00" and rows[-1]["model_id"] == "nas:3-99"


def test_rows_are_distinct_canonical_and_consistent(small_set):
    rows = small_set.table.to_pylist()
    genotypes = [parse_genotype(r["genotype"]) for r in rows]
    assert all(canonical_genotype(g) == g for g in genotypes)
    assert len({str(g) for g in genotypes}) == len(rows)
    for r in rows[::37]:
        g = parse_genotype(r["genotype"])
        nodes, edges = network_graph(g, 5)
        assert r["nodes"] == nodes and list(zip(r["edge_src"], r["edge_dst"])) == edges
        assert r["num_nodes"] == len(nodes) and r["num_edges"] == len(edges)
        assert r["graph_hash"] == OpGraph(nodes, edges).graph_hash()
        darts_nodes, darts_edges = network_graph(g, 5, DARTS_VIEW)
        assert r["darts_nodes"] == darts_nodes
        assert list(zip(r["darts_edge_src"], r["darts_edge_dst"])) == darts_edges
        assert r["status"] == "ok" and r["macs"] * 2 == r["flops"] and r["params"] > 0
        assert r["torch_version"] == torch.__version__ and r["device"] is None
    summary = small_set.summary()
    assert summary["min_margin"] >= 1 and summary["class_sizes"] == [100] * 4


def _digest(table) -> str:
    sink = io.BytesIO()
    pq.write_table(table, sink, compression="zstd")
    return hashlib.sha256(sink.getvalue()).hexdigest()


def test_same_seed_same_table_byte_for_byte(small_set):
    again = generate(count=400, classes=4, seed=3, depth=5, pool=2000)
    assert again.equals(small_set.table, check_metadata=True)
    assert _digest(again) == _digest(small_set.table)
    other = generate(count=400, classes=4, seed=4, depth=5, pool=2000)
    assert other.column("genotype") != small_set.table.column("genotype")


def test_write_replaces_the_table(tmp_path, small_set):
    ws = Workspace(tmp_path / "w", create=True)
    write(ws, count=400, classes=4, seed=3, depth=5, pool=2000)
    summary = write(ws, count=400, classes=4, seed=3, depth=5, pool=2000)
    table = ws.table("nas")
    assert len(table.parts()) == 1 and summary["rows"] == 400
    assert table.read().equals(small_set.table)
    write(ws, count=40, classes=2, seed=3, depth=5, pool=500)
    assert table.read().num_rows == 40


def test_cli_gen_nas(tmp_path):
    @click.group()
    @click.pass_context
    def group(ctx):
        ctx.obj = Context(str(tmp_path / "w"), as_json=False, quiet=True)

    group.add_command(gen_nas)
    result = CliRunner().invoke(group, ["gen-nas", "--count", "60", "--classes", "3",
                                        "--depth", "3", "--pool", "500"])
    assert result.exit_code == 0, result.output
    assert "classes: 3 of 20 networks" in result.output and "nas: 60 rows" in result.output
    assert Workspace(tmp_path / "w").table("nas").read().num_rows == 60


def test_user_errors_are_one_liners():
    with pytest.raises(NarbuildError, match="classes"):
        generate(count=3, classes=4)
    with pytest.raises(NarbuildError, match="at least 3 cells"):
        generate(count=10, classes=2, depth=2)
    with pytest.raises(NarbuildError, match="radius 1"):
        generate(count=500, classes=2, depth=3, radius=1, pool=200)


@pytest.mark.slow
@pytest.mark.timeout(3600)
def test_default_run_under_a_minute():
    start = time.perf_counter()
    made = generate_set()
    assert time.perf_counter() - start < 60
    assert made.table.num_rows == 30000 and made.summary()["class_sizes"] == [3000] * 10


def test_gen_nas_records_its_command_for_the_card(tmp_path, run_cli):
    ws = tmp_path / "ws"
    for count in ("20", "24"):  # a re-run replaces the table, so its command replaces too
        assert run_cli(["-q", "-w", str(ws), "gen-nas", "--count", count, "--classes", "2",
                        "--depth", "3", "--pool", "50", "--seed", "4"])[0] == 0
    from narbuild import Workspace

    assert Workspace(ws).commands()["gen-nas"] == [
        "narbuild gen-nas --count 24 --classes 2 --seed 4 --depth 3 --pool 50"]
