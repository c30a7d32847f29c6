"""timm: every architecture in ``timm.list_models()``, with its default pretrained config."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from narbuild.crawler.base import manifest_row
from narbuild.errors import NarbuildError
from narbuild.sources.base import Built, Source

SOURCE = Source(
    name="timm", title="PyTorch Image Models (timm.list_models)", package="timm", offline=True,
    license="Apache-2.0", family="the timm module (timm.models.<module>)")

# Fields of a timm PretrainedCfg that shape the model or its input (never weights).
_CFG_FIELDS = ("input_size", "num_classes", "fixed_input_size", "test_input_size", "pool_size")


def names() -> list[str]:
    import timm

    return timm.list_models()


def iter_rows(names: list[str] | None = None) -> Iterator[dict[str, Any]]:
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



def check_local_architecture(name: Any) -> str:
    """A timm architecture name that builds from this machine alone; ``hf-hub:`` and
    ``local-dir:`` names (timm would fetch or read a config, sending the Hub token) are
    refused."""
    if not isinstance(name, str) or not name:
        raise NarbuildError(f"invalid timm architecture {name!r}",
                            "name a timm architecture, e.g. resnet50")
    prefix = name.split(":", 1)[0] if ":" in name else ""
    if prefix:
        raise NarbuildError(f"the config names the timm architecture {name!r}, which timm "
                            f"would load through {prefix}: (the Hub or another folder)",
                            "name a timm architecture such as resnet50, or trace the Hub "
                            f"model by id, hf:{name.split(':', 1)[1]} (needs the network)")
    return name


def build(config: dict[str, Any], step: str) -> Built:
    import timm

    from narbuild.tracing import inputs as make

    check_local_architecture(config["architecture"])
    cfg = config.get("pretrained_cfg", {})
    model = timm.create_model(config["architecture"], pretrained=False,
                              num_classes=cfg.get("num_classes", 1000), **config.get("kwargs", {}))
    return Built(model, make.vision_inputs(cfg.get("input_size")))
