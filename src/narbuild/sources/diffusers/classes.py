"""diffusers per-class settings (:data:`_CLASSES`): the classes whose inputs need a layout,
sizes, arguments or a setup of their own, each a line or two, with the functions they use.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from narbuild.errors import NarbuildError
from narbuild.sources.diffusers.makers import (
    LENGTH,
    SAMPLES,
    SIZE,
    TEXT,
    _arange,
    _controlnet_cond,
    _Ctx,
    _full,
    _ids,
    _latent,
    _list,
    _ones,
    _pooled,
    _rand,
    _randn,
    _text,
    _text_of,
    _timestep,
    _torch,
    _value,
    _zeros,
)


def _visual_cond(c: _Ctx) -> int:
    """Kandinsky 5/6 latents: the latent, plus a conditioning latent and its mask when the
    model takes visual conditioning."""
    dim = int(c.get("in_visual_dim"))
    return 2 * dim + 1 if c.get("visual_cond", default=True) else dim


def _rope_grid(c: _Ctx) -> Any:
    torch = _torch()
    return [torch.arange(c.frames), torch.arange(c.size // 2), torch.arange(c.size // 2)]


def _hunyuan_dit_rope(c: _Ctx) -> Any:
    from diffusers.models.embeddings import get_2d_rotary_pos_embed

    grid = c.size // int(c.get("patch_size"))
    head = int(c.get("hidden_size")) // int(c.get("num_attention_heads"))
    return get_2d_rotary_pos_embed(head, ((0, 0), (grid, grid)), (grid, grid), use_real=True)


def _lumina_rope(c: _Ctx) -> Any:
    from diffusers.models.embeddings import get_2d_rotary_pos_embed_lumina

    head = int(c.get("hidden_size")) // int(c.get("num_attention_heads"))
    return get_2d_rotary_pos_embed_lumina(head, 384, 384)


def _stable_audio_rope(c: _Ctx) -> Any:
    from diffusers.models.embeddings import get_1d_rotary_pos_embed

    return get_1d_rotary_pos_embed(int(c.get("attention_head_dim")) // 2, c.length + 1,
                                   use_real=True, repeat_interleave_real=False)


def _sana_wm_rope(c: _Ctx) -> Any:
    return c.model.build_rotary_emb_for_absolute_positions(
        1, list(range(c.frames)), c.size, c.size, _torch().device("cpu"), 24.0)


def _krea2_positions(c: _Ctx) -> Any:
    """(text + image tokens, 3): text at zero, image tokens at their (row, column)."""
    ids = _ids(c, c.text + c.tokens, grid=False)
    ids[c.text:] = _ids(c, c.tokens, grid=True)
    return ids


def _image_slots(c: _Ctx) -> Any:
    """Qwen-Image 2.1's vision-language sequence: the text, then one slot per 2 x 2 latent
    tokens of the target image."""
    torch = _torch()
    return torch.cat([torch.zeros(1, c.text), torch.ones(1, c.tokens // 4)], dim=1).bool()


def _ideogram4(c: _Ctx) -> dict[str, Any]:
    """One sequence of text tokens then image tokens, told apart by ``indicator``."""
    from diffusers.models.transformers import transformer_ideogram4 as m

    torch, t, n = _torch(), c.text, c.text + c.tokens
    side = c.size // 2
    positions = torch.zeros(1, n, 3, dtype=torch.long)
    positions[0, :t] = torch.arange(t)[:, None]
    positions[0, t:, 0] = m.IMAGE_POSITION_OFFSET
    positions[0, t:, 1] = torch.arange(c.tokens) // side + m.IMAGE_POSITION_OFFSET
    positions[0, t:, 2] = torch.arange(c.tokens) % side + m.IMAGE_POSITION_OFFSET
    indicator = torch.full((1, n), m.OUTPUT_IMAGE_INDICATOR, dtype=torch.long)
    indicator[0, :t] = m.LLM_TOKEN_INDICATOR
    return {"hidden_states": _randn(1, n, c.channels), "timestep": torch.tensor([0.5]),
            "encoder_hidden_states": _randn(1, n, int(c.get("llm_features_dim"))),
            "position_ids": positions, "segment_ids": torch.ones(1, n, dtype=torch.long),
            "indicator": indicator}


def _minimax_h3(c: _Ctx) -> dict[str, Any]:
    """One packed sequence of text, audio and video rows, tagged by modality (0 video, 1 text,
    2 audio), as MiniMax-H3's pipelines pack it."""
    torch, side, t = _torch(), c.size // 2, c.text
    audio, video = c.length, c.frames * side * side
    n = t + audio + video
    tags = torch.cat([torch.ones(t), torch.full((audio,), 2), torch.zeros(video)]).long()
    positions = torch.zeros(n, 3)
    positions[:, 0] = torch.arange(n)
    grid = torch.arange(video)
    positions[t + audio:, 1], positions[t + audio:, 2] = grid // side, grid % side
    pt, ph, pw = c.config["patch_size"]
    return {"hidden_states": _randn(1, video, c.channels * pt * ph * pw),
            "audio_hidden_states": _randn(1, audio, c.dim("audio_in_channels")),
            "encoder_hidden_states": _randn(1, t, c.dim("text_dim")),
            "timestep": torch.tensor([0.7, 0.3]), "timestep_indices": (tags == 2).long(),
            "token_tags": tags, "position_ids": positions, "text_indices": torch.arange(t),
            "audio_indices": torch.arange(t, t + audio),
            "video_indices": torch.arange(t + audio, n)}


