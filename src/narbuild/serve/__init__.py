"""``narbuild serve``: the search web app over a workspace (Gradio page and JSON endpoint).

::

    from narbuild.serve import SearchEngine, Query, build_app
    engine = SearchEngine("narbuild-data")
    result = engine.search(Query(model_id="timm:resnet50"), k=10)  # wl-metric+wl-fam

Modules: :mod:`.engine` (queries, uploads and warm searchers), :mod:`.pictures` (macro graphs
and the map), :mod:`.app` (the page and the endpoint), :mod:`.cli`.
"""

from narbuild.serve.engine import Query, SearchEngine

__all__ = ["Query", "SearchEngine", "build_app"]


def __getattr__(name: str):
    if name == "build_app":  # imports gradio
        from narbuild.serve.app import build_app

        return build_app
    raise AttributeError(f"module 'narbuild.serve' has no attribute {name!r}")
