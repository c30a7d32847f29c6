"""`narbuild push`: the staged release folder, its card, and publishing to a fake Hub.

The workspace is small but real: a few crawled and traced models, a few generated NAS networks,
both preprocessed, plus embeddings made here (random vectors keyed to the processed records) and
an eval report. The Hub is the in-process fake of :mod:`fake_hub_repo`, reached through
huggingface_hub's real client.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from pathlib import Path
from unittest.mock import ANY

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from fake_hub_repo import FakeDatasetHub, dataset_hub_fixture  # noqa: F401 - the fixture

from narbuild import Workspace, crawl
from narbuild.cards import CONFIGS, check_repo_id, push_release, stage_release
from narbuild.cards.folder import MARKER
from narbuild.cards.release import release_schema
from narbuild.errors import NarbuildError
from narbuild.schemas import TABLES

MODELS = ["timm:resnet18", "timm:resnet34", "timm:vit_tiny_patch16_224",
          "torchvision:mobilenet_v3_small", "pytorchcv:resnet10"]
TOKEN = "hf_fake_write_token_0123456789"
REPORT = {"real": {"nar": {"mrr@20": 0.5, "map@20": 0.4, "ndcg@20": {"mean": 0.6, "std": 0.02}},
                   "gcn": {"mrr@20": 0.3}},
          "nas": {"nar": {"mrr@20": 0.9}}, "meta": "not a dataset"}
SHARD = 40_000  # bytes: small, so the graphs config needs several shards


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> Workspace:
    """manifest, graphs, nas, processed (real + nas), embeddings and reports/eval.json."""
    from narbuild.nasgen import generate
    from narbuild.preprocess import preprocess
    from narbuild.tracing import trace_spec

    ws = Workspace(tmp_path_factory.mktemp("push") / "ws", create=True)
    crawl(ws, ["timm", "torchvision", "pytorchcv"], include=MODELS)
    ws.table("graphs").append([trace_spec(m) for m in MODELS])
    ws.table("nas").append(generate(count=24, classes=3, seed=0, depth=5, pool=200))
    preprocess(ws, "all", workers=1)
    ws.table("embeddings").append(_embeddings(ws))
    (ws.root / "reports").mkdir()
    (ws.root / "reports" / "eval.json").write_text(json.dumps(REPORT))
    return ws


def _embeddings(ws: Workspace) -> pa.Table:
    records = ws.table("processed").read(["record_id", "dataset", "model_id"]).to_pylist()
    rng = np.random.default_rng(0)
    when = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
    rows = [{**r, "embedding_id": f"{m}:{r['record_id']}", "method": m, "dim": 8,
             "encoder_id": f"{m}:test", "vector": rng.standard_normal(8).tolist(),
             "embedded_at": when} for m in ("nar", "gcn") for r in records]
    return ws.table("embeddings").to_arrow(rows)


@pytest.fixture(scope="module")
def release(workspace, tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("release") / "release"
    stage_release(workspace, folder, max_shard_bytes=SHARD, map_points=30)
    return folder


def _digest(folder: Path) -> dict[str, str]:
    """The release's files (the ownership marker aside: it stays local) and their sha256."""
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file() and p.name != MARKER}


def _expected_rows(ws: Workspace) -> dict[str, dict[str, int]]:
    """Rows per config and split, counted straight from the workspace tables."""
    out: dict[str, dict[str, int]] = {}
    for spec in CONFIGS:
        rows = ws.table(spec.table).read_rows()
        if spec.where:
            rows = [r for r in rows if r[spec.where[0]] == spec.where[1]]
        for split in spec.splits:
            n = len([r for r in rows if spec.split_column is None or r[spec.split_column] == split])
            if n:
                out.setdefault(spec.name, {})[split] = n
    return out


# --------------------------------------------------------------------------- the release folder


def test_every_config_loads_with_datasets(release, workspace, tmp_path):
    from datasets import Features, load_dataset

    expected = _expected_rows(workspace)
    assert set(expected) == {"real", "nas", "graphs", "nas-graphs", "embeddings", "manifest"}
    for spec in (s for s in CONFIGS if s.name != "nas-io"):  # nas-io: its own test below
        ds = load_dataset(str(release), spec.name, cache_dir=str(tmp_path / "cache"))
        assert {s: d.num_rows for s, d in ds.items()} == expected[spec.name], spec.name
        schema = release_schema(TABLES[spec.table][0])
        for split in ds.values():
            assert split.features == Features.from_arrow_schema(schema), spec.name
    real = load_dataset(str(release), "real", split="train", cache_dir=str(tmp_path / "cache"))
    assert real[0]["record_id"].startswith("real:") and real[0]["op_ids"]