def _cosmos3(c: _Ctx) -> dict[str, Any]:
    """Two text tokens then one latent frame's vision tokens, in one sequence."""
    torch = _torch()
    side = c.size // int(c.get("latent_patch_size"))
    vision = side * side
    n = 2 + vision
    indexes = torch.arange(2, n)
    return {"input_ids": torch.tensor([1, 2]), "text_indexes": torch.tensor([0, 1]),
            "position_ids": torch.zeros(3, n, dtype=torch.long), "und_len": 2,
            "sequence_length": n,
            "vision_tokens": [_randn(1, int(c.get("latent_channel")), 1, c.size, c.size)],
            "vision_token_shapes": [(1, side, side)], "vision_sequence_indexes": indexes,
            "vision_mse_loss_indexes": indexes, "vision_timesteps": torch.ones(vision),
            "vision_noisy_frame_indexes": [torch.tensor([0])]}


def _joyimage_plus(c: _Ctx) -> dict[str, Any]:
    """One image's patches, each patch a (channels, t, h, w) block, and its token grid."""
    pt, ph, pw = c.config["patch_size"]
    side = c.size // ph
    return {"hidden_states": _randn(1, side * side, c.channels, pt, ph, pw),
            "timestep": _timestep(c), "encoder_hidden_states": _text(c),
            "shape_list": [[(1, side, side)]]}


