"""Import a local Hugging Face folder: each tensor streamed from safetensors straight into its
target sharding, one device shard at a time (the full model never sits on the host)."""

from __future__ import annotations

import json
import pathlib
from typing import Any

import jax
import numpy as np
from jax.sharding import Mesh
from safetensors import SafetensorError, safe_open

from judgejax.model.build import Tree, model_from_params, nest, param_shardings
from judgejax.model.config import ModelConfig
from judgejax.model.hf_names import IGNORED_SUFFIXES, from_hf, hf_names, hf_shape
from judgejax.model.llm import CausalLM
from judgejax.model.params import SPECS, param_shapes


class CheckpointError(ValueError):
    """A weights folder that does not match the model it should hold."""


class SafetensorsIndex:
    """Tensor name -> file, over a single `model.safetensors` or a sharded index."""

    def __init__(self, folder: pathlib.Path):
        self.folder = folder
        self._handles: dict[pathlib.Path, Any] = {}
        index_path = folder / "model.safetensors.index.json"
        if index_path.is_file():
            weight_map = json.loads(index_path.read_text())["weight_map"]
            self.file_of = {name: folder / f for name, f in weight_map.items()}
        elif (folder / "model.safetensors").is_file():
            single = folder / "model.safetensors"
            self.file_of = {name: single for name in self._open(single).keys()}
        else:
            raise CheckpointError(f"{folder}: no model.safetensors or model.safetensors.index.json")

    def _open(self, path: pathlib.Path):
        if path not in self._handles:
            try:
                self._handles[path] = safe_open(str(path), framework="np")
            except (SafetensorError, OSError) as e:
                raise CheckpointError(f"{path}: cannot read safetensors file ({e})") from e
        return self._handles[path]

    def names(self) -> set[str]:
        return set(self.file_of)

    def shape(self, name: str) -> tuple[int, ...]:
        return tuple(self._open(self.file_of[name]).get_slice(name).get_shape())

    def read(self, name: str, index: tuple[slice, ...] | None = None) -> np.ndarray:
        path = self.file_of[name]
        try:
            tensor = self._open(path).get_slice(name)
            return np.asarray(tensor[index] if index else tensor[:])
        except SafetensorError as e:
            raise CheckpointError(f"{path}: cannot read tensor {name} ({e})") from e


def check_tensors(index: SafetensorsIndex, cfg: ModelConfig) -> None:
    """Every expected tensor present with its shape, nothing unexpected; errors name the tensor."""
    expected: dict[str, tuple[int, ...]] = {}
    for name, shape in param_shapes(cfg, padded=False).items():
        per_layer = shape[1:] if SPECS[name].stacked else shape
        for hf in hf_names(name, cfg):
            expected[hf] = hf_shape(name, per_layer)
    present = index.names()
    missing = sorted(set(expected) - present)
    if missing:
        raise CheckpointError(f"{index.folder}: missing tensor {missing[0]} ({len(missing)} missing)")
    allowed = {SPECS["lm_head_dv"].hf_name} if cfg.tie_word_embeddings else set()
    extra = sorted(n for n in present - set(expected) - allowed if not n.endswith(IGNORED_SUFFIXES))
    if extra:
        raise CheckpointError(
            f"{index.folder}: unexpected tensor {extra[0]} ({len(extra)} not used by {cfg.architecture})"
        )
    for hf, want in expected.items():
        got = index.shape(hf)
        if got != want:
            raise CheckpointError(f"{index.folder}: tensor {hf} has shape {got}, expected {want}")


def _read_shard(index: SafetensorsIndex, cfg: ModelConfig, name: str, shape, shard: tuple[slice, ...]):
    spec = SPECS[name]
    if not spec.stacked:
        if spec.layout == "transpose":  # lm_head: read only the rows of this shard
            return index.read(hf_names(name, cfg)[0], (shard[1], shard[0])).T
        return index.read(hf_names(name, cfg)[0], shard)
    layers = range(shape[0])[shard[0]]
    names = hf_names(name, cfg)
    return np.stack([from_hf(name, index.read(names[l]), shape[1:])[shard[1:]] for l in layers])


def _read_padded(index: SafetensorsIndex, cfg: ModelConfig, name: str, shape, shard: tuple[slice, ...]):
    """A device shard of parameter `name`; on its vocabulary axis (if any), the rows past the real
    vocabulary (padding) are zeros."""
    axes = SPECS[name].axes
    if "vocab" not in axes:
        return _read_shard(index, cfg, name, shape, shard)
    axis = axes.index("vocab")
    bounds = [s.indices(n)[:2] for s, n in zip(shard, shape)]
    out = np.zeros([stop - start for start, stop in bounds], np.float32)
    start, stop = bounds[axis]
    real_stop = min(stop, cfg.vocab_size)
    if real_stop > start:
        real = list(shard)
        real[axis] = slice(start, real_stop)
        filled = [slice(None)] * len(shape)
        filled[axis] = slice(0, real_stop - start)
        out[tuple(filled)] = _read_shard(index, cfg, name, shape, tuple(real))
    return out


def load_hf_params(folder: str | pathlib.Path, cfg: ModelConfig, mesh: Mesh) -> Tree:
    """Read the weights of `folder` into arrays sharded on `mesh` (in cfg.param_dtype)."""
    index = SafetensorsIndex(pathlib.Path(folder))
    check_tensors(index, cfg)
    shardings = param_shardings(cfg, mesh)
    out: dict[str, jax.Array] = {}
    for name, shape in param_shapes(cfg).items():
        sharding = shardings[name]
        host_shards: dict[tuple, np.ndarray] = {}
        device_arrays = []
        for device, shard in sharding.addressable_devices_indices_map(shape).items():
            key = tuple((s.start, s.stop) for s in shard)
            if key not in host_shards:
                host_shards[key] = _read_padded(index, cfg, name, shape, shard).astype(cfg.param_jnp_dtype)
            device_arrays.append(jax.device_put(host_shards[key], device))
        out[name] = jax.make_array_from_single_device_arrays(shape, sharding, device_arrays)
    return nest(out)


def import_hf(folder: str | pathlib.Path, mesh: Mesh, **config_overrides: Any) -> CausalLM:
    """A CausalLM with the weights of a local HF folder, sharded on `mesh`."""
    cfg = ModelConfig.from_hf_dir(folder, **config_overrides)
    return model_from_params(cfg, load_hf_params(folder, cfg, mesh))