def test_shards_are_bounded_sorted_and_indexed(release, workspace):
    graphs = sorted((release / "data" / "graphs").glob("*.parquet"))
    assert len(graphs) > 1 and all(p.stat().st_size <= SHARD for p in graphs)
    assert [p.name for p in graphs] == [f"train-{i:05d}-of-{len(graphs):05d}.parquet"
                                        for i in range(len(graphs))]
    ids = [i for p in graphs for i in pq.read_table(p, columns=["model_id"])["model_id"].to_pylist()]
    assert ids == sorted(workspace.table("graphs").keys())
    meta = pq.ParquetFile(graphs[0]).metadata
    column = meta.row_group(0).column(0)
    assert column.has_offset_index and column.has_column_index
    assert column.compression == "ZSTD"
    table = pq.read_table(graphs[0])
    assert table.schema.field("nodes").metadata[b"doc"]  # column docs travel with the data


def test_card_header_is_what_the_hub_expects(release):
    from datasets.utils.metadata import MetadataConfigs
    from huggingface_hub import DatasetCard

    card = DatasetCard.load(release / "README.md", repo_type="dataset")
    data = card.data.to_dict()
    assert data["license"] == "apache-2.0" and data["task_categories"] == ["graph-ml"]
    assert data["pretty_name"] and "neural-architecture-retrieval" in data["tags"]
    assert data["size_categories"] == ["n<1K"]
    configs = MetadataConfigs.from_dataset_card_data(card.data)
    assert list(configs) == ["real", "nas", "graphs", "nas-graphs", "embeddings", "manifest"]
    assert data["configs"][0]["default"] is True
    for name, config in configs.items():
        for entry in config["data_files"]:
            matched = sorted(release.glob(entry["path"]))
            assert matched, (name, entry)
    raw = (release / "README.md").read_text()
    assert raw.startswith("---\n") and raw.count("\n---\n") >= 1


def test_card_sections_figures_and_eval_table(release):
    text = (release / "README.md").read_text()
    for heading in ("## How it was built", "## Configs and schema", "## Operator vocabulary",
                    "## Labels", "## Statistics", "## Embeddings", "## Evaluation",
                    "## Limitations", "## Citation"):
        assert heading in text
    for image in re.findall(r"!\[[^]]*\]\(([^)]+)\)", text):
        assert (release / image).read_bytes().startswith(b"\x89PNG")
    assert {p.name for p in (release / "figures").iterdir()} == {"embedding-map.png",
                                                                 "params-vs-flops.png"}
    assert "| real | nar | 0.500 | 0.400 | 0.600 ± 0.020 |" in text
    assert "| `op_ids` | `list<int32>` |" in text and "Neural Architecture Retrieval" in text
    assert "narbuild gen-nas --count 24 --classes 3" in text
    assert "`attention-block`" in text and "`resnet`" in text
    assert "narbuild crawl -s timm -s torchvision -s pytorchcv --include 'timm:resnet18'" in text


def test_card_gives_the_funnel_licence_and_shared_families_per_source(release):
    text = (release / "README.md").read_text()
    assert ("| source | licence | ids | traced ok | trace errors | distinct records | families |"
            in text)
    assert "| pytorchcv | MIT | 1 | 1 | 0 | 1 | 1 |" in text
    assert "| timm | Apache-2.0 | 3 | 3 | 0 | 3 | 2 |" in text
    assert "| resnet | pytorchcv 1, timm 2 |" in text  # one family fed by two sources
    assert "with no code and no weights" in text


def test_staging_is_deterministic(workspace, release, tmp_path):
    again = tmp_path / "again"
    stage_release(workspace, again, max_shard_bytes=SHARD, map_points=30)
    assert _digest(again) == _digest(release)


def test_a_release_of_only_the_real_graphs(workspace, tmp_path):
    from datasets import load_dataset

    ws = Workspace(tmp_path / "ws", create=True)
    ws.table("graphs").append(workspace.table("graphs").read())
    summary = stage_release(ws, tmp_path / "rel")
    assert summary.as_dict()["configs"] == {"graphs": {"train": len(MODELS)}}
    assert summary.figures == ["figures/params-vs-flops.png"]
    ds = load_dataset(str(tmp_path / "rel"), cache_dir=str(tmp_path / "cache"))
    assert ds["train"].num_rows == len(MODELS)
    assert "No evaluation report" in (tmp_path / "rel" / "README.md").read_text()


