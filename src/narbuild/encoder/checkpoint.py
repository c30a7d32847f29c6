"""Encoder checkpoints: plain dicts of tensors and primitives, loadable with
``torch.load(weights_only=True)``; the bundled ones ship inside the package.

A checkpoint holds the method, the dataset it was trained for (``real`` or ``nas``), the training
config, the family names of its classifier head, the operator vocabulary size, and the weights
(for NAR without the context encoder F_c, which only serves training).
"""

from __future__ import annotations

import hashlib
import io
from pathlib import Path
from typing import Any

import torch

from narbuild.encoder.bundled import bundled_checkpoint
from narbuild.encoder.data import NUM_OPS
from narbuild.encoder.models import GraphEncoder, GraphVAE, NAREncoder
from narbuild.encoder.train import TrainConfig
from narbuild.errors import NarbuildError

FORMAT = "narbuild-encoder"
VERSION = 1
METHODS = ("nar", "gcn", "gat", "vae", "wlm")


def encoder_label(meta: dict[str, Any]) -> str:
    """The name a checkpoint's embeddings carry: the learned method it was trained as
    (``nar-cl``, ``wl-metric``), else its encoder (``nar``)."""
    return (meta.get("extra") or {}).get("learned", meta["method"])


def encoder_id(meta: dict[str, Any], bundled: bool = False) -> str:
    """What embeddings name the checkpoint that made them: ``label@hash``, with `` (bundled)``
    for a packaged one."""
    return f"{encoder_label(meta)}@{meta['hash']}" + (" (bundled)" if bundled else "")


def find_checkpoint(encoder_id: str, dataset: str, folder: Path) -> Path:
    """The checkpoint that made embeddings labelled ``encoder_id`` (``method@hash``, with
    `` (bundled)`` for a packaged one): the bundled file or one in ``folder``, with that hash
    (the bundled files were trained in a workspace, whose embeddings do not say bundled)."""
    label, _, rest = encoder_id.partition("@")
    digest = rest.split()[0] if rest else ""
    candidates = [p for p in [bundled_checkpoint(label, dataset)] if p is not None]
    candidates += sorted(folder.glob("*.pt")) if folder.is_dir() else []
    for path in candidates:
        if path.is_file() and hashlib.sha256(path.read_bytes()).hexdigest()[:16] == digest:
            return path
    raise NarbuildError(f"the {dataset} embeddings were made by encoder {encoder_id}, whose "
                        f"checkpoint is not in {folder}",
                        "re-run `narbuild embed` (or pass the checkpoint with --checkpoint)")


def save_checkpoint(model: torch.nn.Module, method: str, dataset: str, cfg: TrainConfig,
                    label_names: list[str], path: str | Path,
                    extra: dict[str, Any] | None = None) -> str:
    """Write ``model`` to ``path`` atomically; returns the checkpoint's content hash."""
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()
             if not k.startswith("context.")}
    if method == "wlm":  # its input width: the training records' WL colours; the map in int8
        from narbuild.encoder.wlmetric import quantize

        extra = {**(extra or {}), "colours": int(state["colours"].shape[0])}
        state["proj"], state["proj_scale"] = quantize(state["proj"])
    payload = {"format": FORMAT, "version": VERSION, "method": method, "dataset": dataset,
               "num_ops": NUM_OPS, "config": cfg.as_dict(), "label_names": list(label_names),
               "extra": dict(extra or {}), "state_dict": state}
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(buffer.getvalue())
    tmp.replace(path)
    return hashlib.sha256(buffer.getvalue()).hexdigest()[:16]


def load_checkpoint(path: str | Path) -> tuple[torch.nn.Module, dict[str, Any]]:
    """The model and the checkpoint's metadata (everything but the weights, plus ``hash``)."""
    path = Path(path)
    if not path.is_file():
        raise NarbuildError(f"no checkpoint at {path}",
                            "pass a file written by `narbuild embed --train`, or omit "
                            "--checkpoint to use the bundled encoder")
    data = path.read_bytes()
    try:
        payload = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unpickling failure means "not ours"
        raise NarbuildError(f"{path} is not a loadable checkpoint ({type(exc).__name__})",
                            "pass a narbuild encoder checkpoint") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise NarbuildError(f"{path} is not a narbuild encoder checkpoint",
                            "pass a file written by `narbuild embed --train`")
    if payload.get("version") != VERSION or payload.get("num_ops") != NUM_OPS:
        raise NarbuildError(f"{path} was written by another narbuild version (format "
                            f"{payload.get('version')}, {payload.get('num_ops')} operators)",
                            "retrain it with `narbuild embed --train`")
    meta = {k: v for k, v in payload.items() if k != "state_dict"}
    meta["hash"] = hashlib.sha256(data).hexdigest()[:16]
    cfg = _checked_config(path, meta)
    state = payload.get("state_dict")
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise _broken(path, "its weights are not a dict of tensors")
    if meta["method"] == "wlm" and "proj_scale" in state:
        state = _dequantized(path, state)
    with torch.device("meta"):  # check the shapes before allocating anything
        shapes = {k: tuple(v.shape) for k, v in
                  build_model(meta["method"], len(meta["label_names"]), cfg,
                              _colours(path, meta)).state_dict().items()
                  if not k.startswith("context.")}
    missing = [k for k in shapes if k not in state]
    unexpected = [k for k in state if k not in shapes]
    wrong = [k for k in shapes if k in state and tuple(state[k].shape) != shapes[k]]
    if missing or unexpected or wrong:
        raise NarbuildError(f"{path}'s weights do not fit a {meta['method']} encoder "
                            f"({len(missing)} missing, {len(unexpected)} unexpected, "
                            f"{len(wrong)} of another shape)",
                            "retrain it with `narbuild embed --train`")
    model = build_model(meta["method"], len(meta["label_names"]), cfg, _colours(path, meta))
    model.load_state_dict(state, strict=False)
    return model.eval(), meta


