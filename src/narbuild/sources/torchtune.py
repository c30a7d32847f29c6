"""torchtune: the model builders of ``torchtune.models`` (PyTorch), one per published model.

Each family module (``torchtune.models.llama3_2``, ``qwen2_5``, ``gemma2`` ...) exports a
builder per released size (``llama3_2_1b``, ``qwen2_5_72b_instruct``); every builder that takes
no argument is a row: the Llama 2/3.x, Code Llama, Mistral, Phi-3/4, Gemma 1/2 and Qwen 2/2.5
decoders, Llama 3.2 Vision (a deep-fusion model), the CLIP text encoder, the T5 v1.1 XXL encoder
and the Flux autoencoder. The LoRA builders (``lora_*``, ``qlora_*``) need their adapters
chosen and are left out. The implementation is torchtune's own (``TransformerDecoder``), so its
graphs differ from the same models built by transformers or litgpt.

Install: torchtune 0.6.1 imports ``torchao`` without declaring it, and torchao 0.18 removed what
it imports; the ``torchtune`` extra pins ``torchao==0.17.0``.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Iterator
from typing import Any

from narbuild.crawler.base import manifest_row
from narbuild.errors import NarbuildError
from narbuild.sources.base import Built, Source

SOURCE = Source(
    name="torchtune", title="torchtune model builders (published sizes)", package="torchtune",
    offline=True, license="BSD-3-Clause", extra="torchtune",
    family="the builder's family module (torchtune.models.qwen2_5 -> qwen2_5)")

FAMILIES = ("clip", "code_llama2", "flux", "gemma", "gemma2", "llama2", "llama3", "llama3_1",
            "llama3_2", "llama3_2_vision", "llama3_3", "mistral", "phi3", "phi4", "qwen2",
            "qwen2_5", "t5")
"""The family modules of ``torchtune.models`` that hold whole-model builders."""
SEQ_LEN, IMAGE = 32, 256
VISION_TILE = 560
"""Llama 3.2 Vision's tile size (its builders' ``tile_size``); the image is one tile."""
_SKIP = ("tokenizer", "transform", "tp_plan", "lora_", "qlora_", "component", "adapter")


def _family(name: str) -> Any:
    return importlib.import_module(f"torchtune.models.{name}")


def _builders() -> dict[str, tuple[str, Any]]:
    """``{builder name: (family, builder)}`` of every builder that takes no argument."""
    out = {}
    for family in FAMILIES:
        module = _family(family)
        for name in getattr(module, "__all__", []):
            fn = getattr(module, name, None)
            if not inspect.isfunction(fn) or any(s in name for s in _SKIP):
                continue
            required = [p for p in inspect.signature(fn).parameters.values()
                        if p.default is inspect.Parameter.empty
                        and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
            if not required:
                out[name] = (family, fn)
    return dict(sorted(out.items()))


def names() -> list[str]:
    return list(_builders())


def iter_rows(names: list[str] | None = None) -> Iterator[dict[str, Any]]:
    """One manifest row per builder (all, or ``names``)."""
    import torchtune

    builders = _builders()
    for name in names if names is not None else builders:
        family, _ = builders[name]
        task = "image-autoencoding" if family == "flux" else (
            "feature-extraction" if family in ("clip", "t5") else "text-generation")
        yield manifest_row("torchtune", name, {"builder": name, "family": family}, task=task,
                           library="torchtune", module=family,
                           metadata={"torchtune": torchtune.__version__})


def build(config: dict[str, Any], step: str) -> Built:
    """The builder's model and inputs: token ids for the decoders and text encoders (as long as
    the T5 and CLIP text encoders' fixed context), one image for the Flux autoencoder, a
    one-tile image and tokens for Llama 3.2 Vision."""
    import torch

    builder = getattr(_family(config["family"]), config["builder"], None)
    if builder is None:
        raise NarbuildError(f"torchtune has no builder {config['builder']!r}",
                            "upgrade torchtune or re-crawl")
    model = builder()
    _build_rope_caches(model)
    kind = type(model).__name__
    if kind == "FluxAutoencoder":
        return Built(model, (torch.randn(1, 3, IMAGE, IMAGE, requires_grad=True),))
    fixed = kind in ("T5Encoder", "CLIPTextEncoder")  # position tables of a fixed length
    tokens = torch.randint(0, 100, (1, model.max_seq_len if fixed else SEQ_LEN))
    if kind != "DeepFusionModel":
        return Built(model, (tokens,))
    images = torch.randn(1, 1, 1, 3, VISION_TILE, VISION_TILE, requires_grad=True)
    aspect = torch.tensor([[[1, 1]]], device="cpu")  # read back as numbers: stays on the host
    return Built(model, {"tokens": tokens,
                         "encoder_input": {"images": images, "aspect_ratio": aspect}})


def _build_rope_caches(model: Any) -> None:
    """Llama 3.1's scaled RoPE skips its cache on the meta device (it scales real frequencies);
    build it on the CPU, then move it to the model's device (the cache is a buffer)."""
    import torch

    device = next(model.parameters()).device
    for module in model.modules():
        if hasattr(module, "rope_init") and not getattr(module, "is_cache_built", True):
            with torch.device("cpu"):
                module.rope_init()
            module.to(device)