def test_a_release_with_nas_io_has_its_config_and_card_section(tmp_path, run_cli):
    """The nas-io table (6 + 2 networks, one epoch) becomes the nas-io config with its train
    and val splits, loaded by datasets, and the card describes the run."""
    from datasets import Features, load_dataset

    ws = tmp_path / "ws"
    for args in (["gen-nas", "--count", "40", "--classes", "4", "--depth", "3", "--pool", "200"],
                 ["nas-io", "--train", "6", "--val", "2", "--epochs", "1", "--width", "2"]):
        code, _, err = run_cli(["-q", "-w", str(ws), *args])
        assert code == 0, err
    summary = stage_release(Workspace(ws), tmp_path / "rel")
    assert summary.as_dict()["configs"]["nas-io"] == {"train": 6, "val": 2}
    ds = load_dataset(str(tmp_path / "rel"), "nas-io", cache_dir=str(tmp_path / "cache"))
    assert ds["val"].num_rows == 2 and len(ds["train"][0]["val_io"]) > 0
    assert ds["train"].features == Features.from_arrow_schema(
        release_schema(TABLES["nas_io"][0]))
    card = (tmp_path / "rel" / "README.md").read_text()
    assert "## Input–output records (`nas-io`)" in card and "8 DARTS-space networks" in card
    assert "narbuild nas-io --train 6 --val 2 --epochs 1 --width 2" in card  # how to rebuild it


def test_staging_errors_are_one_line_and_keep_other_files(workspace, tmp_path, run_cli):
    empty = Workspace(tmp_path / "empty", create=True)
    with pytest.raises(NarbuildError, match="nothing to release"):
        stage_release(empty, tmp_path / "x")
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "notes.txt").write_text("mine")
    code, _, err = run_cli(["-w", str(workspace.root), "push", "--local-dir", str(busy)])
    assert code == 2 and err.count("\n") == 1 and "not a narbuild release" in err
    assert (busy / "notes.txt").read_text() == "mine"
    code, _, err = run_cli(["-w", str(workspace.root), "push"])
    assert code == 2 and err.count("\n") == 1 and "needs --local-dir" in err


def test_restaging_replaces_an_earlier_release(workspace, release, tmp_path):
    folder = tmp_path / "rel"
    stage_release(workspace, folder, max_shard_bytes=SHARD * 4, map_points=30)  # fewer shards
    assert len(_digest(folder)) < len(_digest(release))
    stage_release(workspace, folder, max_shard_bytes=SHARD, map_points=30)
    assert _digest(folder) == _digest(release)
    assert not [p for p in folder.parent.iterdir() if p.name.startswith(".rel.")]


# --------------------------------------------------------------------------- publishing


def _stage(workspace: Workspace, folder: Path, **options) -> Path:
    stage_release(workspace, folder, max_shard_bytes=SHARD, map_points=30, **options)
    return folder


def test_push_creates_the_repo_and_publishes_in_one_commit(dataset_hub, release):
    dataset_hub.token = TOKEN
    summary = push_release(release, "org/nar", token=TOKEN, private=True)
    repo = dataset_hub.repo("org/nar")
    assert summary.created_repo and repo.private
    history = repo.history()
    assert len(history) == 2 and len(dataset_hub.commit_requests()) == 1
    assert summary.commit == history[0].oid and summary.parent_commit == history[1].oid
    assert dataset_hub.commit_headers == [{"summary": "narbuild release", "description": ANY,
                                           "parentCommit": history[1].oid}]
    local = {p: (release / p).read_bytes() for p in _digest(release)}
    files = dataset_hub.files("org/nar")
    assert set(files) == {*local, ".gitattributes"}
    assert {p: files[p] for p in local} == local
    lfs = {p for p, b in repo.head().files.items() if b.lfs}
    assert lfs == {p for p in local if p.endswith((".parquet", ".png"))}
    assert len(dataset_hub.uploads()) == len(lfs)
    assert all(r.authorized for r in dataset_hub.requests if r.method == "POST")