def _wan_animate2(c: _Ctx) -> dict[str, Any]:
    """The reference pass (``kv_cache_mode="extract"``) the pipeline runs first: per-sample
    latents and conditions as lists, and a fresh cache to fill."""
    from diffusers.models.transformers.transformer_wan_animate_2 import WanAnimate2KVCache

    torch, s, f = _torch(), c.size, c.frames
    return {"hidden_states": [_randn(int(c.get("out_dim")), f, s, s)], "timestep": _timestep(c),
            "encoder_hidden_states": [_randn(c.text, c.dim("text_dim"))],
            "condition_latents": [_randn(int(c.get("in_dim")) - int(c.get("out_dim")), f, s, s)],
            "encoder_hidden_states_image": _randn(1, 257, 1280),
            "kv_cache": WanAnimate2KVCache(int(c.get("num_layers"))), "kv_cache_mode": "extract",
            "seq_len": f * (s // 2) ** 2,
            "offset_grid_sizes": torch.tensor([[f, s // 2, s // 2]], device="cpu")}


def _z_image(c: _Ctx) -> dict[str, Any]:
    inputs = {"x": [_randn(c.channels, 1, c.size, c.size)], "t": _torch().tensor([0.5]),
              "cap_feats": [_randn(c.text, c.model.cap_embedder[-1].in_features)]}
    if "control_context" in c.made:
        inputs["control_context"] = c.made["control_context"]
    return inputs


def _needs(what: str) -> Callable[[_Ctx], dict[str, Any]]:
    """Inputs this source cannot make: a clear error instead."""
    def fail(c: _Ctx) -> dict[str, Any]:
        raise NarbuildError(f"{type(c.model).__name__}.forward needs {what}",
                            "not traceable from diffusers alone")
    return fail


def _from_transformer(transformer: str) -> Callable[[Any], Any]:
    """A ControlNet that shares its embedders with the transformer it controls, built the
    documented way (``cls.from_transformer``) from that transformer's defaults."""
    def attach(model: Any) -> Any:
        model = type(model).from_transformer(model, getattr(importlib.import_module("diffusers"), transformer).from_config({}))
        model.gradient_checkpointing = False  # set by the transformer's __init__, not its own
        return model
    return attach


def _enable_tiling(model: Any) -> Any:
    model.enable_tiling()
    return model


_SDXL_ADDED = {"added_cond_kwargs": lambda c: {  # pooled text, and size, crop and target size
    "text_embeds": _randn(1, 1280), "time_ids": _torch().tensor([[256.0] * 4 + [0.0] * 2])}}
_SIZES = {"original_size": _full(256.0, 1, 2), "target_size": _full(256.0, 1, 2),
          "crop_coords": _zeros(1, 2, dtype="float")}
_HUNYUAN_DIT = {  # CLIP and T5 text at the lengths the model's poolers are sized for
    "encoder_hidden_states": _text_of("cross_attention_dim", tokens="text_len"),
    "text_embedding_mask": _ones(1, "text_len"),
    "encoder_hidden_states_t5": _text_of("cross_attention_dim_t5", tokens="text_len_t5"),
    "text_embedding_mask_t5": _ones(1, "text_len_t5"),
    "image_meta_size": lambda c: _torch().tensor([[1024.0, 1024.0, 256.0, 256.0, 0.0, 0.0]]),
    "style": _zeros(1), "image_rotary_emb": _hunyuan_dit_rope}


def _rfd4_conditioning(c: _Ctx) -> dict[str, Any]:
    """A protein's annotations as RFdiffusion's preprocessor emits them: no token given as
    in-context conditioning, every token with a local latent, and no atom-level interaction
    (hydrogen bonds, stacking, salt bridges ...) annotated."""
    torch = _torch()
    atoms = {f"condition_{name}_1_atom": torch.zeros(1, c.length, 37, dtype=torch.long)
             for name in ("hbond", "pistack", "pication", "saltbridge", "hydrophobic",
                          "metal-coord")}
    return {"is_in_context_conditioning": torch.zeros(1, c.length, dtype=torch.bool),
            "supports_local_latent": torch.ones(1, c.length, dtype=torch.bool),
            "condition_index-group_1_token": torch.zeros(1, c.length, dtype=torch.long), **atoms}


_CLASSES: dict[str, dict[str, Any]] = {
    # audio
    "AceStepAudioTokenizer": {"args": {"hidden_states": _rand(1, 8, "pool_window_size",
                                                               "audio_acoustic_hidden_dim")}},
    "AceStepConditionEncoder": {"args": {
        "text_hidden_states": _rand(1, "T", "text_hidden_dim"),
        "text_attention_mask": _ones(1, "T"),
        "lyric_hidden_states": _rand(1, "T", "text_hidden_dim"),
        "lyric_attention_mask": _ones(1, "T"),
        "refer_audio_acoustic_hidden_states_packed": _rand(1, "L", "timbre_hidden_dim"),
        "refer_audio_order_mask": _zeros(1)}},
    "AnimaTextConditioner": {"args": {
        "source_hidden_states": _rand(1, "T", "source_dim"),
        "target_input_ids": _ones(1, "T")}},
    "AceStepTransformer1DModel": {
        "layout": "sequence", "channels": "audio_acoustic_hidden_dim",
        "args": {"timestep_r": _timestep, "encoder_hidden_states": _text_of("hidden_size"),
                 "context_latents": _rand(1, "L", lambda c: 2 * c.channels)}},
    "AutoencoderKLLTX2Audio": {"args": {"sample": _rand(1, "in_channels", "L", "mel_bins")}},
    "AutoencoderSAME": {"layout": "audio", "channels": "audio_channels"},
    "AutoencoderOobleck": {"layout": "audio", "channels": "audio_channels"},
    "Cosmos3AVAEAudioTokenizer": {"layout": "audio", "channels": 2},
    "LongCatAudioDiTTransformer": {
        "layout": "sequence", "channels": "latent_dim",
        "args": {"encoder_attention_mask": _ones(1, "T", dtype="bool"),
                 "attention_mask": _ones(1, "L", dtype="bool"),
                 "latent_cond": _rand(1, "L", "latent_dim")}},
    "MMAudioVAE": {"args": {"sample": _rand(1, SAMPLES)}},
    "MMAudioVocoder": {"args": {"mel": _rand(1, "num_mels", "L")}},
    "MiniMaxMusic3ConditionEncoder": {"args": {"hidden_states": _rand(
        1, "T", lambda c: c.dim("num_condition_layers") * c.dim("condition_hidden_dim"))}},
    "MiniMaxMusic3RVQDepthDecoder": {"args": {"inputs_embeds": _rand(1, "num_codebooks",
                                                                      "hidden_size")}},
    "MiniMaxMusic3Transformer1DModel": {
        "layout": "audio", "args": {"encoder_hidden_states": _rand(1, "L", "condition_dim")}},
    "MiniMaxMusic3Vocoder": {"layout": "audio", "channels": "latent_channels", "length": LENGTH},
    "StableAudio3DiTModel": {
        "layout": "audio", "channels": "io_channels",
        "args": {"global_hidden_states": _rand(1, "global_cond_dim")}},
    "StableAudio3DurationEmbedder": {"args": {"seconds": _full(10.0, 1)}},
    "StableAudioDiTModel": {
        "layout": "audio",
        "args": {"global_hidden_states": _rand(1, 1, "global_states_input_dim"),
                 "rotary_embedding": _stable_audio_rope}},
    "StableAudioProjectionModel": {"args": {
        "text_hidden_states": _rand(1, "T", "text_encoder_dim"), "start_seconds": _full(0.0, 1),
        "end_seconds": _full(10.0, 1)}},
    "AudioLDM2ProjectionModel": {"args": {
        "hidden_states": _rand(1, "T", "text_encoder_dim"),
        "hidden_states_1": _rand(1, "T", "text_encoder_1_dim"),
        "attention_mask": _ones(1, "T"), "attention_mask_1": _ones(1, "T")}},
    "T5FilmDecoder": {"args": {
        "encodings_and_masks": lambda c: [(_randn(1, TEXT, int(c.get("d_model"))),
                                           _torch().ones(1, TEXT))],
        "decoder_input_tokens": _rand(1, "L", "input_dims"), "decoder_noise_time": _full(0.5, 1)}},
    "UNet1DModel": {"layout": "audio"},
    # image
    "AuraFlowTransformer2DModel": {"layout": "image"},
    "BriaFibo2Transformer2DModel": {"layout": "image", "args": {"encoder_hidden_states": _rand(
        1, lambda c: 1 + len(c.config["injection_layer_ids"]), "T", "cap_feat_dim")}},
    "BriaFiboTransformer2DModel": {"args": {"text_encoder_layers": _list(
        _text_of("text_encoder_dim"), lambda c: len(c.model.caption_projection))}},
    "CLIPImageProjection": {"layout": "vector"},
    "CogView3PlusTransformer2DModel": {"layout": "image", "args": _SIZES},
    "CogView4Transformer2DModel": {"layout": "image", "args": _SIZES},
    "ControlNetUnionModel": {"args": {
        "controlnet_cond": lambda c: [_randn(1, 3, 8 * c.size, 8 * c.size)],
        "control_type": _ones(1, "num_control_type", dtype="float"),
        "control_type_idx": _value([0]), **_SDXL_ADDED}},
    "DiTTransformer2DModel": {"args": {"class_labels": _zeros(1)}},
    "ErnieImageTransformer2DModel": {"layout": "image",
                                     "args": {"text_lens": _full(TEXT, 1, dtype="long")}},
    "Flux3Transformer2DModel": {"layout": "tokens"},
    "GlmImageTransformer2DModel": {"layout": "image", "host": ("prior_token_drop",), "args": {
        "prior_token_id": _zeros(1, "N"), "prior_token_drop": _zeros(dtype="bool"),
        **_SIZES}},
    "HiDreamImageTransformer2DModel": {"layout": "image", "channels": 16, "args": {
        "encoder_hidden_states_t5": _text_of("caption_channels"),
        "encoder_hidden_states_llama3": _rand(lambda c: len(c.config["llama_layers"]), 1, "T",
                                              "caption_channels"),
        "pooled_embeds": _rand(1, "text_emb_dim")}},
    "HunyuanDiT2DControlNetModel": {"layout": "image",
                                    "args": {**_HUNYUAN_DIT, "controlnet_cond": _latent}},
    "HunyuanDiT2DModel": {"layout": "image", "args": _HUNYUAN_DIT},
    "Ideogram4PromptEnhancerHead": {"layout": "sequence"},
    "Ideogram4Transformer2DModel": {"layout": "tokens", "inputs": _ideogram4},
    "Kandinsky3UNet": {"args": {"encoder_attention_mask": _ones(1, "T")}},
    "Krea2Transformer2DModel": {"layout": "tokens", "args": {
        "encoder_hidden_states": _rand(1, "T", "num_text_layers", "text_hidden_dim"),
        "position_ids": _krea2_positions}},
    "Lumina2Transformer2DModel": {"layout": "image", "host": ("encoder_attention_mask",), "args": {
        "encoder_attention_mask": _ones(1, "T", dtype="bool")}},
    "LuminaNextDiT2DModel": {"layout": "image", "args": {
        "encoder_mask": _ones(1, "T"), "image_rotary_emb": _lumina_rope,
        "cross_attention_kwargs": _value({})}},
    "NucleusMoEImageTransformer2DModel": {"args": {
        "img_shapes": lambda c: [(1, c.size // 2, c.size // 2)],
        "encoder_hidden_states_mask": _ones(1, "T")}},
    "OmniGenTransformer2DModel": {"layout": "image", "host": ("position_ids",), "args": {
        "input_ids": _ones(1, "T"), "input_img_latents": _value([]),
        "input_image_sizes": _value({}),
        "attention_mask": _ones(1, lambda c: TEXT + 1 + c.tokens,
                                lambda c: TEXT + 1 + c.tokens, dtype="float"),
        "position_ids": lambda c: _torch().arange(TEXT + 1 + c.tokens)[None]}},
    "PRXTransformer2DModel": {"layout": "image"},
    "PixArtTransformer2DModel": {"args": {"added_cond_kwargs": lambda c: {
        "resolution": _torch().tensor([[256.0, 256.0]]),
        "aspect_ratio": _torch().tensor([[1.0]])}}},
    "PriorTransformer": {"layout": "vector", "channels": "embedding_dim", "args": {
        "proj_embedding": _rand(1, "embedding_dim"),
        "encoder_hidden_states": _rand(1, "num_embeddings", "embedding_dim")}},
    "QwenImage21Transformer2DModel": {"layout": "tokens", "args": {
        "img_shapes": lambda c: [[(1, c.size // 2, c.size // 2)]],
        "img_mask": _image_slots, "encoder_hidden_states_mask": _ones(1, "T")}},
    "QwenImageControlNetModel": {"args": {
        "img_shapes": lambda c: [(1, c.size // 2, c.size // 2)],
        "encoder_hidden_states_mask": _ones(1, "T"), "timestep": _timestep,
        "encoder_hidden_states": _text}},
    "QwenImageTransformer2DModel": {"args": {
        "img_shapes": lambda c: [(1, c.size // 2, c.size // 2)],
        "encoder_hidden_states_mask": _ones(1, "T")}},
    "ReduxImageEncoder": {"layout": "sequence"},
    "SD3ControlNetModel": {"args": {"pooled_projections": _pooled}},
    "StableCascadeUNet": {"args": {
        "timestep_ratio": _full(0.5, 1),
        "clip_text_pooled": _rand(1, 1, "clip_text_pooled_in_channels")}},
    "T2IAdapter": {"layout": "image", "size": 8 * SIZE},
    "Transformer2DModel": {"layout": "image"},
    "UNetControlNetXSModel": {"args": {"controlnet_cond": _controlnet_cond}},
    "UVit2DModel": {"args": {
        "input_ids": _zeros(1, 16, 16), "encoder_hidden_states": _text_of("encoder_hidden_size"),
        "pooled_text_emb": _rand(1, "cond_embed_dim"), "micro_conds": _full(256.0, 1, 5)}},
    "UniDiffuserModel": {"args": {
        "latent_image_embeds": _rand(1, "in_channels", "sample_size", "sample_size"),
        "image_embeds": _rand(1, 1, "clip_img_dim"),
        "prompt_embeds": _rand(1, "num_text_tokens", "text_dim"),
        "timestep_img": _timestep, "timestep_text": _timestep}},
    "UniDiffuserTextDecoder": {"args": {
        "input_ids": _ones(1, "T"),
        "prefix_embeds": _rand(1, "prefix_length", "prefix_inner_dim")}},
    "ZImageControlNetModel": {"setup": _from_transformer("ZImageTransformer2DModel"),
                              "layout": "image", "channels": 16, "inputs": _z_image,
                              "args": {"control_context": lambda c: [
                                  _randn(int(c.get("control_in_dim")), 1, c.size, c.size)]}},
    "ZImageTransformer2DModel": {"layout": "image", "channels": 16, "inputs": _z_image},
    "RFD4ProteinaAutoencoder": {"args": {
        "z_latent": _rand(1, "L", "latent_dim"), "ca_coors_nm": _rand(1, "L", 3),
        "padding_mask": _ones(1, "L", dtype="bool"), "token_type": _zeros(1, "L"),
        "atom37_mask": _ones(1, "L", 37, dtype="bool"), "conditioning": _rfd4_conditioning}},
    "RFD4ProteinaTransformer": {"inputs": _needs(
        "RFdiffusion3's molecular features (chirality frames, bond path lengths, molecule and "
        "entity ids, nucleic-acid pairing), which its preprocessor makes outside diffusers"),
                                "args": {
        "bb_ca": _rand(1, "L", 3), "local_latents": _rand(1, "L", "latent_dim"),
        "bb_ca_time": _full(0.5, 1), "local_latents_time": _full(0.5, 1),
        "padding_mask": _ones(1, "L", dtype="bool"), "token_type": _zeros(1, "L"),
        "atom37_mask": _ones(1, "L", 37, dtype="bool"), "conditioning": _rfd4_conditioning}},
    # video
    "AnyFlowFARTransformer3DModel": {"layout": "frames", "args": {
        "timestep": _full(500.0, 1, "F"), "r_timestep": _full(250.0, 1, "F"),
        "chunk_partition": lambda c: [1] * c.frames}},
    "AnyFlowTransformer3DModel": {"layout": "frames", "args": {
        "timestep": _full(500.0, 1, "F"), "r_timestep": _full(250.0, 1, "F")}},
    "AutoencoderKLAllegro": {"setup": _enable_tiling, "frames": 24,
                             "size": "sample_size"},  # one tile: it encodes tiled only
    "AutoencoderKLMiniMaxH3": {"frames": lambda c: int(c.get("clip_length")) + 5},
    "AutoencoderKLMochi": {"layout": "video", "channels": 3, "frames": 7},
    "AutoencoderKLQwenImage21": {"layout": "video", "frames": 1},
    "AutoencoderKLTemporalDecoder": {"layout": "image", "args": {"num_frames": _value(1)}},
    "CogVideoXTransformer3DModel": {"layout": "frames", "text": "max_text_seq_length"},
    "ConsisIDTransformer3DModel": {"layout": "frames", "text": "max_text_seq_length"},
    "CosmosControlNetModel": {"layout": "video", "channels": 16, "args": {
        "controls_latents": _latent, "latents": _latent,
        "condition_mask": _ones(1, 1, "F", "S", "S", dtype="float"),
        "padding_mask": _zeros(1, 1, "S", "S", dtype="float")}},
    "CosmosTransformer3DModel": {"layout": "video", "args": {
        "padding_mask": _zeros(1, 1, "S", "S", dtype="float")}},
    "HunyuanVideo15Transformer3DModel": {"host": ("image_embeds",), "all_selected": True, "args": {
        "encoder_hidden_states_2": _text_of("text_embed_2_dim"),
        "encoder_attention_mask_2": _ones(1, "T"),
        "image_embeds": _rand(1, 8, "image_embed_dim")}},
    "HunyuanVideoFramepackTransformer3DModel": {"frames": 3, "host": ("encoder_attention_mask",),
                                                "args": {  # + 2 clean, 8 history
        "image_embeds": _rand(1, "T", "image_proj_dim"), "indices_latents": _arange("F"),
        "latents_clean": _rand(1, "C", 2, "S", "S"), "indices_latents_clean": _arange(2),
        "latents_history_2x": _rand(1, "C", 2, "S", "S"), "indices_latents_history_2x": _arange(2),
        "latents_history_4x": _rand(1, "C", 8, "S", "S"),
        "indices_latents_history_4x": _arange(8)}},
    "EasyAnimateTransformer3DModel": {"layout": "video"},
    "I2VGenXLUNet": {"args": {"fps": _full(8, 1, dtype="long"), "image_latents": _latent,
                              "image_embeddings": _rand(1, "cross_attention_dim")}},
    "JoyImageEditPlusTransformer3DModel": {"layout": "video", "inputs": _joyimage_plus},
    "Kandinsky5Transformer3DModel": {"layout": "video-last", "channels": _visual_cond, "args": {
        "encoder_hidden_states": _text_of("in_text_dim"), "pooled_projections": _rand(
            1, "in_text_dim2"), "visual_rope_pos": _rope_grid, "text_rope_pos": _arange("T")}},
    "Kandinsky6SRLatentUpscalerBank": {"layout": "video", "args": {"scale": _value(2)}},
    "Kandinsky6SRTransformer3DModel": {"layout": "video-last",
                                       "channels": lambda c: 2 * int(c.get("in_visual_dim")) + 1},
    "Kandinsky6Transformer3DModel": {"layout": "video-last", "channels": _visual_cond, "args": {
        "encoder_hidden_states": _text_of("in_text_dim"), "pooled_projections": _rand(
            1, "in_text_dim2"), "audio_hidden_states": _rand(1, "L", "in_audio_dim")}},
    "LTX2VideoDiffusionDecoderModel": {"layout": "video", "channels": "latent_channels",
                                       "size": 8, "frames": 2},
    "LTX2VideoTransformer3DModel": {"layout": "video-tokens", "size": 16, "args": {
        "audio_hidden_states": _rand(1, "L", "audio_in_channels"),
        "audio_encoder_hidden_states": _text_of("caption_channels"),
        "encoder_attention_mask": _ones(1, "T", dtype="bool"),
        "num_frames": lambda c: c.frames, "height": lambda c: c.size, "width": lambda c: c.size,
        "audio_num_frames": lambda c: c.length}},
    "LTXVideoTransformer3DModel": {"layout": "video-tokens", "size": 16, "args": {
        "encoder_attention_mask": _ones(1, "T", dtype="bool"), "num_frames": lambda c: c.frames,
        "height": lambda c: c.size, "width": lambda c: c.size}},
    "MiniMaxH3Transformer3DModel": {"layout": "video-tokens", "inputs": _minimax_h3},
    "Cosmos3OmniTransformer": {"inputs": _cosmos3},
    "MochiTransformer3DModel": {"layout": "video", "host": ("encoder_attention_mask",), "args": {
        "encoder_attention_mask": _ones(1, "T", dtype="bool")}},
    "SanaWMLTX2RefinerTransformer3DModel": {"layout": "video-tokens", "size": 16, "args": {
        "video_rotary_emb": _sana_wm_rope, "encoder_attention_mask": _ones(1, "T")}},
    "SanaWMTransformer3DModel": {"layout": "video", "args": {
        "mask": _ones(1, "T"), "timestep": _full(500.0, 1, 1, "F")}},
    "SparseControlNetModel": {"args": {
        "encoder_hidden_states": _rand("F", "T", "cross_attention_dim"),
        "controlnet_cond": _rand(1, "conditioning_channels", "F", "S", "S"),
        "conditioning_mask": _ones(1, 1, "F", "S", "S", dtype="float")}},
    "TransformerTemporalModel": {"layout": "image", "skip": ("encoder_hidden_states",), "args": {
        "hidden_states": _rand("F", "C", "S", "S"), "num_frames": lambda c: c.frames}},
    "UNetMotionModel": {"args": {"encoder_hidden_states": _rand("F", "T", "cross_attention_dim")}},
    "UNetSpatioTemporalConditionModel": {"layout": "frames", "args": {
        "encoder_hidden_states": _rand(1, 1, "cross_attention_dim"),
        "added_time_ids": lambda c: _torch().tensor([[6.0, 127.0, 0.02]])}},
    "WanAnimate2Transformer3DModel": {"inputs": _wan_animate2, "host": ("offset_grid_sizes",)},
    "WanAnimateTransformer3DModel": {"layout": "video", "frames": 21, "size": 16, "args": {
        # the reference frame, then 20 frames of pose-driven motion (77 face frames)
        "encoder_hidden_states_image": _rand(1, 257, "image_dim"),
        "pose_hidden_states": _rand(1, "latent_channels", lambda c: c.frames - 1, "S", "S"),
        "face_pixel_values": _rand(1, 3, 77, "motion_encoder_size", "motion_encoder_size")}},
    "LatteTransformer3DModel": {"frames": "video_length"},
    "WanVACETransformer3DModel": {"args": {
        "control_hidden_states": _rand(1, lambda c: c.model.config.vace_in_channels, "F", "S",
                                       "S")}},
}
"""Per-class settings: ``layout`` (``image``, ``video``, ``frames``, ``video-last``, ``audio``,
``sequence``, ``tokens``, ``video-tokens``, ``vector``), ``channels`` / ``size`` / ``frames`` /
``length`` / ``text`` (a number or a config key), ``args`` (forward argument -> maker, over
:data:`_MAKERS`, always passed), ``skip`` (optional arguments not passed), ``inputs`` (a
function that makes all of them), ``host`` (inputs kept real on the CPU, see
:func:`narbuild.sources.diffusers._add_kwargs`), ``all_selected`` (its masks are all true: see :func:`narbuild.sources.diffusers._select_all`),
``setup`` (run on the built model; returns the model to trace)."""
