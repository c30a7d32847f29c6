"""Build transformers models from a config dict, with the repairs a default config needs.

A default config may leave out what its modeling code computes with; each repair below fills
one such gap by the library's documented convention (named and documented at its function):

* :func:`_config_for`: a composite config's sub-config for classes built from one;
* :func:`_apply_misspelled_sub_config_defaults`: a declared sub-config default under the field
  name it misspells;
* :func:`_complete_attention_defaults`: ``head_dim``, ``num_key_value_heads``, RoPE per layer
  type, a forecaster's ``prediction_length``;
* :func:`_complete_expert_routing`: a mixture of experts' top-k; :func:`_unaligned_experts`:
  the ``batched_mm`` experts kernel where grouped matmul refuses the expert width;
* :func:`_fit_mrope_sections`: multimodal RoPE widths (or head widths) that match their
  sections;
* :func:`_complete_image_token`: an image placeholder id a tokenizer would add;
* :func:`language_model_of`: the language model inside a multimodal generative model.

A constructor that still fails gets the repairs of :data:`BUILD_REPAIRS` that apply to its
failure (:func:`construct`, one try per repair; a config that builds is never changed): a
required value left None from the config's documented example or its base model type, a flag or
value the error message prescribes, an attribute the modeling code reads that the config class
lacks, per-layer MLP types, mixture-of-experts and token-indexer sizes by transformers' most
common defaults, a tokenizer's vocabulary map.
"""

from __future__ import annotations

import ast
import inspect
import re
from collections.abc import Callable, Iterator
from typing import Any

import torch

from narbuild.errors import NarbuildError
from narbuild.sources.base import Built
from narbuild.tracing import hf_inputs
from narbuild.tracing import inputs as make


def build_transformers(config: dict[str, Any], step: str) -> Built:
    """A transformers model from its model type, class and config dict (``step`` picks the
    text-only inputs or the text model of a multimodal one)."""
    import transformers

    cls = getattr(transformers, config["class"], None)
    if cls is None:
        raise NarbuildError(f"transformers has no class {config['class']}",
                            "upgrade transformers or re-crawl")
    from transformers.models.auto.configuration_auto import CONFIG_MAPPING

    from narbuild.tracing.hf_patches import patch_masking_utils

    patch_masking_utils()
    hf_config = _config_for(cls, CONFIG_MAPPING[config["model_type"]].from_dict(config["config"]))
    if step == "text-model":
        cls, hf_config = language_model_of(cls, hf_config)
    _apply_misspelled_sub_config_defaults(hf_config)
    derived = _complete_attention_defaults(hf_config)
    _complete_expert_routing(hf_config)
    _complete_image_token(hf_config)
    options = {"experts_implementation": "batched_mm"} if _unaligned_experts(hf_config) else {}
    model = construct(cls, hf_config, **options)
    if _fit_mrope_sections(model, derived):
        model = construct(cls, hf_config, **options)
    if callable(getattr(model, "set_default_language", None)):  # X-MOD: one adapter per language
        languages = getattr(hf_config, "languages", None) or [None]
        model.set_default_language(getattr(hf_config, "default_language", None) or languages[0])
    inputs = hf_inputs.transformers_inputs(model, hf_config, text_only=step == "text-only")
    return Built(model, inputs, attention="eager")


def _config_for(cls: type, hf_config: Any) -> Any:
    """The config the class is built from: a composite config's sub-config of the class's own
    ``config_class`` (``Llama4ForCausalLM`` takes ``Llama4Config.text_config``, ``MusicgenModel``
    its ``decoder``), as ``AutoModel.from_config`` does for text sub-configs."""
    wanted = getattr(cls, "config_class", None)
    if wanted is None or isinstance(hf_config, wanted):
        return hf_config
    for name in getattr(hf_config, "sub_configs", {}):
        sub = getattr(hf_config, name, None)
        if isinstance(sub, wanted):
            return sub
    return hf_config