def test_repush_of_an_unchanged_release_makes_no_commit(dataset_hub, release):
    push_release(release, "org/nar", token=TOKEN)
    head = dataset_hub.repo("org/nar").branches["main"]
    dataset_hub.clear()
    summary = push_release(release, "org/nar", token=TOKEN)
    assert summary.up_to_date and summary.commit is None and summary.unchanged == len(
        _digest(release))
    assert dataset_hub.repo("org/nar").branches["main"] == head
    assert [r.method for r in dataset_hub.requests] == ["GET"]  # one read, nothing written


def test_a_new_release_replaces_the_old_one_in_one_commit(dataset_hub, release, workspace,
                                                          tmp_path):
    push_release(release, "org/nar", token=TOKEN)
    first = dataset_hub.repo("org/nar").branches["main"]
    dataset_hub.clear()
    smaller = Workspace(tmp_path / "ws", create=True)
    smaller.table("graphs").append(workspace.table("graphs").read())
    folder = stage_release(smaller, tmp_path / "rel").folder
    summary = push_release(folder, "org/nar", token=TOKEN)
    repo = dataset_hub.repo("org/nar")
    assert len(dataset_hub.commit_requests()) == 1 and repo.head().parent == first
    assert set(dataset_hub.files("org/nar")) == {*_digest(folder), ".gitattributes"}
    deleted = {o.path for o in summary.operations if o.op == "delete"}
    assert {p.split("/")[1] for p in deleted if p.startswith("data/")} == \
        {"real", "nas", "nas-graphs", "embeddings", "manifest", "graphs"}  # graphs: re-sharded
    assert "figures/embedding-map.png" in deleted


def test_a_concurrent_commit_fails_the_push_cleanly(dataset_hub, workspace, tmp_path, run_cli,
                                                    monkeypatch):
    dataset_hub.commit_concurrently("org/nar", "notes.md", b"someone else\n")
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    code, out, err = run_cli(["-w", str(workspace.root), "push", "--local-dir",
                              str(tmp_path / "rel"), "--repo-id", "org/nar", "--map-points", "30"])
    assert code == 2 and err.count("\n") == 1
    assert "changed during the push" in err and "re-run" in err
    assert set(dataset_hub.files("org/nar")) == {".gitattributes", "notes.md"}  # no half release
    assert TOKEN not in out + err


def test_a_bad_token_is_one_clear_line_and_never_shown(dataset_hub, workspace, tmp_path,
                                                       run_cli):
    dataset_hub.token = TOKEN
    bad = "hf_this_token_is_wrong_42"
    push = ["-w", str(workspace.root), "push", "--local-dir", str(tmp_path / "rel"),
            "--repo-id", "org/nar", "--map-points", "30"]
    code, out, err = run_cli([*push, "--token", bad])
    assert code == 2 and err.count("\n") == 1 and "rejected the token" in err
    assert bad not in out + err and "Traceback" not in err
    assert "org/nar" not in dataset_hub.repos
    code, out, err = run_cli(push)
    assert code == 2 and "needs a write token" in err and err.count("\n") == 1


@pytest.mark.parametrize("repo_id", ["noslash", "a/b/c", "org/bad name", "org/x--y", "-org/x",
                                     "org/" + "x" * 97, ""])
def test_an_invalid_repo_id_fails_before_any_request(dataset_hub, release, repo_id):
    with pytest.raises(NarbuildError, match="invalid repo id"):
        push_release(release, repo_id, token=TOKEN)
    assert dataset_hub.requests == []


def test_cli_checks_the_repo_id_before_staging(dataset_hub, workspace, tmp_path, run_cli):
    code, _, err = run_cli(["-w", str(workspace.root), "push", "--local-dir",
                            str(tmp_path / "rel"), "--repo-id", "not a repo"])
    assert code == 2 and "invalid repo id" in err and err.count("\n") == 1
    assert not (tmp_path / "rel").exists() and dataset_hub.requests == []


def test_dry_run_lists_the_operations_and_writes_nothing(dataset_hub, release, run_cli,
                                                         workspace, tmp_path):
    summary = push_release(release, "org/nar", token=TOKEN, dry_run=True)
    assert summary.created_repo and "org/nar" not in dataset_hub.repos
    assert {o.path for o in summary.operations} == set(_digest(release))
    assert {r.method for r in dataset_hub.requests} == {"GET"}
    folder = tmp_path / "rel"
    code, out, _ = run_cli(["-w", str(workspace.root), "push", "--local-dir", str(folder),
                            "--map-points", "30"])
    assert code == 0 and "staged" in out
    push_release(folder, "org/nar", token=TOKEN)
    head = dataset_hub.repo("org/nar").branches["main"]
    dataset_hub.clear()
    code, out, _ = run_cli(["-w", str(workspace.root), "--json", "push", "--local-dir",
                            str(folder), "--repo-id", "org/nar", "--dry-run", "--token", TOKEN,
                            "--map-points", "30"])
    result = json.loads(out)["push"]
    assert code == 0 and result["dry_run"] and result["operations"] == [
        {"op": "add", "path": "README.md", "size": (folder / "README.md").stat().st_size}]
    assert dataset_hub.repo("org/nar").branches["main"] == head and TOKEN not in out


