"""torchaudio: the model builders of ``torchaudio.models`` (PyTorch), without weights.

One row per published builder (``wav2vec2_base`` ... ``wav2vec2_xlsr_2b``, ``hubert_*``,
``wavlm_*``, ``conv_tasnet_base``, ``hdemucs_low/medium/high``, ``emformer_rnnt_base``,
``squim_objective_base``, ``squim_subjective_base``) and one per model class that has no
builder, built with the values of its bundle in ``torchaudio.pipelines`` (``Tacotron2``,
``WaveRNN``) or of its docstring's example (``Conformer``, ``Emformer``), or its defaults
(``Wav2Letter``; ``DeepSpeech`` with 161 spectrogram features). The values are in :data:`ROWS`.
The wav2vec 2.0 family is the encoder without an ASR head (``aux_num_out=None``); the
HuBERT pre-training models (``hubert_pretrain_*``) are left out: they are ``hubert_*`` plus a
training-only projection whose forward needs frame labels.

Inputs: one second of audio (16 kHz mono; 44.1 kHz stereo for HDemucs), 100 frames of
features for the feature models, 50 tokens for Tacotron2 (teacher-forced with 100 mel
frames), two hops (550 samples) for WaveRNN, whose graph grows with every sample. The family is the design (``wav2vec2``, ``hubert``, ``wavlm``, ``conv_tasnet``,
``hdemucs``, ``emformer_rnnt``...).

Install: torchaudio 2.11.1 declares ``torch>=2.11`` and installs beside torch 2.14.1
(``pip install 'narbuild[torchaudio]'``); its models are pure PyTorch.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from narbuild.crawler.base import manifest_row
from narbuild.errors import NarbuildError
from narbuild.sources.base import Built, Source, kwargs_of

SOURCE = Source(
    name="torchaudio", title="torchaudio model builders (torchaudio.models)",
    package="torchaudio", offline=True, license="BSD-2-Clause", extra="torchaudio",
    family="the design the builder makes (wav2vec2, hubert, wavlm, conv_tasnet, hdemucs, ...)")

SAMPLE_RATE, MUSIC_RATE, FRAMES, TOKENS = 16_000, 44_100, 100, 50
_MUSDB = ["drums", "bass", "other", "vocals"]

# name -> (builder in torchaudio.models, kwargs, inputs kind, task, family)
ROWS: dict[str, tuple[str, dict[str, Any], str, str, str]] = {
    **{n: (n, {}, "waveform", "feature-extraction", n.split("_")[0]) for n in (
        "wav2vec2_base", "wav2vec2_large", "wav2vec2_large_lv60k", "wav2vec2_xlsr_300m",
        "wav2vec2_xlsr_1b", "wav2vec2_xlsr_2b", "hubert_base", "hubert_large", "hubert_xlarge",
        "wavlm_base", "wavlm_large")},
    "conv_tasnet_base": ("conv_tasnet_base", {"num_sources": 2}, "waveform-channel",
                         "audio-source-separation", "conv_tasnet"),
    # HDEMUCS_HIGH_MUSDB(_PLUS): the four MUSDB18 stems
    **{n: (n, {"sources": _MUSDB}, "music", "audio-source-separation", "hdemucs")
       for n in ("hdemucs_low", "hdemucs_medium", "hdemucs_high")},
    # EMFORMER_RNNT_BASE_LIBRISPEECH: 4,097 symbols (4,096 sentencepiece tokens and blank)
    "emformer_rnnt_base": ("emformer_rnnt_base", {"num_symbols": 4097}, "rnnt",
                           "automatic-speech-recognition", "emformer_rnnt"),
    "squim_objective_base": ("squim_objective_base", {}, "waveform", "audio-quality-assessment",
                             "squim"),
    "squim_subjective_base": ("squim_subjective_base", {}, "waveform-reference",
                              "audio-quality-assessment", "squim"),
    # TACOTRON2_WAVERNN_CHAR_LJSPEECH's models: Tacotron2's defaults, WaveRNN's bundle values
    "Tacotron2": ("Tacotron2", {}, "tacotron2", "text-to-speech", "tacotron2"),
    "WaveRNN": ("WaveRNN", {"upsample_scales": [5, 5, 11], "n_classes": 256, "hop_length": 275,
                            "n_freq": 80}, "wavernn", "text-to-speech", "wavernn"),
    "Wav2Letter": ("Wav2Letter", {}, "waveform-channel", "automatic-speech-recognition", "wav2letter"),
    "DeepSpeech": ("DeepSpeech", {"n_feature": 161}, "spectrogram", "automatic-speech-recognition", "deepspeech"),
    # the classes' docstring examples
    "Conformer": ("Conformer", {"input_dim": 80, "num_heads": 4, "ffn_dim": 128, "num_layers": 4,
                                "depthwise_conv_kernel_size": 31}, "features",
                  "feature-extraction", "conformer"),
    "Emformer": ("Emformer", {"input_dim": 512, "num_heads": 8, "ffn_dim": 2048,
                              "num_layers": 20, "segment_length": 4,
                              "right_context_length": 1}, "features", "feature-extraction",
                 "emformer"),
}


def names() -> list[str]:
    return list(ROWS)


def iter_rows(names: list[str] | None = None) -> Iterator[dict[str, Any]]:
    """One manifest row per builder or class of :data:`ROWS` (all, or ``names``)."""
    import importlib.metadata

    version = importlib.metadata.version("torchaudio")
    for name in names if names is not None else ROWS:
        builder, kwargs, inputs, task, family = ROWS[name]
        yield manifest_row("torchaudio", name,
                           {"builder": builder, "kwargs": kwargs, "inputs": inputs},
                           task=task, library="torchaudio", module=family,
                           metadata={"torchaudio": version})


def build(config: dict[str, Any], step: str) -> Built:
    """The builder's model and the inputs of its kind."""
    import torchaudio.models

    builder = getattr(torchaudio.models, config["builder"], None)
    if builder is None:
        raise NarbuildError(f"torchaudio has no model builder {config['builder']!r}",
                            "upgrade torchaudio or re-crawl")
    kwargs = kwargs_of(config)
    model = builder(**kwargs)
    return Built(model, example_inputs(config["inputs"], kwargs, model))