def _apply_misspelled_sub_config_defaults(hf_config: Any) -> None:
    """A sub-config default that transformers declares (``sub_configs_defaults``) with a
    misspelled field name is applied under the field it misspells, where the sub-config still
    holds its own class default: EdgeTAM declares its timm backbone as ``archirecture:
    "repvit_m1"``, so its default config gets timm's ResNet-50 (2048 channels) where its neck
    expects RepViT-M1's [384, 192, 96, 48]."""
    import dataclasses

    for config in list(configs_of(hf_config)):
        for name, spec in (getattr(type(config), "sub_configs_defaults", None) or {}).items():
            sub, wanted = _read(config, name), getattr(spec, "init_kwargs", None) or {}
            try:
                fields = dataclasses.fields(type(sub))
            except TypeError:
                continue
            for key, value in wanted.items():
                if any(f.name == key for f in fields):
                    continue
                field = next((f for f in fields if _misspells(key, f.name)), None)
                if field is not None and _read(sub, field.name) == field.default:
                    setattr(sub, field.name, value)


def _misspells(key: str, name: str) -> bool:
    """Whether ``key`` is ``name`` with one or two letters mistyped (same length)."""
    return len(key) == len(name) > 4 and sum(a != b for a, b in zip(key, name)) <= 2


def _complete_attention_defaults(hf_config: Any) -> set[int]:
    """Fill what a default config leaves None but its modeling code computes with, by the
    documented convention: ``head_dim = hidden_size // num_attention_heads`` (ministral,
    hunyuan), ``num_key_value_heads = num_attention_heads`` where None or missing (nemotron,
    Moonshine Streaming: no grouping), the default RoPE per layer type where the rotary
    parameters are empty, and a forecaster's ``prediction_length`` (required; 24 steps,
    PatchTST's default) with ``context_length`` defaulting to it (Informer, Autoformer).
    Returns the ids of the configs whose ``head_dim`` was derived so."""
    derived: set[int] = set()
    if getattr(hf_config, "prediction_length", 0) is None:
        hf_config.prediction_length = 24
        hf_config.context_length = hf_config.context_length or 24
    for holder in make.config_holders(hf_config):
        _complete_rope_per_layer_type(holder)
        hidden, heads = _read(holder, "hidden_size"), _read(holder, "num_attention_heads")
        if not isinstance(heads, int) or heads <= 0:
            continue
        if _read(holder, "head_dim") is None and isinstance(hidden, int):
            holder.head_dim = hidden // heads
            derived.add(id(holder))
        if _read(holder, "num_key_value_heads") in (None, _MISSING):
            holder.num_key_value_heads = heads
    return derived


MOE_DEFAULTS = {
    "num_experts_per_tok": 8, "top_k_experts": 8, "moe_top_k": 8,
    "n_routed_experts": 128, "num_experts": 128, "num_local_experts": 128,
    "n_shared_experts": 1, "moe_intermediate_size": 2048, "shared_expert_intermediate_size": 512,
}
"""The most common defaults of transformers' mixture-of-experts configs (5.x: 8 experts per
token in 31 configs, 128 experts in 14, one shared expert in 21, experts 2048 wide in 11, shared
experts 512 wide in 6), for configs that leave their routing sizes None (DeepSeek-V2's top-k,
dots.llm1's and DiffusionGemma's expert counts)."""
_EXPERT_WIDTHS = ("moe_intermediate_size", "expert_intermediate_size",
                  "shared_expert_intermediate_size")


def _unaligned_experts(hf_config: Any) -> bool:
    """Whether an expert width is not a multiple of 8: torch's grouped matmul, transformers'
    default experts kernel, needs each row 16-byte aligned in bfloat16 and refuses such a model
    (DeepSeek-V2's default 1407) on any device; it then runs on transformers' ``batched_mm``
    experts implementation, which multiplies each token by its experts' weights gathered into a
    batch, without that constraint."""
    return any(isinstance(w := _read(c, n), int) and w % 8
               for c in configs_of(hf_config) for n in _EXPERT_WIDTHS)


_EXPERT_COUNTS = ("n_routed_experts", "num_experts", "num_local_experts")
_EXPERTS_PER_TOKEN = ("num_experts_per_tok", "top_k_experts", "moe_top_k")