def test_push_to_a_branch_leaves_main_alone(dataset_hub, release):
    dataset_hub.create("org/nar")
    main = dataset_hub.repo("org/nar").branches["main"]
    summary = push_release(release, "org/nar", token=TOKEN, branch="v1")
    repo = dataset_hub.repo("org/nar")
    assert summary.created_branch and repo.branches["main"] == main
    assert repo.head("v1").parent == main and "README.md" in dataset_hub.files("org/nar", "v1")


def test_cli_stages_into_a_temporary_folder_and_publishes(dataset_hub, workspace, run_cli,
                                                          monkeypatch, tmp_path):
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    code, out, err = run_cli(["-w", str(workspace.root), "--json", "push", "--repo-id",
                              "org/cli", "--map-points", "30"])
    assert code == 0, err
    result = json.loads(out)
    assert result["push"]["commit"] == dataset_hub.repo("org/cli").branches["main"]
    assert "README.md" in dataset_hub.files("org/cli") and TOKEN not in out + err
    card = dataset_hub.files("org/cli")["README.md"].decode()
    assert 'load_dataset("org/cli", "real")' in card
    # HF_HOME (the fixture's) is under tmp_path: nothing there or in the workspace holds the token
    written = [p for root in (tmp_path, workspace.root) for p in root.rglob("*") if p.is_file()]
    assert written and not [p for p in written if TOKEN.encode() in p.read_bytes()]


def test_cli_load_check(workspace, tmp_path, run_cli):
    code, out, err = run_cli(["-w", str(workspace.root), "push", "--local-dir",
                              str(tmp_path / "rel"), "--check", "--map-points", "30"])
    assert code == 0, err
    assert "load_dataset(" in out and "'nas-graphs'): train 24 rows, 31 columns" in out


def test_an_unreachable_hub_is_one_line(release, monkeypatch):
    from fake_hub import FakeHub

    server = FakeHub()  # never started: its port refuses connections once closed
    url = server.url
    server._server.server_close()
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    with pytest.raises(NarbuildError, match="cannot be reached"):
        push_release(release, "org/nar", token=TOKEN, endpoint=url)


def test_check_repo_id_accepts_hub_ids():
    assert check_repo_id("my-org/nar-graphs.v2_1") == "my-org/nar-graphs.v2_1"


def test_the_eval_details_report_gives_means_and_stds(tmp_path):
    from narbuild.cards.release import read_eval_report
    from narbuild.encoder.report import markdown, results_table

    details = {"protocol": {"seeds": [0, 1, 2], "relevant": "same fine label"},
               "datasets": {"nas": {"records": 24, "methods": {"wl": {
                   "mean": {"mrr@20": 0.7, "map@20": float("nan")}, "std": {"mrr@20": 0.0},
                   "seeds": 1}}},
                   "real": {"records": 4, "methods": {"nar": {
                       "mean": {"mrr@20": 0.5, "ndcg@100": 0.25},
                       "std": {"mrr@20": 0.01, "ndcg@100": 0.02}, "seeds": 3}}}}}
    assert results_table(details).splitlines()[2:] == [
        "| real | nar | 0.500 ± 0.010 |  | 0.250 ± 0.020 |", "| nas | wl | 0.700 | - |  |"]
    assert results_table(details) in markdown(details)  # eval.md and the card: one renderer
    ws = Workspace(tmp_path / "ws", create=True)
    assert read_eval_report(ws) is None
    (ws.root / "reports").mkdir()
    (ws.root / "reports" / "eval.json").write_text(json.dumps(REPORT))
    assert read_eval_report(ws) == REPORT
    (ws.root / "reports" / "eval-details.json").write_text(json.dumps(details))
    assert read_eval_report(ws)["protocol"]["seeds"] == [0, 1, 2]
    (ws.root / "reports" / "eval-details.json").write_text("{not json")
    with pytest.raises(NarbuildError, match="not readable JSON"):
        read_eval_report(ws)
