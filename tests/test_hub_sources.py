"""The online sources: hf-hub against an in-process fake Hub, torch-hub on a local repo."""

from __future__ import annotations

import json
import socket
import time

import pytest
from fake_hub import FakeHub, FakeModel, fake_hub_fixture  # noqa: F401 - the `hub` fixture

from narbuild import NarbuildError, Workspace, crawl
from narbuild.errors import SourceUnavailableError

BERT = {"model_type": "bert", "architectures": ["BertForMaskedLM"], "hidden_size": 64}


def sha(i: int) -> str:
    return f"{i:040x}"


def add_models(hub: FakeHub, n: int, page_size: int = 3) -> list[FakeModel]:
    hub.page_size = page_size
    models = [FakeModel(f"org/model-{i}", sha=sha(i), config={**BERT, "num_layers": i},
                        downloads=1000 - i, tags=["transformers", "fill-mask"])
              for i in range(n)]
    hub.add(*models)
    return models


def hf_crawl(ws: Workspace, **options):
    return crawl(ws, ["hf-hub"], options={"hf_hub": options})


def rows(ws: Workspace) -> dict[str, dict]:
    return {r["model_id"]: r for r in ws.table("manifest").read_rows()}


def comparable(ws: Workspace) -> dict[str, dict]:
    """Manifest rows without the crawl time."""
    return {k: {c: v for c, v in r.items() if c != "crawled_at"} for k, r in rows(ws).items()}


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def ws(tmp_path) -> Workspace:
    return Workspace(tmp_path / "ws", create=True)


# -- hf-hub ---------------------------------------------------------------------------------


def test_pagination_lists_every_page_and_reads_config(hub, ws):
    add_models(hub, 8)
    hub.add(FakeModel("org/remote", sha=sha(99), config={**BERT, "auto_map": {"AutoModel": "m.M"}}),
            FakeModel("org/tagged", sha=sha(98), config=BERT, tags=["custom_code"]))
    summary = hf_crawl(ws)
    assert summary.per_source == {"hf-hub": 10} and summary.errors == {"hf-hub": 0}
    assert hub.pages() == [1, 2, 3, 4]
    first = hub.listing_requests()[0].query
    assert first["sort"] == ["downloads"] and first["limit"] == ["100"]
    assert {"sha", "pipeline_tag", "library_name", "tags"} <= set(first["expand"])
    got = rows(ws)
    assert len(got) == 10 and len(hub.downloads()) == 10
    row = got["hf:org/model-3"]
    assert (row["source"], row["name"], row["repo"], row["revision"]) == \
        ("hf-hub", "org/model-3", "org/model-3", sha(3))
    assert (row["task"], row["library"], row["model_type"], row["architectures"]) == \
        ("image-classification", "transformers", "bert", ["BertForMaskedLM"])
    config = json.loads(row["config"])
    assert config == {"repo_id": "org/model-3", "library": "transformers",
                      "config": {**BERT, "num_layers": 3}}
    assert json.loads(row["metadata"])["downloads"] == 997
    assert row["status"] == "ok" and row["needs_remote_code"] is False
    assert got["hf:org/remote"]["needs_remote_code"] and got["hf:org/tagged"]["needs_remote_code"]
    assert not ws.state_path("hf-hub").exists()  # a finished listing clears its cursor


def test_query_options_and_limit_reach_the_hub(hub, ws):
    add_models(hub, 8)
    hub.add(FakeModel("timm/resnet50.a1", sha=sha(50), library_name="timm", config={}))
    hf_crawl(ws, library="timm", pipeline_tag="image-classification", search="resnet",
             sort="last_modified", limit=2)
    query = hub.listing_requests()[0].query
    assert query["filter"] == ["timm"] and query["pipeline_tag"] == ["image-classification"]
    assert query["search"] == ["resnet"] and query["sort"] == ["lastModified"]
    assert query["limit"] == ["2"]
    assert set(rows(ws)) == {"hf:timm/resnet50.a1"}
    summary = crawl(Workspace(ws.root.parent / "ws2", create=True), ["hf-hub"], limit=5,
                    options={"hf_hub": {"limit": 5}})
    assert summary.per_source == {"hf-hub": 5} and hub.pages()[-2:] == [1, 2]


def test_rate_limit_is_retried(hub, ws):
    add_models(hub, 7)
    hub.fault(page=2, status=429, retry_after=0)
    start = time.perf_counter()
    summary = hf_crawl(ws)
    assert summary.per_source == {"hf-hub": 7} and summary.errors == {"hf-hub": 0}
    assert [(r.page, r.status) for r in hub.listing_requests()] == \
        [(1, 200), (2, 429), (2, 200), (3, 200)]
    assert time.perf_counter() - start < 5