def _complete_expert_routing(hf_config: Any) -> None:
    """A mixture of experts (an expert count over 1) whose number of experts per token is None
    (DeepSeek-V2 and DeepSeek-OCR 2 route by ``topk`` with it): :data:`MOE_DEFAULTS`' 8, or
    every expert where there are fewer."""
    for config in configs_of(hf_config):
        counts = [c for n in _EXPERT_COUNTS if isinstance(c := _read(config, n), int) and c > 1]
        for name in _EXPERTS_PER_TOKEN if counts else ():
            if _read(config, name) is None:
                setattr(config, name, min(MOE_DEFAULTS[name], counts[0]))


DEFAULT_ROPE = {"rope_type": "default", "rope_theta": 10000.0}
"""transformers' default rotary embedding."""


def _complete_rope_per_layer_type(holder: Any) -> None:
    """A config whose rotary parameters are keyed by layer type but empty (Cohere Compass's
    default: the modeling code looks up ``rope_parameters[layer_type]``) gets the default
    rotary embedding for each of its layer types."""
    rope, types = _read(holder, "rope_parameters"), _read(holder, "layer_types")
    if rope == {} and isinstance(types, list) and types:
        holder.rope_parameters = {t: dict(DEFAULT_ROPE) for t in dict.fromkeys(types)}


def _fit_mrope_sections(model: torch.nn.Module, derived: set[int] = frozenset()) -> bool:
    """Fit multimodal RoPE to its sections, by the convention that sections cover half the
    rotary width (2 x sum(sections)). A default config may leave out ``partial_rotary_factor``
    while its modeling code's sections ([8, 12, 12] in GLM-4V) assume one: the rotary width is
    then taken as a fraction of the head width. Or it gives the fraction but leaves ``head_dim``
    None or out, and hidden size / heads (``derived``: the ids of such configs) is not the head
    width the sections assume (GLM-4.5V: 4096 / 96): the head width is then the rotary width
    over the fraction (128). A rotary embedding that reads its sections from a config without any
    (HunYuanVL's, which documents them as optional) gets one section over the whole rotary
    width: plain RoPE along the sequence. True when the config changed (build again)."""
    for module in model.modules():
        sections, inv_freq = getattr(module, "mrope_section", None), getattr(module, "inv_freq", None)
        config = getattr(module, "config", None)
        rope = getattr(config, "rope_parameters", None)
        if (sections is None and hasattr(module, "mrope_section") and isinstance(rope, dict)
                and isinstance(inv_freq, torch.Tensor) and "mrope_section" not in rope):
            rope["mrope_section"] = [inv_freq.shape[-1]]  # one section: plain RoPE
            return True
        if (not isinstance(sections, list) or not isinstance(inv_freq, torch.Tensor)
                or not isinstance(rope, dict) or sum(sections) == inv_freq.shape[-1]):
            continue
        if "partial_rotary_factor" in rope:
            head_dim = 2 * sum(sections) / rope["partial_rotary_factor"]
            unset = id(config) in derived or _read(config, "head_dim") is _MISSING
            if unset and head_dim == int(head_dim):
                config.head_dim = int(head_dim)
                return True
            continue
        head_dim = _read(config, "head_dim")
        if not isinstance(head_dim, int):
            head_dim = config.hidden_size // config.num_attention_heads
        factor = 2 * sum(sections) / head_dim
        if 0 < factor <= 1:
            rope["partial_rotary_factor"] = factor
            return True
    return False


def _complete_image_token(hf_config: Any) -> None:
    """A vision-language default config may leave its image placeholder id None (the tokenizer
    adds that token, e.g. BLIP-2, InstructBLIP); it gets the last id of the text vocabulary,
    which the example text never uses otherwise. The id chooses where image features go in the
    text, as the other token ids do: it does not change the graph."""
    if getattr(hf_config, "vision_config", None) is None:
        return
    fields = hf_config.to_dict()  # serialises every sub-config: once per build, not per name
    for name in make.IMAGE_TOKEN_FIELDS:
        if name in fields and _read(hf_config, name) is None:
            vocab = _read(hf_config.get_text_config(), "vocab_size")
            if isinstance(vocab, int) and vocab > 1:
                setattr(hf_config, name, vocab - 1)
            return


