"""timm: every architecture in ``timm.list_models()``, with its default pretrained config."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from narbuild.crawler.base import manifest_row

# Fields of a timm PretrainedCfg that shape the model or its input (never weights).
_CFG_FIELDS = ("input_size", "num_classes", "fixed_input_size", "test_input_size", "pool_size")


def iter_timm(names: list[str] | None = None) -> Iterator[dict[str, Any]]:
    """Yield one manifest row per timm architecture (all, or the given ``names``)."""
    import timm
    from timm.models import get_arch_pretrained_cfgs, get_pretrained_cfg

    module_of = {name: mod for mod in timm.list_modules() for name in timm.list_models(module=mod)}
    for name in names if names is not None else timm.list_models():
        cfg = get_pretrained_cfg(name, allow_unregistered=True)
        default = {k: getattr(cfg, k) for k in _CFG_FIELDS if cfg and getattr(cfg, k, None)}
        config = {"architecture": name, "pretrained_cfg": default}
        tags = sorted(get_arch_pretrained_cfgs(name)) if cfg else []
        yield manifest_row(
            "timm", name, config,
            task="image-classification", library="timm", module=module_of.get(name),
            metadata={"pretrained_tags": tags, "license": getattr(cfg, "license", None)},
        )
