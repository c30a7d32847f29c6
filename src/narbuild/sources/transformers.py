"""transformers: every (model type, task head) pair of the auto-model mappings, each built from
the default config of its model type."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from narbuild.crawler.base import manifest_row
from narbuild.errors import NarbuildError
from narbuild.sources.base import Built, Source, unknown_id

SOURCE = Source(
    name="transformers", title="transformers auto-model mappings (model type x task head)",
    package="transformers", offline=True, license="Apache-2.0",
    family="the config's model_type", text_steps=True)

# Auto mapping -> pipeline task, where the name alone does not say it plainly.
_TASK_OVERRIDES = {
    "MODEL_MAPPING_NAMES": "feature-extraction",
    "MODEL_FOR_CAUSAL_LM_MAPPING_NAMES": "text-generation",
    "MODEL_FOR_MASKED_LM_MAPPING_NAMES": "fill-mask",
    "MODEL_FOR_SEQ_TO_SEQ_CAUSAL_LM_MAPPING_NAMES": "text2text-generation",
    "MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING_NAMES": "text-classification",
    "MODEL_FOR_SPEECH_SEQ_2_SEQ_MAPPING_NAMES": "automatic-speech-recognition",
    "MODEL_FOR_CTC_MAPPING_NAMES": "automatic-speech-recognition",
    "MODEL_FOR_AUDIO_CLASSIFICATION_MAPPING_NAMES": "audio-classification",
    "MODEL_FOR_IMAGE_SEGMENTATION_MAPPING_NAMES": "image-segmentation",
    "MODEL_FOR_SEMANTIC_SEGMENTATION_MAPPING_NAMES": "image-segmentation",
    "MODEL_FOR_INSTANCE_SEGMENTATION_MAPPING_NAMES": "image-segmentation",
    "MODEL_FOR_UNIVERSAL_SEGMENTATION_MAPPING_NAMES": "image-segmentation",
    "MODEL_FOR_VISION_2_SEQ_MAPPING_NAMES": "image-to-text",
    "MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES": "image-text-to-text",
    "MODEL_FOR_TEXT_TO_SPECTROGRAM_MAPPING_NAMES": "text-to-speech",
    "MODEL_FOR_TEXT_TO_WAVEFORM_MAPPING_NAMES": "text-to-speech",
    "MODEL_FOR_PRETRAINING_MAPPING_NAMES": "pretraining",
    "MODEL_FOR_BACKBONE_MAPPING_NAMES": "backbone",
}


def mapping_key(mapping_name: str) -> str:
    """'MODEL_FOR_UNIVERSAL_SEGMENTATION_MAPPING_NAMES' -> 'universal-segmentation'."""
    core = re.sub(r"^MODEL_(FOR_)?|_?MAPPING_NAMES$", "", mapping_name)
    return core.lower().replace("_", "-") or "model"


def task_of_mapping(mapping_name: str) -> str:
    """'MODEL_FOR_IMAGE_CLASSIFICATION_MAPPING_NAMES' -> 'image-classification'."""
    return _TASK_OVERRIDES.get(mapping_name) or mapping_key(mapping_name)


def head_of(class_name: str, base_class: str | None) -> str:
    """The head part of a class name: 'BertForMaskedLM' (base 'BertModel') -> 'ForMaskedLM'."""
    if base_class and base_class.endswith("Model"):
        prefix = base_class[: -len("Model")]
        if prefix and class_name.startswith(prefix) and class_name != prefix:
            return class_name[len(prefix):]
    return class_name


def task_heads() -> list[tuple[str, str, str, str]]:
    """Every (model_type, class, task, mapping key) entry of the auto mappings, base first."""
    from transformers.models.auto import modeling_auto

    names = [n for n in dir(modeling_auto) if n.startswith("MODEL_") and n.endswith("_MAPPING_NAMES")]
    names.sort(key=lambda n: (n != "MODEL_MAPPING_NAMES", n))
    entries = []
    for mapping_name in names:
        task, key = task_of_mapping(mapping_name), mapping_key(mapping_name)
        for model_type, classes in getattr(modeling_auto, mapping_name).items():
            cls = classes if isinstance(classes, str) else classes[0]
            entries.append((model_type, cls, task, key))
    return entries


def default_config(model_type: str) -> dict[str, Any]:
    """The default config of a model type, as a plain dict."""
    from transformers import AutoConfig

    return AutoConfig.for_model(model_type).to_dict()


def iter_rows(names: list[str] | None = None) -> Iterator[dict[str, Any]]:
    """Yield one manifest row per (model type, task head) entry of the auto mappings.

    The id names the head class (``transformers:bert/ForMaskedLM``). A class that several
    mappings list (e.g. BertForMaskedLM for masked-lm and pretraining) gets one row per
    mapping; the later ones are ``...@<mapping>`` (``transformers:bert/ForMaskedLM@pretraining``) and share the first row's config hash, so ``trace``
    builds that architecture once.
    """
    from transformers.utils import logging as hf_logging

    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # default configs warn about token ids; not our concern
    try:
        yield from _rows({n.split('/')[0] for n in names} if names is not None else None)
    finally:
        hf_logging.set_verbosity(verbosity)


def _rows(model_types: set[str] | None) -> Iterator[dict[str, Any]]:
    from transformers.models.auto.modeling_auto import MODEL_MAPPING_NAMES

    configs: dict[str, dict[str, Any] | str] = {}
    tasks_of: dict[tuple[str, str], list[str]] = {}
    entries = [e for e in task_heads() if model_types is None or e[0] in model_types]
    for model_type, cls, task, _ in entries:
        tasks_of.setdefault((model_type, cls), []).append(task)
    first_of: dict[tuple[str, str], str] = {}
    for model_type, cls, task, key in entries:
        if model_type not in configs:
            try:
                configs[model_type] = default_config(model_type)
            except Exception as exc:  # noqa: BLE001 - any failure becomes an error row
                configs[model_type] = f"default config failed: {type(exc).__name__}: {exc}"
        cfg = configs[model_type]
        base = MODEL_MAPPING_NAMES.get(model_type)
        base = base if isinstance(base, str) else (base[0] if base else None)
        tasks = tasks_of[(model_type, cls)]
        name = f"{model_type}/{head_of(cls, base)}"
        if first_of.setdefault((model_type, cls), key) != key:
            name += f"@{key}"
        error = cfg if isinstance(cfg, str) else None
        config = {"model_type": model_type, "class": cls, "config": {} if error else cfg}
        yield manifest_row(
            "transformers", name, config,
            task=task, library="transformers", model_type=model_type,
            architectures=[cls], metadata={"tasks": tasks}, error=error,
        )


def names() -> list[str]:
    from transformers.models.auto.configuration_auto import CONFIG_MAPPING_NAMES

    return list(CONFIG_MAPPING_NAMES)


def lookup(name: str) -> dict[str, Any]:
    """``TYPE`` (its base model) or ``TYPE/HEAD``."""
    model_id = f"transformers:{name}"
    model_type = name.split("/")[0]
    if model_type not in names():
        raise unknown_id(f"transformers:{model_type}", [f"transformers:{t}" for t in names()],
                         "model types are transformers' model_type names, e.g. bert, llama")
    rows = list(iter_rows([model_type]))
    if not rows:
        raise NarbuildError(f"transformers has no model class for {model_type!r}",
                            "it is a sub-config; pick the model type that contains it")
    if "/" not in name:
        return rows[0]
    for row in rows:
        if row["model_id"] == model_id:
            return row
    raise unknown_id(model_id, [r["model_id"] for r in rows],
                     f"heads of {model_type}: {', '.join(r['name'] for r in rows[:6])}")


def build(config: dict[str, Any], step: str) -> Built:
    from narbuild.tracing.hf_fixups import build_transformers

    return build_transformers(config, step)
