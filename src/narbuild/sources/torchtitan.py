"""torchtitan: the model registry of PyTorch's torchtitan, one row per (model, flavor).

Every model package of ``torchtitan.models`` (``_supported_models``: ``llama3``,
``deepseek_v3``, ``qwen3``, ``gpt_oss``, ``kimi_k2_7``, ``muse_glimmer``, ``flux``) declares a
``<model>_configs`` dict of flavors (``debugmodel``, ``1B`` ... ``405B``, ``16B``, ``671B``,
``30B-A3B``, ``flux-dev``...) and a ``model_registry(flavor)`` that returns its
``ModelSpec``; a row is ``spec.model.build()`` on meta, as torchtitan's trainer builds it.
Listing reads the flavor dicts with :mod:`ast` (importing torchtitan takes ~5 s). The family
is the model package's name (``llama3``, ``deepseek_v3``, ...); ``debug`` flavors are the
package's own small test configs of the same design.

Language models take :data:`SEQ_LEN` token ids. Their attention backends (FlexAttention,
varlen) are compiled GPU kernels behind a block mask that torch.compile builds, so each inner
attention module is swapped for causal attention on PyTorch's math path
(:class:`_CausalAttention`; gpt-oss's attention sinks keep their log-sum-exp rescale): a
document or sliding-window mask changes values, not the graph. The multimodal flavors
(``Kimi-VL-A3B``, ``Kimi-K2.5``, ``muse_glimmer``'s ``*_mm``) run on text tokens alone, their
language model. Flux takes 64 latent image tokens of 64 channels, 16 text tokens of T5 width,
a timestep and a CLIP pooled vector (its T5, CLIP and autoencoder are not part of the model).
Models run with torchtitan's ``partial_dtensor`` SPMD backend (its trainer's option for
plain tensors; the default ``spmd_types`` asserts shardings against a device mesh).

Left out (:data:`EXCLUDED`): ``qwen3_5``, whose gated-delta-rule layers are Triton kernels of
``flash-linear-attention`` (GPU only). Install: torchtitan 0.3.0 declares ``datasets<4.8``
(here 5.2, which narbuild needs) and training-only packages (wandb, tensorboard,
torch_checkpointing): ``make setup`` installs what its model code imports through the
``torchtitan`` extra and torchtitan itself with ``pip install --no-deps``.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

from narbuild.crawler.base import manifest_row
from narbuild.errors import NarbuildError
from narbuild.sources.base import Built, Source, unknown_id

SOURCE = Source(
    name="torchtitan", title="torchtitan model registry (model x flavor)",
    package="torchtitan", offline=True, license="BSD-3-Clause", extra="torchtitan",
    family="the model package in torchtitan.models (llama3, deepseek_v3, qwen3, gpt_oss, ...)",
    no_deps=("torchtitan==0.3.0",))

SEQ_LEN = 32
FLUX_IMAGE_TOKENS, FLUX_TEXT_TOKENS = 64, 16
EXCLUDED: dict[str, str] = {
    "qwen3_5": "its gated-delta-rule (linear attention) layers are Triton GPU kernels of "
               "flash-linear-attention, which neither the meta device nor the CPU runs"}
"""Model packages not listed, and why."""
_TASKS = {"flux": "text-to-image"}


def _root() -> Path:
    return SOURCE.package_dir()


def _literal_names(path: Path, suffix: str) -> dict[str, list[str]]:
    """``{variable: its keys}`` of the module-level dict or set literals whose name ends with
    ``suffix``, read with :mod:`ast`."""
    out = {}
    for node in ast.parse(path.read_text()).body:
        target = getattr(node, "target", None) or (getattr(node, "targets", None) or [None])[0]
        if not (isinstance(target, ast.Name) and target.id.endswith(suffix)):
            continue
        value = node.value
        if isinstance(value, ast.Call) and value.args:  # frozenset([...])
            value = value.args[0]
        items = value.keys if isinstance(value, ast.Dict) else getattr(value, "elts", [])
        out[target.id] = [ast.literal_eval(k) for k in items]
    return out


@cache
def _index() -> dict[str, tuple[str, str]]:
    """``{row name: (model package, flavor)}``: every flavor of every supported model."""
    root = _root() / "models"
    models = _literal_names(root / "__init__.py", "_supported_models")["_supported_models"]
    out = {}
    for model in sorted(models):
        configs = _literal_names(root / model / "__init__.py", "_configs")
        for flavors in configs.values():
            for flavor in flavors:
                out[f"{model}/{flavor}"] = (model, flavor)
    return out


def _listed() -> dict[str, tuple[str, str]]:
    return {n: mf for n, mf in _index().items() if mf[0] not in EXCLUDED}


def names() -> list[str]:
    return list(_listed())


def lookup(name: str) -> dict[str, Any]:
    entry = _index().get(name)
    if entry is not None and entry[0] in EXCLUDED:
        raise NarbuildError(f"torchtitan:{name} is not listed: {EXCLUDED[entry[0]]}",
                            "`narbuild crawl -s torchtitan` lists the others")
    if entry is None:
        raise unknown_id(f"torchtitan:{name}", [f"torchtitan:{n}" for n in _listed()],
                         "list them with `narbuild crawl -s torchtitan`")
    return next(iter_rows([name]))


def iter_rows(names: list[str] | None = None) -> Iterator[dict[str, Any]]:
    """One manifest row per (model, flavor) (all listed, or ``names``)."""
    import importlib.metadata

    index = _index()
    version = importlib.metadata.version("torchtitan")
    for name in names if names is not None else _listed():
        model, flavor = index[name]
        yield manifest_row("torchtitan", name, {"model": model, "flavor": flavor},
                           task=_TASKS.get(model, "text-generation"), library="torchtitan",
                           module=model, metadata={"torchtitan": version, "flavor": flavor})


def build(config: dict[str, Any], step: str) -> Built:
    """``model_registry(flavor).model.build()``, its inner attention on the math path."""
    import importlib

    import torch

    model_name, flavor = config["model"], config["flavor"]
    if model_name in EXCLUDED:
        raise NarbuildError(f"torchtitan's {model_name} is not traced: {EXCLUDED[model_name]}",
                            "re-crawl")
    try:
        package = importlib.import_module(f"torchtitan.models.{model_name}")
        spec = package.model_registry(flavor)
    except (ModuleNotFoundError, KeyError) as exc:
        if isinstance(exc, ModuleNotFoundError) and not str(exc.name).startswith("torchtitan"):
            raise
        raise NarbuildError(f"torchtitan has no model {model_name!r} of flavor {flavor!r}",
                            "upgrade torchtitan or re-crawl") from exc
    from torchtitan.distributed import utils as dist_utils

    dist_utils.set_spmd_backend("partial_dtensor")  # one device: no mesh to type against
    model = spec.model.build()
    _math_attention(model)
    if model_name == "flux":
        return Built(model, _flux_inputs(spec.model))
    return Built(model, (torch.randint(0, 100, (1, SEQ_LEN)),))


def _flux_inputs(cfg: Any) -> dict[str, Any]:
    import torch

    def randn(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, requires_grad=True)

    return {"img": randn(1, FLUX_IMAGE_TOKENS, cfg.in_channels),
            "img_ids": torch.zeros(1, FLUX_IMAGE_TOKENS, 3),
            "txt": randn(1, FLUX_TEXT_TOKENS, cfg.context_in_dim),
            "txt_ids": torch.zeros(1, FLUX_TEXT_TOKENS, 3),
            "timesteps": torch.full((1,), 0.5), "y": randn(1, cfg.vec_in_dim)}


def _math_attention(model: Any) -> None:
    """Swap every FlexAttention and VarlenAttention module for :class:`_CausalAttention`."""
    from torchtitan.models.common.attention import FlexAttention, VarlenAttention

    for parent in list(model.modules()):
        for child_name, child in list(parent.named_children()):
            if isinstance(child, (FlexAttention, VarlenAttention)):
                setattr(parent, child_name, _causal_attention_class()())


@cache
def _causal_attention_class() -> type:
    """:class:`_CausalAttention`, made on first use (this module imports torch late)."""
    import torch
    import torch.nn.functional as F

    class _CausalAttention(torch.nn.Module):
        """Causal attention over (batch, length, heads, head dim) on the math path, as the
        flex and varlen backends compute it for one document; with ``out_transform`` (gpt-oss's
        attention sinks) the log-sum-exp is computed explicitly."""

        def forward(self, q, k, v, *, attention_masks=None, score_mod=None, scale=None,
                    enable_gqa=False, out_transform=None, **kwargs):
            q, k, v = (t.transpose(1, 2) for t in (q, k, v))
            if out_transform is None:
                out = F.scaled_dot_product_attention(q, k, v, is_causal=True, scale=scale,
                                                     enable_gqa=enable_gqa)
                return out.transpose(1, 2)
            if enable_gqa and k.shape[1] != q.shape[1]:
                repeat = q.shape[1] // k.shape[1]
                k, v = k.repeat_interleave(repeat, dim=1), v.repeat_interleave(repeat, dim=1)
            scores = (q @ k.transpose(-2, -1)) * (scale or q.shape[-1] ** -0.5)
            length = q.shape[2]
            causal = torch.ones(length, length, dtype=torch.bool, device=q.device).tril()
            scores = scores.masked_fill(~causal, float("-inf"))
            lse = torch.logsumexp(scores, dim=-1)
            out = (torch.softmax(scores, dim=-1) @ v).transpose(1, 2)
            return out_transform(out, lse.transpose(1, 2))

    return _CausalAttention
