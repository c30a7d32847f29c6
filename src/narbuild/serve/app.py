"""The search web app: a Gradio page over a :class:`~narbuild.serve.engine.SearchEngine`, and a
plain JSON endpoint, ``GET /api/search?query=ID&k=10&dataset=real&method=wl-metric%2Bwl-fam``
(every argument but the query may be left out), that answers what ``narbuild search --json``
prints."""

from __future__ import annotations

from typing import Any

from narbuild.errors import NarbuildError
from narbuild.retrieval.rankers import DEFAULT_METHOD
from narbuild.serve.engine import SCOPES, Query, SearchEngine
from narbuild.serve.pictures import macro_pair, record_map

COLUMNS = ["rank", "score", "model", "family", "coarse label", "params", "FLOPs",
           "shared motifs", "dataset"]
TITLE = "narbuild: neural architecture retrieval"


def build_app(engine: SearchEngine, dataset: str = "real") -> Any:
    """The FastAPI app: the JSON endpoint, and the Gradio page mounted at ``/``."""
    import gradio as gr
    from fastapi import FastAPI
    from fastapi.responses import JSONResponse

    api = FastAPI(title=TITLE)

    @api.get("/api/search")
    def api_search(query: str, method: str = DEFAULT_METHOD, k: int = 10,
                   dataset: str = dataset) -> Any:
        try:
            result = engine.search(Query(model_id=query), method, k, dataset)
        except NarbuildError as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        return [vars(hit) for hit in result.hits]

    return gr.mount_gradio_app(api, page(engine, dataset), path="/", footer_links=["api"])


def page(engine: SearchEngine, dataset: str = "real") -> Any:
    """The Gradio page: the query, the method and scope, the results, the pictures."""
    import gradio as gr

    with gr.Blocks(title=TITLE) as blocks:
        gr.Markdown(f"## {TITLE}\nFind the workspace's networks whose designs are closest to "
                    "yours: a model id, a Python file with a factory, or a pasted config.json.")
        last = gr.State(None)
        with gr.Row():
            with gr.Column(scale=3):
                model_id = gr.Dropdown(engine.model_ids(), value=None, label="Model id",
                                       allow_custom_value=True, filterable=True,
                                       elem_id="model-id")
                with gr.Row():
                    upload = gr.File(label="or a .py file / config.json",
                                     file_types=[".py", ".json"], elem_id="upload")
                    factory = gr.Textbox(label="factory (for a .py file)", elem_id="factory",
                                         placeholder="the function returning the model")
                config = gr.Textbox(label="or a pasted config.json", lines=3, elem_id="config")
            with gr.Column(scale=1):
                method = gr.Dropdown(engine.methods(), value=DEFAULT_METHOD, label="method")
                scope = gr.Radio(list(SCOPES), value=dataset, label="records")
                k = gr.Slider(1, 50, value=10, step=1, label="k")
                button = gr.Button("Search", variant="primary", elem_id="search")
        status = gr.Markdown(elem_id="status")
        table = gr.Dataframe(headers=COLUMNS, interactive=False, elem_id="results")
        with gr.Row():
            chosen = gr.Dropdown([], label="hit to compare", elem_id="hit")
        with gr.Row():
            pair = gr.Image(label="macro graphs", type="pil", elem_id="pair")
            where = gr.Image(label="where the query lands", type="pil", elem_id="map")

        def run(model: str | None, file: Any, fn: str, text: str, how: str, count: float,
                records: str) -> tuple:
            query = Query(model_id=model or "", file=_path(file), factory=fn or "",
                          config=text or "")
            try:
                result = engine.search(query, how, int(count), records)
                picture = _map(engine, result, how, records)
            except NarbuildError as exc:
                raise gr.Error(str(exc), print_exception=False) from None
            choices = [_hit_name(h) for h in result.hits]
            first = next((_hit_name(h) for h in result.hits  # the query itself is no news
                          if result.query["model_id"] not in h.model_ids), None)
            return (_summary(result), [_row(h) for h in result.hits],
                    gr.update(choices=choices, value=first or (choices[0] if choices else None)),
                    picture, result)

        def compare(choice: str | None, result: Any) -> Any:
            if not choice or result is None:
                return None
            hit = next(h for h in result.hits if _hit_name(h) == choice)
            record = engine.macro_graph(hit.dataset, hit.record_id)
            return macro_pair(result.records[hit.dataset], record, result.query["model_id"],
                              hit.model_id)

        button.click(run, [model_id, upload, factory, config, method, k, scope],
                     [status, table, chosen, where, last], api_name="search")
        chosen.change(compare, [chosen, last], pair, api_name=False)
    return blocks


def _path(file: Any) -> str | None:
    if file is None:
        return None
    return file if isinstance(file, str) else getattr(file, "name", None)


def _hit_name(hit: Any) -> str:
    return f"{hit.rank}. {hit.model_id}"


def _row(hit: Any) -> list[Any]:
    return [hit.rank, round(hit.score, 3), ", ".join(hit.model_ids[:3])
            + (f" (+{len(hit.model_ids) - 3})" if len(hit.model_ids) > 3 else ""),
            hit.family, hit.coarse_label, _count(hit.params), _count(hit.flops),
            hit.shared_motifs, hit.dataset]


def _summary(result: Any) -> str:
    q = result.query
    origin = {"workspace": "graph from the workspace", "cache": "graph from the query cache",
              "traced": f"traced in {result.seconds.get('trace', 0):.2f} s"}[q["origin"]]
    searched = ", ".join(f"{n:,} {name}" for name, n in result.searched.items())
    total = sum(result.seconds.values())
    return (f"**{q['model_id']}** ({origin}): {q['nodes']:,} nodes, {q['distinct_motifs']} "
            f"distinct motifs, {_count(q['params'])} parameters, {q['coarse_label']}. "
            f"Searched {searched} records in {total:.2f} s.")


def _map(engine: SearchEngine, result: Any, method: str, scope: str) -> Any:
    if not result.hits:
        return None
    dataset = result.hits[0].dataset
    ids, points = engine.map_points(dataset, method, scope)
    hits = [(h.record_id, h.score) for h in result.hits if h.dataset == dataset]
    return record_map(ids, points, hits, f"{len(ids):,} {dataset} records (first two "
                      f"principal axes of the {method} vectors)")


def _count(n: int | None) -> str:
    if n is None:
        return "-"
    for unit, size in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if n >= size:
            return f"{n / size:.1f}{unit}"
    return str(n)