def test_broken_repos_become_error_rows(hub, ws):
    add_models(hub, 2)
    hub.add(FakeModel("org/gated", sha=sha(10), gated=True),
            FakeModel("org/deleted", sha=sha(11), missing=True),
            FakeModel("org/no-config", sha=sha(12), config=None),
            FakeModel("org/malformed", sha=sha(13), config='{"model_type": "bert",'),
            FakeModel("org/a-list", sha=sha(14), config="[1, 2]"))
    summary = hf_crawl(ws)
    assert summary.per_source == {"hf-hub": 7} and summary.errors == {"hf-hub": 5}
    got = rows(ws)
    errors = {k[3:]: r["error"] for k, r in got.items() if r["status"] == "error"}
    assert "gated repo" in errors["org/gated"] and "--token" in errors["org/gated"]
    assert "repo not found" in errors["org/deleted"]
    assert "no config.json" in errors["org/no-config"]
    assert "not valid JSON" in errors["org/malformed"] and "line 1" in errors["org/malformed"]
    assert "not an object" in errors["org/a-list"]
    assert all("\n" not in e for e in errors.values())
    assert got["hf:org/model-0"]["status"] == "ok"


def test_unchanged_sha_downloads_nothing_changed_sha_downloads_again(hub, ws):
    models = add_models(hub, 5)
    hf_crawl(ws)
    before = comparable(ws)
    hub.clear()
    summary = hf_crawl(ws)
    assert summary.per_source == {"hf-hub": 5}
    assert hub.file_requests() == [] and hub.pages() == [1, 2]
    assert comparable(ws) == before
    models[1].sha, models[1].config = sha(77), {**BERT, "hidden_size": 128}
    hub.clear()
    hf_crawl(ws)
    assert hub.downloads() == ["org/model-1"]
    after = rows(ws)
    assert len(after) == 5 and after["hf:org/model-1"]["revision"] == sha(77)
    assert json.loads(after["hf:org/model-1"]["config"])["config"]["hidden_size"] == 128
    assert after["hf:org/model-1"]["config_hash"] != before["hf:org/model-1"]["config_hash"]


def test_interrupted_crawl_resumes_from_the_saved_page(hub, ws, tmp_path):
    add_models(hub, 8)
    hub.fault(page=3, status=500, times=10)
    with pytest.raises(SourceUnavailableError, match="HTTP 500.*resumes from the saved page"):
        hf_crawl(ws)
    assert set(rows(ws)) == {f"hf:org/model-{i}" for i in range(6)}
    cursor = json.loads(ws.state_path("hf-hub").read_text())
    assert cursor["page"] == 3 and cursor["listed"] == 6 and "cursor=6" in cursor["next"]
    hub.heal()
    hub.clear()
    summary = hf_crawl(ws)
    assert hub.pages() == [3] and summary.per_source == {"hf-hub": 2}
    assert sorted(hub.downloads()) == ["org/model-6", "org/model-7"]
    assert not ws.state_path("hf-hub").exists()
    reference = Workspace(tmp_path / "reference", create=True)
    hf_crawl(reference)
    assert comparable(ws) == comparable(reference)


def test_another_query_ignores_the_saved_cursor(hub, ws):
    add_models(hub, 8)
    hub.fault(page=2, status=403)  # not retried
    with pytest.raises(SourceUnavailableError, match="HTTP 403"):
        hf_crawl(ws)
    hub.heal()
    hub.clear()
    hf_crawl(ws, search="model")
    assert hub.pages() == [1, 2, 3] and len(rows(ws)) == 8


def test_unreachable_hub_is_one_line_and_fast(hub, ws, tmp_path, monkeypatch, run_cli):
    dead = f"http://127.0.0.1:{closed_port()}"
    with pytest.raises(SourceUnavailableError, match="cannot be reached"):
        hf_crawl(ws, endpoint=dead)
    monkeypatch.setenv("HF_ENDPOINT", dead)
    start = time.perf_counter()
    code, out, err = run_cli(["-w", str(tmp_path / "cli"), "crawl", "-s", "hf-hub"])
    assert time.perf_counter() - start < 10
    assert code == 2 and out == "" and "Traceback" not in err
    assert err.strip().count("\n") == 0
    assert f"Hub at {dead} cannot be reached" in err and "--source timm" in err
    assert "HF_ENDPOINT" in err


def test_hf_hub_offline_env_contacts_nothing(hub, ws, monkeypatch):
    add_models(hub, 2)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(SourceUnavailableError, match="HF_HUB_OFFLINE is set"):
        hf_crawl(ws)
    assert hub.requests == []


def test_token_is_sent_checked_and_never_shown_or_stored(hub, ws, tmp_path, run_cli):
    add_models(hub, 4)
    hub.token = "hf_right_token"
    hf_crawl(ws, token="hf_right_token")
    assert len(rows(ws)) == 4 and all(r.authorized for r in hub.requests)
    secret = "hf_wrong_secret_123"
    code, out, err = run_cli(["-w", str(tmp_path / "cli"), "crawl", "-s", "hf-hub",
                              "--token", secret])
    assert code == 2 and "rejected the token (401 Unauthorized)" in err
    assert err.strip().count("\n") == 0 and secret not in err + out
    stored = [p.read_bytes() for p in (tmp_path / "cli").rglob("*") if p.is_file()]
    stored += [p.read_bytes() for p in ws.root.rglob("*") if p.is_file()]
    assert not any(b"hf_right_token" in s or secret.encode() in s for s in stored)