_GENERATIVE = ("ForConditionalGeneration", "ForCausalLM")


def language_model_of(cls: type, hf_config: Any) -> tuple[type, Any]:
    """The language model inside a multimodal generative model: the base model class of its
    text sub-config. For the ``text-model`` step, when the whole model cannot be built or run
    (its default vision or audio config is incomplete); the graph is then the language model's,
    as the ``text-only`` step's graph is. Raises :class:`NotApplicable` for anything else."""
    import importlib

    text = hf_config.get_text_config(decoder=True)
    takes_text = "input_ids" in inspect.signature(cls.forward).parameters
    generative = cls.__name__.endswith(_GENERATIVE)
    base_model = cls.__name__.endswith("Model") and getattr(cls, "config_class", None) is type(
        hf_config)  # the base model of a composite: its text tower must be a decoder
    if text is hf_config or not takes_text or not (generative or base_model):
        raise make.NotApplicable("not a multimodal language model")
    module = importlib.import_module(type(text).__module__.replace(".configuration_", ".modeling_"))
    classes = {n: c for n, c in vars(module).items()
               if inspect.isclass(c) and getattr(c, "config_class", None) is type(text)}
    base = sorted((n for n in classes if n.endswith("Model") and "PreTrained" not in n), key=len)
    decoder = generative or any(n.endswith("ForCausalLM") for n in classes)
    if not base or not decoder:
        raise make.NotApplicable(f"{type(text).__name__} has no language model class")
    return classes[base[0]], text


_ABSENT, _MISSING = object(), object()


def _read(holder: Any, name: str) -> Any:
    """``holder.name``; ``_MISSING`` when it has none, ``_ABSENT`` when it refuses a global read
    (transformers' per-layer attributes of heterogeneous configs raise on ``config.head_dim``)."""
    try:
        return getattr(holder, name, _MISSING)
    except Exception:  # noqa: BLE001 - AmbiguousGlobalPerLayerAttributeError is no AttributeError
        return _ABSENT


def construct(cls: type, hf_config: Any, **options: Any) -> torch.nn.Module:
    """``cls`` built from ``hf_config``. When the constructor fails, each repair of
    :data:`BUILD_REPAIRS` that applies to the failure changes the config, and the constructor
    runs again (each repair once); a config that builds as it is is never changed."""
    done: set[str] = set()
    while True:
        try:
            return cls._from_config(hf_config, attn_implementation="eager", **options)
        except Exception as exc:
            repair = next((r for r in BUILD_REPAIRS
                           if r.__name__ not in done and r(hf_config, exc)), None)
            if repair is None:
                raise
            done.add(repair.__name__)


def configs_of(hf_config: Any, depth: int = 3) -> Iterator[Any]:
    """The config, then every sub-config (``sub_configs``), ``depth`` levels down."""
    yield hf_config
    for name in getattr(hf_config, "sub_configs", None) or {} if depth else ():
        sub = _read(hf_config, name)
        if hasattr(sub, "to_dict"):
            yield from configs_of(sub, depth - 1)


def documented_example(config_class: type) -> dict[str, Any]:
    """The literal arguments the config class's docstring example passes to it
    (``EsmConfig(vocab_size=33)``, ``TimmBackboneConfig("resnet50")``: a positional argument
    is the class's first own field)."""
    own = [n for n in vars(config_class).get("__annotations__", {}) if not n.startswith("_")]
    pattern = re.compile(rf">>> .*?\b{config_class.__name__}\((.*)\)\s*$", re.MULTILINE)
    values: dict[str, Any] = {}
    for match in pattern.finditer(config_class.__doc__ or ""):
        try:
            call = ast.parse(f"f({match.group(1)})", mode="eval").body
            values.update({k.arg: ast.literal_eval(k.value) for k in call.keywords if k.arg})
            values.update({n: ast.literal_eval(a) for n, a in zip(own, call.args)})
        except (SyntaxError, ValueError, TypeError):
            continue  # a configuration built from variables, not literals
    return values


