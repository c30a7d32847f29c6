"""Fallback ladder coverage: the failure classes that used to leave error rows now trace."""

from __future__ import annotations

import json
import time

import pytest
import torch

from narbuild.sources import lookup
from narbuild.tracing.build import build
from narbuild.tracing.core import trace_module
from narbuild.tracing.devices import cheap_init
from narbuild.tracing.inputs import image_token_count, tokens, with_image_tokens
from narbuild.tracing.ladder import CPU_BF16_PARAM_BUDGET, LADDER, trace_manifest_row


def test_ladder_steps_are_named_and_unique():
    names = [step.name for step in LADDER]
    assert all(step.doc and callable(step.applies) for step in LADDER)
    assert len(names) == len(set(names))
    assert names[0] == "meta" and {"meta-init", "cpu", "text-only"} <= set(names)


def test_regnet_builds_on_cpu_with_weights_on_meta():
    """RegNet's builder computes widths with tensor ops, which the meta device cannot answer."""
    row = trace_manifest_row(lookup("torchvision:regnet_x_400mf"))
    assert row["status"] == "ok", row["error"]
    assert row["fallback"] == "meta-init" and row["device"] == "meta"
    reference = lookup("torchvision:regnet_x_400mf")["metadata"]
    reference = json.loads(reference) if isinstance(reference, str) else reference
    assert row["params"] == reference["reference"]["num_params"]


def test_encoder_traces_on_meta_without_mask_value_checks():
    """transformers' mask shortcuts look at values (``padding_mask.all()``); no longer a
    reason to fall back to real tensors."""
    row = trace_manifest_row(lookup("transformers:roberta/ForSequenceClassification"))
    assert row["status"] == "ok", row["error"]
    assert row["fallback"] == "meta"


def test_vision_language_model_traces_with_its_image_tokens():
    row = lookup("transformers:llava/ForConditionalGeneration")
    built = build("transformers", json.loads(row["config"]), device="meta")
    config = built.model.config
    count = image_token_count(config)
    assert count == config.image_seq_length == 576
    assert built.inputs["input_ids"].shape == (1, 32 + count) and "pixel_values" in built.inputs
    ids = with_image_tokens(config, tokens(config, 32))  # the same ids, on the CPU
    assert int((ids == config.image_token_id).sum()) == count
    traced = trace_manifest_row(row)
    assert traced["status"] == "ok", traced["error"]
    assert traced["fallback"] == "meta"
    assert "MaskedScatterBackward0" in traced["nodes"]  # image features reach the language model
    assert any(op.startswith("ConvolutionBackward") for op in traced["nodes"])  # vision tower


def test_multiple_choice_heads_get_choices():
    row = trace_manifest_row(lookup("transformers:roberta/ForMultipleChoice"))
    assert row["status"] == "ok", row["error"]
    assert json.loads(row["inputs"])["input_ids"]["shape"] == [1, 2, 32]


def test_audio_model_traces():
    row = trace_manifest_row(lookup("transformers:whisper/ForConditionalGeneration"))
    assert row["status"] == "ok", row["error"]
    assert row["fallback"] == "meta"
    assert "input_features" in json.loads(row["inputs"])


def test_cheap_init_draws_no_random_weights():
    with cheap_init():
        start = time.perf_counter()
        lin = torch.nn.Linear(64, 64)
        torch.nn.init.trunc_normal_(lin.weight, std=0.02)
        norm = torch.nn.LayerNorm(64)
        x = torch.randn(3)  # factories (used for example inputs) still draw
    assert time.perf_counter() - start < 1
    assert torch.all(lin.weight == 0) and torch.all(lin.bias == 0)
    assert torch.all(norm.weight == 1)
    assert x.abs().sum() > 0


def test_unbuildable_row_gives_a_readable_error_row():
    row = {"model_id": "transformers:bert/NoSuchHead", "config_hash": "h", "source": "transformers",
           "config": json.dumps({"model_type": "bert", "class": "BertForNoSuchHead", "config": {}})}
    out = trace_manifest_row(row)
    assert out["status"] == "error"
    assert "no class BertForNoSuchHead" in out["error"]
    assert out["fallback"] == "meta"


def test_model_without_known_inputs_says_which_arguments_it_takes():
    row = trace_manifest_row(lookup("transformers:sam2_video"))
    assert row["status"] == "error"
    assert "cannot infer inputs" in row["error"] and "frame" in row["error"]