def example_inputs(kind: str, kwargs: dict[str, Any], model: Any) -> tuple:
    import torch

    def audio(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, requires_grad=True)

    if kind == "waveform":
        return (audio(1, SAMPLE_RATE),)
    if kind == "waveform-channel":
        return (audio(1, 1, SAMPLE_RATE),)
    if kind == "waveform-reference":
        return (audio(1, SAMPLE_RATE), audio(1, SAMPLE_RATE))
    if kind == "music":
        return (audio(1, 2, MUSIC_RATE),)
    if kind == "spectrogram":  # (batch, channel, time, feature)
        return (audio(1, 1, FRAMES, kwargs["n_feature"]),)
    if kind == "features":  # (batch, time + right context, feature), valid lengths
        right = kwargs.get("right_context_length", 0)
        return (audio(1, FRAMES + right, kwargs["input_dim"]), torch.tensor([FRAMES]))
    if kind == "rnnt":  # 80 log-mel features, and the target tokens (teacher forcing)
        return (audio(1, FRAMES, 80), torch.tensor([FRAMES]),
                torch.randint(0, 4096, (1, TOKENS // 5)), torch.tensor([TOKENS // 5]))
    if kind == "tacotron2":
        return (torch.randint(0, 148, (1, TOKENS)), torch.tensor([TOKENS]),
                audio(1, 80, FRAMES), torch.tensor([FRAMES]))
    if kind == "wavernn":  # waveform of (frames - kernel_size + 1) * hop_length samples
        frames = model.kernel_size + 1  # its GRU runs once per sample: two hops, 550 samples
        samples = (frames - model.kernel_size + 1) * kwargs["hop_length"]
        return (audio(1, 1, samples), audio(1, 1, kwargs["n_freq"], frames))
    raise NarbuildError(f"unknown torchaudio input kind {kind!r}", "re-crawl")
