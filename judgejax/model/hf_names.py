"""The name table between Hugging Face tensors and judgejax parameters, with the transposes
and reshapes that are the only difference between the two layouts."""

from __future__ import annotations

import dataclasses

import numpy as np

from judgejax.model.config import ModelConfig
from judgejax.model.llm import PARAM_AXES


@dataclasses.dataclass(frozen=True)
class Entry:
    hf_name: str  # `{l}` is the layer index for stacked parameters
    layout: str  # how one HF tensor maps to one (per-layer) judgejax tensor


TABLE: dict[str, Entry] = {
    "embed_vd": Entry("model.embed_tokens.weight", "same"),
    "final_norm_d": Entry("model.norm.weight", "same"),
    "lm_head_dv": Entry("lm_head.weight", "transpose"),
    "attn_norm_ld": Entry("model.layers.{l}.input_layernorm.weight", "same"),
    "q_ldnh": Entry("model.layers.{l}.self_attn.q_proj.weight", "in_to_heads"),
    "k_ldkh": Entry("model.layers.{l}.self_attn.k_proj.weight", "in_to_heads"),
    "v_ldkh": Entry("model.layers.{l}.self_attn.v_proj.weight", "in_to_heads"),
    "o_lnhd": Entry("model.layers.{l}.self_attn.o_proj.weight", "heads_to_out"),
    "q_bias_lnh": Entry("model.layers.{l}.self_attn.q_proj.bias", "split_heads"),
    "k_bias_lkh": Entry("model.layers.{l}.self_attn.k_proj.bias", "split_heads"),
    "v_bias_lkh": Entry("model.layers.{l}.self_attn.v_proj.bias", "split_heads"),
    "o_bias_ld": Entry("model.layers.{l}.self_attn.o_proj.bias", "same"),
    "q_norm_lh": Entry("model.layers.{l}.self_attn.q_norm.weight", "same"),
    "k_norm_lh": Entry("model.layers.{l}.self_attn.k_norm.weight", "same"),
    "mlp_norm_ld": Entry("model.layers.{l}.post_attention_layernorm.weight", "same"),
    "gate_ldf": Entry("model.layers.{l}.mlp.gate_proj.weight", "transpose"),
    "up_ldf": Entry("model.layers.{l}.mlp.up_proj.weight", "transpose"),
    "down_lfd": Entry("model.layers.{l}.mlp.down_proj.weight", "transpose"),
}
# Buffers some checkpoints carry that hold no learned state.
IGNORED_SUFFIXES = ("rotary_emb.inv_freq",)


def is_stacked(name: str) -> bool:
    return PARAM_AXES[name][0] == "layers"


def hf_names(name: str, cfg: ModelConfig) -> list[str]:
    """HF tensor names of one parameter (one per layer for stacked ones)."""
    template = TABLE[name].hf_name
    if is_stacked(name):
        return [template.format(l=l) for l in range(cfg.num_layers)]
    return [template]


def hf_shape(name: str, shape: tuple[int, ...]) -> tuple[int, ...]:
    """Shape of the HF tensor for one (per-layer) judgejax tensor of `shape`."""
    layout = TABLE[name].layout
    if layout == "same":
        return shape
    if layout == "transpose":
        return shape[::-1]
    if layout == "in_to_heads":  # [d, n, h] <- [n*h, d]
        return (shape[1] * shape[2], shape[0])
    if layout == "heads_to_out":  # [n, h, d] <- [d, n*h]
        return (shape[2], shape[0] * shape[1])
    return (shape[0] * shape[1],)  # split_heads: [n, h] <- [n*h]


def from_hf(name: str, hf: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """One HF tensor -> the judgejax layout of `shape` (per layer for stacked parameters)."""
    layout = TABLE[name].layout
    if layout == "same":
        return hf
    if layout == "transpose":
        return hf.T
    if layout in ("in_to_heads", "heads_to_out"):
        return hf.T.reshape(shape)
    return hf.reshape(shape)


def to_hf(name: str, ours: np.ndarray) -> np.ndarray:
    """Inverse of `from_hf`."""
    layout = TABLE[name].layout
    if layout == "same":
        return ours
    if layout == "transpose":
        return np.ascontiguousarray(ours.T)
    if layout == "in_to_heads":
        return np.ascontiguousarray(ours.reshape(ours.shape[0], -1).T)
    if layout == "heads_to_out":
        return np.ascontiguousarray(ours.reshape(-1, ours.shape[-1]).T)
    return ours.reshape(-1)