@pytest.mark.parametrize("model_id, input_name, shape", [
    # forecasters: context (+ largest lag for GluonTS-style models), per-series channels
    ("transformers:patchtst/ForClassification", "past_values", [1, 32, 1]),
    ("transformers:informer/Model", "past_values", [1, 31]),
    ("transformers:timesfm/Model", "past_values", [1, 512]),
    # video models: (batch, frames, channels, H, W), frames from the config
    ("transformers:timesformer/Model", "pixel_values", [1, 8, 3, 224, 224]),
    ("transformers:videoprism_vision_model/Model", "pixel_values_videos", [1, 16, 3, 288, 288]),
    # keypoint matchers take an image pair
    ("transformers:efficientloftr/Model", "pixel_values", [1, 2, 3, 224, 224]),
    # companions of text: region features, word boxes, a Q-Former instruction
    ("transformers:lxmert/Model", "visual_feats", [1, 8, 2048]),
    ("transformers:bros/Model", "bbox", [1, 32, 4]),
    # native-resolution patches with their grid (SigLIP 2); DepthPro's smallest scale is a patch
    ("transformers:siglip2_vision_model/Model", "pixel_values", [1, 256, 768]),
    ("transformers:depth_pro/Model", "pixel_values", [1, 3, 1536, 1536]),
    # a wrapped timm tower's input size comes from timm's registry (vit_pe_core_..._336)
    ("transformers:pe_video_encoder/PeVideoEncoder", "pixel_values_videos", [1, 8, 3, 336, 336]),
    # a composite config's class built from its own sub-config (as AutoModel.from_config does)
    ("transformers:mllama/TextModel", "input_ids", [1, 32]),
    # Pix2Struct's patches, each led by its (row, column)
    ("transformers:pix2struct/Pix2StructForConditionalGeneration", "flattened_patches",
     [1, 256, 770]),
    # rotary parameters keyed by layer type but left empty: the default RoPE per type
    ("transformers:cohere_compass_text/Model", "input_ids", [1, 32]),
    # a config without num_key_value_heads: no grouping
    ("transformers:moonshine_streaming/Model", "input_values", [1, 16000]),
])
def test_inputs_for_more_modalities(model_id, input_name, shape):
    row = trace_manifest_row(lookup(model_id))
    assert row["status"] == "ok", row["error"]
    assert json.loads(row["inputs"])[input_name]["shape"] == shape


@pytest.mark.parametrize("model_id, input_name, shape", [
    ("transformers:dac/Model", "input_values", [1, 1, 16000]),  # a waveform with a channel axis
    ("transformers:audio-spectrogram-transformer/Model", "input_values", [1, 1024, 128]),
    ("transformers:musicgen/Model", "input_ids", [4, 32]),  # one row per codebook
    # one id per stream: Kyutai's text stream beside its 32 audio codebooks
    ("transformers:kyutai_speech_to_text/Model", "input_ids", [1, 32, 33]),
])
def test_other_input_layouts_are_tried_on_a_shape_mismatch(model_id, input_name, shape):
    row = trace_manifest_row(lookup(model_id))
    assert row["status"] == "ok", row["error"]
    assert row["fallback"] == "alt-inputs"
    assert json.loads(row["inputs"])[input_name]["shape"] == shape


def test_patch_grids_stay_on_the_cpu_for_models_on_meta():
    """Qwen-VL-style models read their patch grid back as numbers (``grid_thw.tolist()``)."""
    row = trace_manifest_row(lookup("transformers:glm4v_vision/Model"))
    assert row["status"] == "ok", row["error"]
    assert row["fallback"] == "meta" and row["device"] == "meta"
    vlm = trace_manifest_row(lookup("transformers:qwen2_vl/ForConditionalGeneration"))
    assert vlm["status"] == "ok", vlm["error"]
    assert vlm["fallback"] == "meta"  # the whole model, vision tower included (not text-only)
    assert {"pixel_values", "image_grid_thw", "mm_token_type_ids"} <= set(json.loads(vlm["inputs"]))


def test_value_selections_over_the_cpu_budget_trace_with_every_selection_taken():
    row = trace_manifest_row(lookup("transformers:superglue/SuperGlueForKeypointMatching"))
    assert row["status"] == "ok", row["error"]
    assert row["fallback"] == "meta-nonzero"
    assert row["flops"] is None and row["macs"] is None  # every selection taken: not a measurement
    assert row["num_nodes"] > 1000


