"""Neural architecture retrieval: rank a workspace's records by similarity to a query model.

    import narbuild
    result = narbuild.search(my_module, example_inputs, k=10)   # or a spec: "timm:convnext_tiny"
    for hit in result.hits:
        print(hit.rank, hit.model_id, hit.family, hit.score)
"""

from narbuild.retrieval.index import VectorIndex
from narbuild.retrieval.search import Hit, SearchResult, search

__all__ = ["Hit", "SearchResult", "VectorIndex", "search"]
