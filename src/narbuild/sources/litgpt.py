"""litgpt: the named configs of ``litgpt.config`` (Lightning AI), one per published checkpoint.

Each config is a real released model at its released size: Llama 2/3/3.1/3.2/3.3, Mistral and
Mixtral, Phi, Gemma 1/2/3, Pythia, Falcon, Qwen 2.5/3, OLMo, SmolLM2 and others. This is the
size variety that transformers' one default config per class lacks. The model is
``litgpt.model.GPT(Config.from_name(name))`` without weights; its input is :data:`SEQ_LEN`
token ids.

Listing reads ``litgpt/config.py`` on its own (importing the ``litgpt`` package loads
Lightning, ~8 s). Install: every litgpt release pins ``huggingface_hub<1.4`` while transformers
and datasets here need ``>=1.31``, so ``make setup`` installs ``lightning`` through the
``litgpt`` extra and litgpt itself with ``pip install --no-deps`` (its config and model code
do not use the Hub).
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import re
import sys
from collections.abc import Iterator
from functools import cache
from types import ModuleType
from typing import Any

from narbuild.crawler.base import manifest_row
from narbuild.errors import NarbuildError
from narbuild.sources.base import Built, Source

SOURCE = Source(
    name="litgpt", title="Lightning AI litgpt named configs (published LLM checkpoints)",
    package="litgpt", offline=True, license="Apache-2.0", extra="litgpt",
    family="the config name without its size and tuning suffix (Llama-3.1-8B-Instruct -> "
           "llama-3.1)",
    no_deps=("litgpt==0.5.13",))

SEQ_LEN = 32
# Config fields that shape the graph, kept in the manifest row's metadata.
_SHAPE_FIELDS = ("n_layer", "n_embd", "n_head", "n_query_groups", "intermediate_size",
                 "mlp_class_name", "norm_class_name", "n_expert", "n_expert_per_token",
                 "parallel_residual", "block_size", "padded_vocab_size")
_SIZE = re.compile(r"^(\d+x)?\d+(\.\d+)?[bmk]$|^a\d+b$|^\d{4}$|^v\d+(\.\d+)?$|^\d+k$", re.IGNORECASE)
_TUNING = frozenset({"instruct", "chat", "hf", "base", "it", "sft", "dpo", "deduped", "tuned",
                     "preview", "thinking", "reasoning", "plus", "1m", "function", "calling",
                     "completion", "4e1t"})


@cache
def _config_module() -> ModuleType:
    """``litgpt/config.py`` loaded on its own, without the package's ``__init__``."""
    path = SOURCE.package_dir() / "config.py"
    loaded = importlib.util.spec_from_file_location("_narbuild_litgpt_config", path)
    module = importlib.util.module_from_spec(loaded)
    sys.modules[loaded.name] = module  # dataclasses resolve their module by name
    loaded.loader.exec_module(module)
    return module


def _configs() -> dict[str, dict[str, Any]]:
    return {c["name"]: c for c in _config_module().configs}


def names() -> list[str]:
    return list(_configs())


def family_of(name: str) -> str:
    """``Llama-3.1-8B-Instruct`` -> ``llama-3.1``; ``Qwen2.5-Coder-7B`` -> ``qwen2.5-coder``;
    ``pythia-70m-deduped`` -> ``pythia``; ``Mixtral-8x7B-v0.1`` -> ``mixtral``."""
    kept = [t for t in re.split(r"[-_]", name.lower())
            if t and not _SIZE.match(t) and t not in _TUNING]
    return "-".join(kept) or name.lower()


def iter_rows(names: list[str] | None = None) -> Iterator[dict[str, Any]]:
    """One manifest row per named config (all, or ``names``)."""
    configs = _configs()
    for name in names if names is not None else configs:
        config = configs[name]
        hf = config.get("hf_config") or {}
        yield manifest_row(
            "litgpt", name, {"name": name}, task="text-generation", library="litgpt",
            module=family_of(name), repo=f"{hf['org']}/{hf['name']}" if hf else None,
            metadata={"litgpt": importlib.metadata.version("litgpt"),
                      **{k: config[k] for k in _SHAPE_FIELDS if k in config}})


def build(config: dict[str, Any], step: str) -> Built:
    """``GPT(Config.from_name(name))`` with a :data:`SEQ_LEN`-token rope cache."""
    import torch
    from litgpt.config import Config
    from litgpt.model import GPT

    try:
        model = GPT(Config.from_name(config["name"]))
    except ValueError as exc:  # from_name: "'x' is not a supported config name"
        raise NarbuildError(f"litgpt has no config {config['name']!r}",
                            "upgrade litgpt or re-crawl") from exc
    model.max_seq_length = SEQ_LEN
    return Built(model, (torch.randint(0, 100, (1, SEQ_LEN)),))