def test_models_over_the_cpu_budget_that_need_values_run_on_shared_zero_weights():
    """A 1.4B-parameter mixture of experts routes by value; every weight is one broadcast zero,
    so it runs on real CPU tensors in a few MB, with measured FLOPs."""
    row = trace_manifest_row(lookup("transformers:openai_privacy_filter/Model"))
    assert row["status"] == "ok", row["error"]
    assert row["fallback"] == "shared-weights" and row["device"] == "cpu"
    assert row["params"] > CPU_BF16_PARAM_BUDGET and row["flops"] > 0


def test_shared_zero_weights_take_no_memory_keep_ties_and_the_graph():
    config = json.loads(lookup("transformers:gpt2/LMHeadModel")["config"])
    shared = build("transformers", config, device="cpu", step="shared-weights")
    params = list(shared.model.parameters())
    assert all(p.untyped_storage().nbytes() <= 4 for p in params)
    assert shared.model.lm_head.weight is shared.model.transformer.wte.weight  # still tied
    real = build("transformers", config, device="cpu")
    assert sum(p.numel() for p in params) == sum(p.numel() for p in real.model.parameters())
    graphs = [trace_module(b.model, b.inputs).graph.graph_hash() for b in (shared, real)]
    assert graphs[0] == graphs[1]


def test_audio_as_long_as_the_text_for_models_that_add_them_position_by_position():
    row = trace_manifest_row(lookup("transformers:voxtral_realtime/Model"))
    assert row["status"] == "ok", row["error"]
    assert row["fallback"] == "alt-inputs"
    assert json.loads(row["inputs"])["input_features"]["shape"] == [1, 128, 256]


def test_image_placeholder_id_left_none_gets_the_last_text_id():
    """BLIP-2's default config leaves ``image_token_index`` None (its tokenizer adds it)."""
    row = lookup("transformers:blip-2/ForConditionalGeneration")
    built = build("transformers", json.loads(row["config"]), device="meta")
    config = built.model.config
    assert config.image_token_index == config.text_config.vocab_size - 1
    ids = with_image_tokens(config, tokens(config, 32))  # the same ids, on the CPU
    assert int((ids == config.image_token_index).sum()) == config.num_query_tokens
    traced = trace_manifest_row(row)
    assert traced["status"] == "ok" and traced["fallback"] == "meta", traced["error"]
    assert "MaskedScatterBackward0" in traced["nodes"]  # the Q-Former's queries reach the LM


def test_multimodal_model_with_an_incomplete_vision_config_traces_its_language_model():
    """Perception LM's default vision config cannot build its projector; its language model
    (LLaMA) can, and the row says so."""
    row = trace_manifest_row(lookup("transformers:perception_lm/ForConditionalGeneration"))
    assert row["status"] == "ok", row["error"]
    assert row["fallback"] == "text-model"
    assert set(json.loads(row["inputs"])) <= {"input_ids", "use_cache"}
    vision_only = trace_manifest_row(lookup("transformers:mllama/VisionModel"))
    assert vision_only["fallback"] != "text-model"  # a vision tower is never its text model


@pytest.mark.parametrize("model_id", [
    "transformers:eomt/EomtForUniversalSegmentation",  # reads a buffer: attn_mask_probs[i] > 0
    "transformers:sam3/Model",  # torch.tensor(spatial_shapes) read back into torch.arange
])
def test_models_that_read_constants_run_on_meta_with_real_constants(model_id):
    """Buffers and tensors made from Python numbers stay real on the CPU; parameters and
    activations stay on meta, so these large models trace at meta's cost, not on the CPU."""
    row = trace_manifest_row(lookup(model_id))
    assert row["status"] == "ok", row["error"]
    assert row["fallback"] == "meta-constants" and row["device"] == "meta"
    assert row["flops"] > 0 and row["params"] > 100_000_000


def test_real_constants_match_the_cpu_graph():
    """What meta-constants traces is what real CPU tensors trace: Deformable DETR puts its
    feature-map sizes in a tensor and reads them back."""
    from narbuild.tracing.devices import literals_on_host

    row = lookup("transformers:deformable_detr/Model")
    config = json.loads(row["config"])
    cpu = build("transformers", config, device="cpu")
    meta = build("transformers", config, device="meta", step="meta-constants")
    with literals_on_host():
        on_meta = trace_module(meta.model, meta.inputs)
    on_cpu = trace_module(cpu.model, cpu.inputs)
    assert on_meta.device == "meta"
    assert on_meta.graph.graph_hash() == on_cpu.graph.graph_hash()
    assert on_meta.flops == on_cpu.flops


