"""`narbuild serve`: the engine behind the page, the JSON endpoint (same answers as
`narbuild search --json`), bad uploads, concurrent queries, and the page in a real browser."""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from fake_hub_repo import dataset_hub_fixture  # noqa: F401 - the fixture

pytest.importorskip("gradio", reason="the serve extra is not installed")

from narbuild.errors import NarbuildError
from narbuild.serve.engine import Query, SearchEngine

CHROMIUM = "/usr/bin/chromium"
SCREENSHOT = os.environ.get("NARBUILD_SCREENSHOT")  # where the browser test saves the page


@pytest.fixture(scope="module")
def engine(catalog):
    engine = SearchEngine(catalog)
    engine.warm()
    yield engine
    engine.close()


@pytest.fixture(scope="module")
def server(engine):
    """The app on a free loopback port, served by uvicorn in a thread."""
    import uvicorn

    from narbuild.serve.app import build_app

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = uvicorn.Config(build_app(engine), host="127.0.0.1", port=port, log_level="warning")
    instance = uvicorn.Server(config)
    thread = threading.Thread(target=instance.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not instance.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert instance.started
    yield f"http://127.0.0.1:{port}"
    instance.should_exit = True
    thread.join(timeout=10)


def _snapshot(root: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in root.rglob("*") if p.is_file()}


def test_the_endpoint_answers_what_search_json_prints(catalog, server, run_cli):
    import httpx

    code, out, err = run_cli(["-w", str(catalog.root), "search", "timm:vgg11", "-k", "5",
                              "--json"])
    assert code == 0, err
    answer = httpx.get(f"{server}/api/search", params={"query": "timm:vgg11", "k": 5},
                       timeout=60)
    assert answer.status_code == 200 and answer.json() == json.loads(out)
    bad = httpx.get(f"{server}/api/search", params={"query": "timm:no_such_net"}, timeout=60)
    assert bad.status_code == 400 and "unknown model id" in bad.json()["error"]
    assert httpx.get(server, timeout=30).status_code == 200  # the page


def test_the_page_offers_the_default_first_and_every_bundled_method(engine):
    methods = engine.methods()
    assert methods[:3] == ["wl-metric+wl-fam", "wl-fam", "wl"]
    assert {"wl-metric", "nar", "nar+wl-fam"} <= set(methods) and len(set(methods)) == len(methods)


def test_uploads_and_pasted_configs_are_searched(engine, tmp_path):
    py = tmp_path / "my_net.py"
    py.write_text("import torch\n\ndef build():\n    return torch.nn.Sequential(\n"
                  "        torch.nn.Conv2d(3, 8, 3), torch.nn.ReLU(), torch.nn.Conv2d(8, 8, 3),"
                  " torch.nn.ReLU(), torch.nn.Flatten(), torch.nn.LazyLinear(10))\n")
    result = engine.search(Query(file=str(py)), k=3)  # the one function is the factory
    assert result.query["model_id"] == "file:my_net.build" and len(result.hits) == 3
    config = json.dumps({"model_type": "bert", "hidden_size": 64, "num_hidden_layers": 2,
                         "num_attention_heads": 2, "intermediate_size": 128,
                         "architectures": ["BertModel"]})
    result = engine.search(Query(config=config), k=3)
    assert result.hits[0].family == "bert"


def test_bad_queries_are_one_clear_line_and_change_nothing(engine, catalog, tmp_path):
    files = {
        "notes.py": "this is not python (",
        "boom.py": "def build():\n    return 1 / 0\n",
        "bad.py": ("import torch\nclass Bad(torch.nn.Module):\n    def forward(self, x):\n"
                   "        raise RuntimeError('shape mismatch')\ndef build():\n    return Bad()\n"),
        "two.py": "def a():\n    pass\ndef b():\n    pass\n",
        "big.py": "x = 1\n" * 200_000,
        "weights.bin": "binary",
        "config.json": "{not json",
    }
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    cases = [
        (Query(file=str(tmp_path / "notes.py")), "notes.py is not Python"),
        (Query(file=str(tmp_path / "boom.py")), "raised ZeroDivisionError"),
        (Query(file=str(tmp_path / "bad.py")), "failed"),
        (Query(file=str(tmp_path / "two.py")), "defines 2 functions (a, b)"),
        (Query(file=str(tmp_path / "two.py"), factory="c"), "defines no function 'c'"),
        (Query(file=str(tmp_path / "big.py")), "over the 1,000,000-byte limit"),
        (Query(file=str(tmp_path / "weights.bin")), "neither a .py file nor a config.json"),
        (Query(file=str(tmp_path / "config.json")), "the config is not JSON"),
        (Query(config='{"model_type": "bert"}'), "names no model_type and architectures"),
        (Query(model_id="timm:vgg11", config="{}"), "give one query"),
        (Query(model_id="timm:no_such_net"), "unknown model id"),
    ]
    before = _snapshot(catalog.root)
    for query, needle in cases:
        with pytest.raises(NarbuildError, match=None) as exc:
            engine.search(query, k=3)
        assert needle in str(exc.value) and "\n" not in str(exc.value), (query, exc.value)
    assert _snapshot(catalog.root) == before
    assert engine.search(Query(model_id="timm:vgg11"), k=1).hits  # still answering


def test_twenty_concurrent_queries_are_all_answered(server):
    import httpx

    ids = ["timm:vgg11", "timm:resnet26", "torchvision:densenet121", "transformers:bert/Model",
           "timm:test_vit"] * 4
    with httpx.Client(timeout=120) as client, ThreadPoolExecutor(20) as pool:
        answers = list(pool.map(lambda q: client.get(f"{server}/api/search",
                                                     params={"query": q, "k": 5}), ids))
    assert [a.status_code for a in answers] == [200] * 20
    assert all(len(a.json()) == 5 for a in answers)
    with httpx.Client(timeout=30) as client:  # still up
        assert client.get(f"{server}/api/search", params={"query": "timm:vgg11"}).status_code \
            == 200


@pytest.mark.skipif(not Path(CHROMIUM).exists(),
                    reason="needs Debian's chromium (.ci/run installs it)")
def test_the_page_in_a_real_browser(server, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    broken = tmp_path / "broken.py"
    broken.write_text("def build(:\n")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--no-first-run"])
        page = browser.new_page(viewport={"width": 1280, "height": 1400})
        page.goto(server, wait_until="domcontentloaded", timeout=60_000)
        box = page.locator("#model-id input")
        expect(box).to_be_visible(timeout=60_000)
        box.fill("timm:vgg11")
        box.press("Enter")
        page.locator("#search").click()
        results = page.locator("#results")
        expect(results).to_contain_text("vgg", timeout=60_000)
        expect(page.locator("#status")).to_contain_text("timm:vgg11")
        expect(page.locator("#pair img")).to_be_visible(timeout=60_000)  # the first hit's picture
        expect(page.locator("#map img")).to_be_visible()
        if SCREENSHOT:
            page.screenshot(path=SCREENSHOT, full_page=True)
        box.fill("")
        page.locator("#upload input[type=file]").set_input_files(str(broken))
        page.locator("#search").click()
        expect(page.get_by_text("broken.py is not Python").first).to_be_visible(timeout=60_000)
        browser.close()


def test_a_space_reads_the_published_release_and_answers_as_the_workspace(catalog, engine,
                                                                           tmp_path):
    """The Space's workspace, loaded from the release with `datasets`, ranks as the original."""
    from narbuild.cards import stage_release
    from narbuild.serve.space import workspace_from_release

    release = tmp_path / "release"
    stage_release(catalog, release, map_points=20)
    ws = workspace_from_release(release, tmp_path / "space-ws", cache_dir=tmp_path / "cache")
    mirror = SearchEngine(ws)
    try:
        for model in ("timm:vgg11", "transformers:bert/Model"):
            for method in ("wl-metric+wl-fam", "wl-fam", "nar"):
                ours = engine.search(Query(model_id=model), method, 5).hits
                theirs = mirror.search(Query(model_id=model), method, 5).hits
                assert [(h.model_id, h.score) for h in theirs] == \
                    [(h.model_id, h.score) for h in ours], (model, method)
    finally:
        mirror.close()


def test_push_space_publishes_the_app_over_the_dataset(dataset_hub, catalog, run_cli):
    token = "hf_fake_write_token_0123456789"
    dataset_hub.token = token
    args = ["-w", str(catalog.root), "push", "--repo-id", "org/nar", "--space", "org/nar-search",
            "--token", token, "--map-points", "20"]
    code, out, err = run_cli(args)
    assert code == 0, err
    space = dataset_hub.repo("org/nar-search", kind="spaces")
    assert space.sdk == "gradio" and len(space.history()) == 2  # created, then one commit
    files = dataset_hub.files("org/nar-search", kind="spaces")
    assert {"README.md", "app.py", "requirements.txt"} <= set(files)
    assert b"sdk: gradio" in files["README.md"] and b"- org/nar" in files["README.md"]
    assert b'run_space("org/nar")' in files["app.py"]
    assert "README.md" in dataset_hub.files("org/nar")  # the dataset it reads, pushed first
    assert "published" in out and "/spaces/org/nar-search" in out
    code, out, err = run_cli(args)  # nothing changed: no new commit on either repo
    assert code == 0, err
    assert len(space.history()) == 2 and "is up to date" in out
    code, _, err = run_cli(["-w", str(catalog.root), "push", "--space", "org/nar-search",
                            "--local-dir", "x"])
    assert code != 0 and "needs --repo-id" in err