def _fill_from_documented_example(hf_config: Any, exc: Exception) -> bool:
    """A required value left None (``EsmConfig.vocab_size``, ``TimmBackboneConfig.backbone``):
    the value the config's documented example passes (ESM: 33 tokens; a timm backbone:
    ``resnet50``). A vocabulary given so comes without a padding id, which a model that numbers
    positions after it (ESM, as RoBERTa) needs: id 0, one the example text never uses."""
    filled = False
    for config in configs_of(hf_config):
        for name, value in documented_example(type(config)).items():
            if _read(config, name) is None and value is not None:
                setattr(config, name, value)
                filled = True
                if name == "vocab_size" and _read(config, "pad_token_id") is None:
                    config.pad_token_id = 0  # see below
    return filled


def _fill_from_base_model_type(hf_config: Any, exc: Exception) -> bool:
    """A variant's value left None takes its base model type's default, the type its name
    extends (``wav2vec2-bert`` and ``wav2vec2-conformer`` leave the CTC vocabulary None:
    ``wav2vec2``'s 32 characters; ``lfm2_moe`` its layer types: ``lfm2``'s, for as many
    layers)."""
    filled = False
    for config in configs_of(hf_config):
        base = _base_type_config(config)
        for name, value in config.to_dict().items() if base is not None else ():
            default = _read(base, name)
            if value is None and default not in (None, _MISSING, _ABSENT) \
                    and not name.endswith("token_id"):
                setattr(config, name, default)
                filled = True
    return filled


def _base_type_config(config: Any) -> Any:
    """The default config of the longest model type that ``config``'s model type extends
    (``wav2vec2-bert`` -> ``wav2vec2``, ``lfm2_moe`` -> ``lfm2``), with as many layers; None if
    there is none."""
    from transformers.models.auto.configuration_auto import CONFIG_MAPPING

    parts = re.split(r"([-_])", str(getattr(config, "model_type", "")))
    for end in range(len(parts) - 2, 0, -2):
        base_type = "".join(parts[:end])
        if base_type in CONFIG_MAPPING:
            layers = _read(config, "num_hidden_layers")
            try:
                base_class = CONFIG_MAPPING[base_type]
                return base_class(num_hidden_layers=layers) if isinstance(layers, int) \
                    else base_class()
            except Exception:  # noqa: BLE001 - a base config that needs more than that
                return None
    return None


_OUT_INDICES = re.compile(r"out_indices.*?One can use (\[[\d, ]+\])", re.DOTALL)


def _as_the_error_prescribes(hf_config: Any, exc: Exception) -> bool:
    """What the constructor's error message prescribes: ``is_decoder=True`` for a causal
    language-model head (Reformer), an encoder-only config for an encoder-only class (T5Gemma),
    the backbone feature indices it suggests (BEiT's segmentation head: [3, 5, 7, 11])."""
    message = str(exc)
    if "is_decoder=True" in message and not getattr(hf_config, "is_decoder", True):
        hf_config.is_decoder = True
        return True
    if "only supports encoder-only" in message and getattr(hf_config, "is_encoder_decoder", False):
        hf_config.is_encoder_decoder = False
        return True
    indices = _OUT_INDICES.search(message)
    if indices:
        hf_config.out_indices = ast.literal_eval(indices.group(1))
        return True
    return False


_NO_ATTRIBUTE = re.compile(r"'(\w+)' object has no attribute '(\w+)'")


def _missing_config_attribute(hf_config: Any, exc: Exception) -> bool:
    """An attribute the modeling code reads but the config class does not define: a dropout
    rate (the build is traced in eval mode, where dropout is the identity: 0.0), a mixture of
    experts size (:data:`MOE_DEFAULTS`), or a
    ``rope_theta`` that transformers moved into ``rope_parameters`` (DBRX's attention config
    reads it from there)."""
    found = _NO_ATTRIBUTE.search(str(exc)) if isinstance(exc, AttributeError) else None
    if found is None:
        return False
    owner, name = found.groups()
    configs = list(configs_of(hf_config))
    holder = next((c for c in configs if type(c).__name__ == owner), None)
    if holder is None:
        return False
    if "dropout" in name:
        setattr(holder, name, 0.0)
        return True
    if name in MOE_DEFAULTS:  # Qwen3-Omni's talker reads a shared expert width it lacks
        setattr(holder, name, MOE_DEFAULTS[name])
        return True
    if name == "rope_theta":
        theta = next((r["rope_theta"] for c in configs
                      if isinstance(r := _read(c, "rope_parameters"), dict) and "rope_theta" in r),
                     None)
        if theta is not None:
            holder.rope_theta = theta
            return True
    return False


