"""Hugging Face tensor names of judgejax parameters, and the transposes and reshapes that are the
only difference between the two layouts (each parameter's HF name and layout are in the table of
`judgejax.model.params`)."""

from __future__ import annotations

import math

import numpy as np

from judgejax.model.config import ModelConfig
from judgejax.model.params import SPECS

# Buffers some checkpoints carry that hold no learned state.
IGNORED_SUFFIXES = ("rotary_emb.inv_freq",)


def is_stacked(name: str) -> bool:
    return SPECS[name].stacked


def hf_names(name: str, cfg: ModelConfig) -> list[str]:
    """HF tensor names of one parameter (one per layer for stacked ones)."""
    template = SPECS[name].hf_name
    if is_stacked(name):
        return [template.format(l=l) for l in range(cfg.num_layers)]
    return [template]


def hf_shape(name: str, shape: tuple[int, ...]) -> tuple[int, ...]:
    """Shape of the HF tensor for one (per-layer) judgejax tensor of `shape`."""
    layout = SPECS[name].layout
    if layout == "same":
        return shape
    if layout == "transpose":
        return shape[::-1]
    if layout == "in_to_heads":  # [d, n, h] <- [n*h, d]
        return (shape[1] * shape[2], shape[0])
    if layout == "heads_to_out":  # [n, h, d] <- [d, n*h]
        return (shape[2], shape[0] * shape[1])
    if layout == "lora_a":  # [in..., r] <- [r, in]
        return (shape[-1], math.prod(shape[:-1]))
    if layout == "lora_b":  # [r, out...] <- [out, r]
        return (math.prod(shape[1:]), shape[0])
    return (shape[0] * shape[1],)  # split_heads: [n, h] <- [n*h]


def from_hf(name: str, hf: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """One HF tensor -> the judgejax layout of `shape` (per layer for stacked parameters)."""
    layout = SPECS[name].layout
    if layout == "same":
        return hf
    if layout == "transpose":
        return hf.T
    if layout in ("in_to_heads", "heads_to_out", "lora_a", "lora_b"):
        return hf.T.reshape(shape)
    return hf.reshape(shape)


def to_hf(name: str, ours: np.ndarray) -> np.ndarray:
    """Inverse of `from_hf`."""
    layout = SPECS[name].layout
    if layout == "same":
        return ours
    if layout == "transpose":
        return np.ascontiguousarray(ours.T)
    if layout == "in_to_heads":
        return np.ascontiguousarray(ours.reshape(ours.shape[0], -1).T)
    if layout in ("heads_to_out", "lora_a"):
        return np.ascontiguousarray(ours.reshape(-1, ours.shape[-1]).T)
    if layout == "lora_b":
        return np.ascontiguousarray(ours.reshape(ours.shape[0], -1).T)
    return ours.reshape(-1)
