"""LoRA: which parameters a run trains, fresh adapters on a loaded base, merging them into it, and
the base's fingerprint that an adapter checkpoint is tied to.

Adapters are parameters of the model's table (`judgejax.model.params`, present with
`ModelConfig.lora`) that the layer applies beside their projection (`judgejax.model.llm`). A LoRA
run trains only them: its train state holds the adapters and their optimizer state (megabytes); the
base is a separate, frozen tree in the compute dtype, passed to each step and never donated.

Why not qwix's LoraProvider: it finds a matmul's weight by matching the array against the calling
module's parameters (`flax_util.find_param`), and judgejax's decoder layer is a plain function over
per-layer slices that `lax.scan` cuts from [L, ...] stacked arrays, so no parameter matches; the
scan (compile time flat in depth) and the one parameter table are worth more than the library.
"""

from __future__ import annotations

import functools
import hashlib
import json
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from jax.experimental import multihost_utils
from jax.sharding import Mesh

from judgejax.model import quant
from judgejax.model.build import Tree, flatten, nest, param_shardings
from judgejax.model.config import ModelConfig
from judgejax.model.params import SPECS, is_adapter, specs_of


def split(cfg: ModelConfig, params: Tree) -> tuple[Tree, Tree | None]:
    """(trainable, frozen): with `cfg.lora` the adapters and the base; otherwise every parameter
    and None. (Arrays or their abstract shapes.)"""
    if cfg.lora is None:
        return params, None
    flat = flatten(params)
    return (nest({n: v for n, v in flat.items() if is_adapter(n)}),
            nest({n: v for n, v in flat.items() if not is_adapter(n)}))


def join(trainable: Tree, frozen: Tree | None) -> Tree:
    """The model's parameters from the two halves of `split` (also under jit)."""
    return trainable if frozen is None else nest({**flatten(frozen), **flatten(trainable)})


def frozen_base(cfg: ModelConfig, base: Tree, mesh: Mesh) -> Tree:
    """The base as a LoRA run holds it (it gets no updates): in the compute dtype, and with
    `lora.base_quant` each projection as codes and block scales (judgejax.model.quant)."""
    if not cfg.lora.quantized and cfg.compute_dtype == cfg.param_dtype:
        return base
    flat, shardings = flatten(base), param_shardings(cfg, mesh)
    lora = cfg.lora

    def freeze(flat):
        out = {}
        for name, value in flat.items():
            if lora.quantized and SPECS[name].inputs:
                out[name], out[name + "_qscale"] = quant.quantize(value, lora.base_quant, lora.block_size)
            else:
                out[name] = value.astype(SPECS[name].frozen_dtype(cfg))
        return out

    names = jax.eval_shape(freeze, flat)
    return nest(jax.jit(freeze, out_shardings={n: shardings[n] for n in names})(flat))


def as_trained(cfg: ModelConfig, base: Tree) -> Tree:
    """The base as a LoRA run's adapters saw it, in the parameter dtype: with `lora.base_quant`
    each projection quantised and dequantised; otherwise `base` itself."""
    if not cfg.lora.quantized:
        return base
    kind, block = cfg.lora.base_quant, cfg.lora.block_size
    round_trip = jax.jit(lambda w: quant.dequantize(*quant.quantize(w, kind, block), kind, w.dtype))
    return nest({n: round_trip(v) if SPECS[n].inputs else v for n, v in flatten(base).items()})


def reference_params(trainable: Tree, frozen: Tree) -> Tree:
    """The frozen base with zero adapters: what a LoRA run's model computes before training (its
    DPO reference), in the run's own config (quantised codes included)."""
    return join(jax.tree.map(jnp.zeros_like, trainable), frozen)


def base_config(cfg: ModelConfig) -> ModelConfig:
    """The model without adapters (what the base, the reference and a merged export are)."""
    return cfg.replace(lora=None)


def fresh_adapters(cfg: ModelConfig, mesh: Mesh, seed: int = 0) -> Tree:
    """Newly initialised adapters, each created in its sharding: B is zero, so a model with them
    computes exactly what its base does."""
    return nest(_adapter_init(cfg, mesh)(jax.random.key(seed)))


def with_fresh_adapters(cfg: ModelConfig, base: Tree, mesh: Mesh, seed: int = 0) -> Tree:
    """`base` (a model of `base_config(cfg)`) and fresh adapters."""
    return join(fresh_adapters(cfg, mesh, seed), base)


@functools.lru_cache(maxsize=8)
def _adapter_init(cfg: ModelConfig, mesh: Mesh):
    specs = [s for s in specs_of(cfg) if s.adapts]
    shardings = param_shardings(cfg, mesh)

    def init(key):
        rngs = nnx.Rngs(key)
        return {s.name: s.create(cfg, rngs)[...] for s in specs}

    return jax.jit(init, out_shardings={s.name: shardings[s.name] for s in specs})


def merge(cfg: ModelConfig, params: Tree) -> Tree:
    """The base with each adapter folded in, W + scale * A B, in W's dtype: a model of
    `base_config(cfg)` computing what `params` do (up to rounding)."""
    flat = flatten(params)

    @jax.jit
    def merged(flat):
        out = {n: v for n, v in flat.items() if not is_adapter(n)}
        for name in (n for n in flat if SPECS[n].adapts and n.endswith("_lora_a")):
            w_name = SPECS[name].adapts
            a, b, w = flat[name], flat[w_name + "_lora_b"], flat[w_name]
            layers, rank = a.shape[0], a.shape[-1]
            delta = jnp.einsum("lkr,lrn->lkn", a.reshape(layers, -1, rank).astype(jnp.float32),
                               b.reshape(layers, rank, -1).astype(jnp.float32)) * cfg.lora.scale
            out[w_name] = (w.astype(jnp.float32) + delta.reshape(w.shape)).astype(w.dtype)
        return out

    return nest(merged(flat))


def fingerprint(params: Tree) -> str:
    """A short hash of a model's weights: each tensor's name, shape and the exact bfloat16 values
    of its first and last rows (cut from the sharded array: cheap, and the same on any mesh or in
    either parameter dtype)."""
    digest = hashlib.sha256()
    for name, value in sorted(flatten(params).items()):
        corners = (value[(0,) * (value.ndim - 1)], value[(-1,) * (value.ndim - 1)])
        digest.update(json.dumps([name, list(value.shape)]).encode())
        for corner in corners:
            digest.update(np.asarray(multihost_utils.process_allgather(corner.astype(jnp.bfloat16), tiled=True)).tobytes())
    return digest.hexdigest()[:16]


class BaseMismatch(ValueError):
    """A LoRA checkpoint resumed or loaded on a base other than the one it was trained on."""


def check_base(saved: dict, base: dict, where: pathlib.Path) -> None:
    if saved.get("fingerprint") != base["fingerprint"]:
        raise BaseMismatch(f"{where}: its adapters were trained on base {saved.get('path')} (fingerprint "
                           f"{saved.get('fingerprint')}); model.path {base['path']} has fingerprint {base['fingerprint']}")