def _fill_expert_sizes(hf_config: Any, exc: Exception) -> bool:
    """Mixture-of-experts sizes left None that the constructor needs (dots.llm1's and
    DiffusionGemma's expert counts and widths): :data:`MOE_DEFAULTS`."""
    return _fill_none(hf_config, MOE_DEFAULTS)


def _fill_mlp_layer_types(hf_config: Any, exc: Exception) -> bool:
    """Per-layer MLP types left None (DeepSeek-OCR 2's text config): the first
    ``first_k_dense_replace`` (or ``num_dense_layers``) layers dense and the rest sparse, as
    transformers' DeepSeek-style configs derive them (DeepSeek-V3.2, ERNIE 4.5 VL MoE)."""
    filled = False
    for config in configs_of(hf_config):
        layers = _read(config, "num_hidden_layers")
        if _read(config, "mlp_layer_types") is None and isinstance(layers, int):
            dense = next((d for n in ("first_k_dense_replace", "num_dense_layers")
                          if isinstance(d := _read(config, n), int)), 0)
            config.mlp_layer_types = ["dense"] * dense + ["sparse"] * (layers - dense)
            filled = True
    return filled


def _fill_vocabulary_map(hf_config: Any, exc: Exception) -> bool:
    """A tokenizer's vocabulary map left None (Chameleon's config documents it as "the
    vocabulary map from the tokenizer", used to find image tokens): the image placeholder
    alone, at the last id of the text vocabulary as :func:`_complete_image_token` gives it. The
    text then runs; an image, whose VQ codes the map would name, does not."""
    filled = False
    for config in configs_of(hf_config):
        vocab = _read(config, "vocab_size")
        if _read(config, "vocabulary_map") is None and isinstance(vocab, int) and vocab > 1:
            token = _read(config, "image_token_id")
            token = token if isinstance(token, int) else vocab - 1
            config.vocabulary_map = {"<image>": token}
            if _read(config, "image_token_id") is None:
                config.image_token_id = token
            filled = True
    return filled


INDEXER_DEFAULTS = {"indexer_n_heads": 64, "indexer_kv_heads": 1, "indexer_head_dim": 128,
                    "indexer_budget": 2048, "indexer_compress_ratio": 4}
"""transformers' defaults for a sparse-attention token indexer: 64 query heads 128 wide
selecting 2,048 tokens (``index_n_heads``, ``index_head_dim``, ``index_topk`` of DeepSeek-V3.2,
DeepSeek-V4, dots3), over blocks of 4 tokens (DeepSeek-V4's compressed sparse attention), with
the one key head Qwen4-Exp's documentation requires."""


def _fill_indexer_sizes(hf_config: Any, exc: Exception) -> bool:
    """A token indexer's sizes left None that the constructor needs (Qwen4-Exp builds its QSA
    indexer on every indexed-attention layer of its default config): :data:`INDEXER_DEFAULTS`."""
    return _fill_none(hf_config, INDEXER_DEFAULTS)


def _fill_none(hf_config: Any, defaults: dict[str, Any]) -> bool:
    """Set each of ``defaults`` where a (sub-)config holds None; True when one was set."""
    filled = False
    for config in configs_of(hf_config):
        for name, value in defaults.items():
            if _read(config, name) is None:
                setattr(config, name, value)
                filled = True
    return filled


BUILD_REPAIRS: tuple[Callable[[Any, Exception], bool], ...] = (
    _as_the_error_prescribes, _missing_config_attribute, _fill_from_documented_example,
    _fill_from_base_model_type, _fill_mlp_layer_types, _fill_expert_sizes, _fill_indexer_sizes,
    _fill_vocabulary_map)
"""Repairs of a config whose model's constructor failed, tried in order (see :func:`construct`)."""