def test_multimodal_rope_sections_fit_a_default_config_without_a_rotary_fraction():
    """GLM-4V's default config has no partial_rotary_factor while its code's M-RoPE sections
    ([8, 12, 12]) cover half of a 128-wide head: the rotary width becomes 2 x 32 = 64."""
    row = lookup("transformers:glm4v_text/Model")
    built = build("transformers", json.loads(row["config"]), device="meta")
    rotary = next(m for m in built.model.modules() if hasattr(m, "mrope_section"))
    assert sum(rotary.mrope_section) == rotary.inv_freq.shape[-1] == 32
    assert built.model.config.rope_parameters["partial_rotary_factor"] == 0.5
    traced = trace_manifest_row(row)
    assert traced["status"] == "ok", traced["error"]
    assert traced["fallback"] == "meta" and traced["flops"] > 0


@pytest.mark.parametrize("model_id, fallback", [
    # a required value left None: the config's documented example (EsmConfig(vocab_size=33),
    # TimmBackboneConfig("resnet50")) or its base model type's (wav2vec2's CTC vocabulary)
    ("transformers:esm/ForMaskedLM", "meta"),
    ("transformers:timm_backbone/TimmBackbone", "meta"),
    ("transformers:wav2vec2-conformer/ForCTC", "meta"),
    # what the constructor's error prescribes: is_decoder=True, encoder-only, [3, 5, 7, 11]
    ("transformers:reformer/ModelWithLMHead", "meta-constants"),
    ("transformers:t5gemma/EncoderModel", "meta"),
    ("transformers:beit/ForSemanticSegmentation", "meta"),
    # an attribute the config class lacks: a dropout rate (identity in eval mode)
    ("transformers:t5gemma2_encoder/T5Gemma2Encoder", "text-only"),
    # per-layer types from the base type (lfm2): expert sizes, transformers' MoE defaults
    ("transformers:lfm2_moe/Model", "meta-bf16"),
    ("transformers:dots1/Model", "meta-bf16"),
    # a tokenizer's vocabulary map left None: the image placeholder alone; the text runs
    ("transformers:chameleon/Model", "text-only"),
])
def test_constructor_failures_get_the_repair_they_name(model_id, fallback):
    row = trace_manifest_row(lookup(model_id))
    assert row["status"] == "ok", row["error"]
    assert row["fallback"] == fallback


def test_repairs_leave_a_config_that_builds_alone():
    """A repair runs only when the constructor failed: an ESM config with a vocabulary keeps
    its padding id None."""
    from transformers import EsmConfig, EsmModel

    from narbuild.tracing.hf_fixups import construct

    config = json.loads(lookup("transformers:esm/Model")["config"])["config"]
    hf_config = EsmConfig.from_dict({**config, "vocab_size": 40})
    with torch.device("meta"):
        construct(EsmModel, hf_config)
    assert hf_config.vocab_size == 40 and hf_config.pad_token_id is None


def test_moe_routing_left_none_gets_transformers_default_top_k():
    """DeepSeek-V2's default config names 64 experts but no top-k, and its expert width (1407)
    is not 16-byte aligned for grouped matmul: top-8 routing on the batched_mm experts."""
    row = lookup("transformers:deepseek_v2/Model")
    built = build("transformers", json.loads(row["config"]), device="meta", dtype=torch.bfloat16)
    assert built.model.config.num_experts_per_tok == 8
    assert built.model.config._experts_implementation == "batched_mm"
    traced = trace_manifest_row(row)
    assert traced["status"] == "ok" and traced["fallback"] == "meta-bf16", traced["error"]


@pytest.mark.parametrize("model_id", [
    "transformers:glm4v_moe_text/Model",  # M-RoPE sections fix a head_dim the config leaves out
    "transformers:hunyuan_vl_text/Model",  # no sections at all: one, plain RoPE
])
def test_multimodal_rope_without_its_head_width_or_sections(model_id):
    row = trace_manifest_row(lookup(model_id))
    assert row["status"] == "ok", row["error"]
    assert row["fallback"] in ("meta", "meta-bf16")


def test_misspelled_sub_config_default_is_applied():
    """EdgeTAM declares its timm backbone as ``archirecture: repvit_m1``."""
    row = lookup("transformers:edgetam_vision_model/Model")
    built = build("transformers", json.loads(row["config"]), device="meta")
    assert built.model.config.backbone_config.architecture == "repvit_m1"
    traced = trace_manifest_row(row)
    assert traced["status"] == "ok" and traced["fallback"] == "meta", traced["error"]


