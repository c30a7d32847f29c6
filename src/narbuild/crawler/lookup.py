"""Resolve one model id to its manifest row without crawling a whole source."""

from __future__ import annotations

import difflib
from typing import Any

from narbuild.errors import NarbuildError, SourceUnavailableError


def _unknown(model_id: str, known: list[str], how: str) -> NarbuildError:
    close = difflib.get_close_matches(model_id, known, n=3, cutoff=0.6)
    hint = f"did you mean {', '.join(close)}?" if close else how
    return NarbuildError(f"unknown model id {model_id!r}", hint)


def lookup(model_id: str) -> dict[str, Any]:
    """The manifest row of a registry model id: ``timm:NAME``, ``torchvision:NAME``,
    ``transformers:TYPE`` (its base model) or ``transformers:TYPE/HEAD``."""
    source, sep, name = model_id.partition(":")
    if not sep or not name:
        raise NarbuildError(f"{model_id!r} is not a model id",
                            "use <source>:<name>, e.g. timm:resnet50 or transformers:bert")
    if source == "timm":
        import timm

        from narbuild.crawler.timm_source import iter_timm

        if name not in timm.list_models():
            raise _unknown(model_id, [f"timm:{n}" for n in timm.list_models()],
                           "list them with `narbuild crawl -s timm`")
        return next(iter_timm([name]))
    if source == "torchvision":
        from torchvision.models import list_models

        from narbuild.crawler.torchvision_source import iter_torchvision

        if name not in list_models():
            raise _unknown(model_id, [f"torchvision:{n}" for n in list_models()],
                           "list them with `narbuild crawl -s torchvision`")
        return next(iter_torchvision([name]))
    if source == "transformers":
        return _transformers_row(model_id, name)
    if source == "hf":
        raise SourceUnavailableError(
            f"{model_id} needs the Hugging Face Hub, which this command does not reach",
            "download the repo's config.json and pass its path instead")
    raise NarbuildError(f"unknown source {source!r} in {model_id!r}",
                        "use timm:, torchvision:, transformers: or hf:")


def _transformers_row(model_id: str, name: str) -> dict[str, Any]:
    from transformers.models.auto.configuration_auto import CONFIG_MAPPING_NAMES

    from narbuild.crawler.transformers_source import iter_transformers

    model_type = name.split("/")[0]
    if model_type not in CONFIG_MAPPING_NAMES:
        raise _unknown(f"transformers:{model_type}",
                       [f"transformers:{t}" for t in CONFIG_MAPPING_NAMES],
                       "model types are transformers' model_type names, e.g. bert, llama")
    rows = list(iter_transformers({model_type}))
    if not rows:
        raise NarbuildError(f"transformers has no model class for {model_type!r}",
                            "it is a sub-config; pick the model type that contains it")
    if "/" not in name:
        return rows[0]
    for row in rows:
        if row["model_id"] == model_id:
            return row
    raise _unknown(model_id, [r["model_id"] for r in rows],
                   f"heads of {model_type}: {', '.join(r['name'] for r in rows[:6])}")
