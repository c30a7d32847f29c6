"""hf-hub: models listed on the Hugging Face Hub, each read as its ``config.json`` (online).

The listing, paging, resume cursor and error handling live in :mod:`narbuild.crawler.hf_hub`;
a row builds as the library its config names (transformers or timm).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from narbuild.errors import NarbuildError, SourceUnavailableError
from narbuild.sources.base import Built, Source

SOURCE = Source(
    name="hf-hub", title="Hugging Face Hub models (config.json, online)",
    package="huggingface_hub", offline=False, license="per repository",
    family="the config's model_type (timm configs: the timm module)", text_steps=True,
    id_prefix="hf")


def lookup(name: str) -> dict[str, Any]:
    """One Hub model by id needs the Hub, which a lookup does not reach."""
    raise SourceUnavailableError(
        f"hf:{name} needs the Hugging Face Hub, which this command does not reach",
        "download the repo's config.json and pass its path instead")


def iter_rows(names: list[str] | None = None, *, workspace: Any = None,
              **options: Any) -> Iterator[dict[str, Any]]:
    """The Hub's listing (``options``: see :func:`narbuild.crawler.hf_hub.iter_hf_hub`)."""
    from narbuild.crawler.hf_hub import iter_hf_hub

    return iter_hf_hub(workspace, **options)


def build(config: dict[str, Any], step: str) -> Built:
    from narbuild.sources import timm, transformers

    cfg = config.get("config", {})
    if config.get("library") == "timm" or "architecture" in cfg:
        return timm.build({"architecture": cfg["architecture"],
                           "pretrained_cfg": cfg.get("pretrained_cfg", {})}, step)
    model_type = cfg.get("model_type")
    archs = cfg.get("architectures") or []
    if not model_type or not archs:
        raise NarbuildError("config.json has no model_type/architectures",
                            "only transformers and timm Hub models are built")
    return transformers.build({"model_type": model_type, "class": archs[0], "config": cfg}, step)