@pytest.mark.parametrize("model_id, input_name, shape", [
    # required arguments, shaped as the forward's docstring documents them
    ("transformers:mimi_decoder/Model", "latents", [1, 512, 32]),
    ("transformers:decision_transformer/Model", "states", [1, 32, 17]),
    ("transformers:nemotron3_5_transcribe_word_timestamp/Model", "inputs_embeds", [1, 32, 1280]),
    ("transformers:muse_glimmer_assistant/Model", "context_hidden_states", [1, 32, 33280]),
    # undocumented: what the first layer takes (a waveform, latents, d_model-wide vectors)
    ("transformers:vibevoice_acoustic_tokenizer_encoder/Model", "hidden_states", [1, 1, 16000]),
    ("transformers:vibevoice_acoustic_tokenizer_decoder/Model", "hidden_states", [1, 64, 32]),
    ("transformers:perceiver/Model", "inputs", [1, 32, 768]),
])
def test_required_arguments_from_the_forward_documentation(model_id, input_name, shape):
    row = trace_manifest_row(lookup(model_id))
    assert row["status"] == "ok", row["error"]
    assert json.loads(row["inputs"])[input_name]["shape"] == shape


@pytest.mark.parametrize("model_id, input_name, shape", [
    ("transformers:sam2/Model", "pixel_values", [1, 3, 1024, 1024]),  # a deeper sub-config's size
    ("transformers:rf_detr/Model", "pixel_values", [1, 3, 560, 560]),  # 4 windows of 14-px patches
    ("transformers:kimi_k25_vision/Model", "pixel_values", [64, 3, 14, 14]),  # patches as images
    ("transformers:muse_spark_vision/Model", "pixel_values", [256, 1176]),  # the first layer's width
    ("transformers:xcodec/Model", "input_values", [1, 1, 16000]),  # "Audio must be mono"
    ("transformers:audioflamingo3_encoder/AudioFlamingo3Encoder", "input_features_mask", [1, 3000]),
    ("transformers:neucodec/Model", "input_features", [1, 128, 160]),  # a nested feature width
    ("transformers:granite_speech5_encoder/GraniteSpeech5Encoder", "input_features", [1, 128, 320]),
    ("transformers:dia/Model", "decoder_input_ids", [1, 16, 9]),  # one id per decoder channel
    ("transformers:blip/ForQuestionAnswering", "decoder_input_ids", [1, 16]),  # optional, read
    ("transformers:speech-encoder-decoder/SpeechEncoderDecoderModel", "input_values", [1, 16000]),
])
def test_more_layouts_are_tried_when_the_inferred_ones_do_not_fit(model_id, input_name, shape):
    row = trace_manifest_row(lookup(model_id))
    assert row["status"] == "ok", row["error"]
    assert row["fallback"] == "alt-inputs"
    assert json.loads(row["inputs"])[input_name]["shape"] == shape


@pytest.mark.slow
def test_sparse_attention_indexer_sizes_left_none_get_transformers_defaults():
    row = trace_manifest_row(lookup("transformers:qwen4_exp_text/Model"))
    assert row["status"] == "ok", row["error"]


PROBING_CONSTRUCTOR = '''
import torch


class Probed(torch.nn.Module):
    """Its constructor reads a number off a layer's weights (as tsai's random-kernel transforms
    read the kernels they drew): neither meta step can build it."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv1d(1, 4, 5)
        offset = int(self.conv.weight.new_zeros(()).item())
        self.head = torch.nn.Linear(4 * 60 + offset, 3)

    def forward(self, x):
        return self.head(self.conv(x).flatten(1))


def build():
    return Probed()


def example_inputs():
    return (torch.randn(1, 1, 64, requires_grad=True),)
'''


def test_a_constructor_that_reads_values_is_built_on_the_cpu(tmp_path):
    from narbuild.crawler.base import manifest_row

    (tmp_path / "probed.py").write_text(PROBING_CONSTRUCTOR)
    row = trace_manifest_row(manifest_row(
        "file", "probed.build", {"path": str(tmp_path / "probed.py"), "factory": "build"}))
    assert row["status"] == "ok", row["error"]
    assert row["fallback"] == "cpu" and row["device"] == "cpu"
    assert row["params"] == 4 * 5 + 4 + (4 * 60 + 1) * 3