def test_cli_hub_crawl(hub, tmp_path, run_cli):
    add_models(hub, 4)
    hub.add(FakeModel("timm/vit_tiny", sha=sha(40), library_name="timm", config={}),
            FakeModel("timm/resnet18", sha=sha(41), library_name="timm", config={}),
            FakeModel("timm/resnet34", sha=sha(42), library_name="timm", config={}))
    code, out, err = run_cli(["-w", str(tmp_path / "w"), "--json", "crawl", "-s", "hf-hub",
                              "--hub-library", "timm", "--hub-search", "resnet",
                              "--limit", "5"])
    assert code == 0, err
    summary = json.loads(out)
    assert summary["per_source"] == {"hf-hub": 2} and summary["total_rows"] == 2
    query = hub.listing_requests()[0].query
    assert query["filter"] == ["timm"] and query["search"] == ["resnet"]
    assert query["limit"] == ["5"]


# -- torch-hub ------------------------------------------------------------------------------

HUBCONF = '''
"""A tiny torch-hub repo: two torchvision-backed entry points."""
dependencies = ["torch", "torchvision"]

from torchvision.models import resnet18 as _resnet18

from narbuild_test_blocks import WIDTH


def tiny_resnet(num_classes=WIDTH, **kwargs):
    """ResNet-18 with 10 classes.

    Built by torchvision, no weights.
    """
    return _resnet18(num_classes=num_classes, **kwargs)


def small_mobilenet(**kwargs):
    """MobileNetV3-small from torchvision."""
    from torchvision.models import mobilenet_v3_small

    return mobilenet_v3_small(**kwargs)


def _helper():
    return None
'''


@pytest.fixture
def hub_repo(tmp_path):
    repo = tmp_path / "myhub"
    repo.mkdir()
    (repo / "hubconf.py").write_text(HUBCONF)
    (repo / "narbuild_test_blocks.py").write_text("WIDTH = 10\n")
    return repo


def test_torch_hub_local_repo(hub_repo, ws):
    summary = crawl(ws, ["torch-hub"],
                    options={"torch_hub": {"repos": [str(hub_repo)], "trust_remote_code": True}})
    assert summary.per_source == {"torch-hub": 2}
    got = rows(ws)
    assert set(got) == {"torch-hub:myhub/small_mobilenet", "torch-hub:myhub/tiny_resnet"}
    row = got["torch-hub:myhub/tiny_resnet"]
    assert json.loads(row["config"]) == {"repo": str(hub_repo), "source": "local",
                                         "entry": "tiny_resnet"}
    assert (row["source"], row["library"], row["status"]) == ("torch-hub", "torch-hub", "ok")
    assert row["needs_remote_code"] is True
    assert json.loads(row["metadata"])["doc"] == "ResNet-18 with 10 classes."
    # The config is enough to build the model with torch.hub itself.
    import torch.hub

    model = torch.hub.load(str(hub_repo), "tiny_resnet", source="local")
    assert model.fc.out_features == 10


def test_torch_hub_cli_needs_trust(hub_repo, tmp_path, run_cli):
    with pytest.raises(NarbuildError, match="--trust-remote-code"):
        crawl(Workspace(tmp_path / "api", create=True), ["torch-hub"],
              options={"torch_hub": {"repos": [str(hub_repo)], "trust_remote_code": False}})
    args = ["-w", str(tmp_path / "w"), "crawl", "-s", "torch-hub", "--repo", str(hub_repo)]
    code, _, err = run_cli(args)
    assert code == 2 and "runs the repo's code" in err and "--trust-remote-code" in err
    assert "Traceback" not in err and err.strip().count("\n") == 0
    code, out, err = run_cli([*args[:2], "--json", *args[2:], "--trust-remote-code"])
    assert code == 0, err
    assert json.loads(out)["per_source"] == {"torch-hub": 2}


def test_torch_hub_bad_repos(tmp_path, ws):
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "hubconf.py").write_text("import narbuild_no_such_module\n")
    summary = crawl(ws, ["torch-hub"],
                    options={"torch_hub": {"repos": [str(broken)], "trust_remote_code": True}})
    assert summary.errors == {"torch-hub": 1}
    row = rows(ws)["torch-hub:broken"]
    assert row["status"] == "error" and "No module named 'narbuild_no_such_module'" in row["error"]
    empty = tmp_path / "empty"
    empty.mkdir()
    for repo, needle in [(str(empty), "has no hubconf.py"), ("not a repo!", "neither")]:
        with pytest.raises(NarbuildError, match=needle):
            crawl(ws, ["torch-hub"],
                  options={"torch_hub": {"repos": [repo], "trust_remote_code": True}})