MAX_DIM, MAX_LAYERS = 8192, 64
"""Largest sizes a checkpoint may declare (the bundled ones use 512 and 3)."""


def _checked_config(path: Path, meta: dict[str, Any]) -> TrainConfig:
    """The checkpoint's training config, its method and label names, checked field by field."""
    if meta.get("method") not in METHODS:
        raise _broken(path, f"unknown method {meta.get('method')!r}")
    labels = meta.get("label_names")
    if not isinstance(labels, list) or not all(isinstance(x, str) for x in labels):
        raise _broken(path, "label_names is not a list of names")
    config = meta.get("config")
    if not isinstance(config, dict):
        raise _broken(path, "its config is not a dict")
    known = TrainConfig.__dataclass_fields__
    unknown = sorted(set(config) - set(known))
    if unknown:
        raise _broken(path, f"its config has unknown keys ({', '.join(map(str, unknown))})")
    cfg = TrainConfig(**config)
    for name, limit in (("dim", MAX_DIM), ("layers", MAX_LAYERS)):
        value = getattr(cfg, name)
        if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= limit:
            raise _broken(path, f"its {name} is {value!r}, outside 1..{limit}")
    if not isinstance(cfg.latent, int) or isinstance(cfg.latent, bool) or not (
            0 <= cfg.latent <= MAX_DIM):
        raise _broken(path, f"its latent is {cfg.latent!r}, outside 0..{MAX_DIM}")
    if not isinstance(cfg.dropout, (int, float)) or not 0 <= cfg.dropout < 1:
        raise _broken(path, f"its dropout is {cfg.dropout!r}, outside [0, 1)")
    return cfg


def _broken(path: Path, why: str) -> NarbuildError:
    return NarbuildError(f"{path} is not a usable narbuild encoder checkpoint: {why}",
                         "pass a file written by `narbuild embed --train`, or omit "
                         "--checkpoint to use the bundled encoder")


MAX_COLOURS = 10_000_000
"""Most WL colours a ``wlm`` checkpoint may declare."""


def _colours(path: Path, meta: dict[str, Any]) -> int:
    """A ``wlm`` checkpoint's number of WL colours (0 for the other encoders), checked."""
    if meta["method"] != "wlm":
        return 0
    colours = (meta.get("extra") or {}).get("colours")
    if not isinstance(colours, int) or isinstance(colours, bool) or not (
            1 <= colours <= MAX_COLOURS):
        raise _broken(path, f"its number of WL colours is {colours!r}, outside "
                            f"1..{MAX_COLOURS}")
    return colours


def _dequantized(path: Path, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A ``wlm`` state whose int8 map and row scales are one float32 map again."""
    from narbuild.encoder.wlmetric import dequantize

    state = dict(state)
    values, scale = state.get("proj"), state.pop("proj_scale")
    if (values is None or values.dtype != torch.int8 or values.dim() != 2
            or tuple(scale.shape) != (values.shape[0], 1)):
        raise _broken(path, "its int8 map and row scales do not fit each other")
    state["proj"] = dequantize(values, scale)
    return state


def build_model(method: str, num_classes: int, cfg: TrainConfig,
                colours: int = 0) -> torch.nn.Module:
    """An untrained model of ``method`` with ``cfg``'s sizes (``colours``: a ``wlm``'s input
    width)."""
    if method == "nar":
        return NAREncoder(NUM_OPS, num_classes, cfg.dim, cfg.layers, cfg.dropout, cfg.readout)
    if method in ("gcn", "gat"):
        return GraphEncoder(method, NUM_OPS, num_classes, cfg.dim, cfg.layers, cfg.dropout)
    if method == "vae":
        return GraphVAE(NUM_OPS, cfg.dim, cfg.layers, cfg.dropout, cfg.latent)
    if method == "wlm":
        from narbuild.encoder.wlmetric import WLMetric

        return WLMetric(colours, cfg.dim)
    raise NarbuildError(f"unknown method {method!r}", f"use one of {', '.join(METHODS)}")
