"""Fused attention kernels, chosen by `model.attention`, for self-attention over the tokens of one
call with no KV cache and no shared prefix (training steps, scoring, prefill without a prefix).
Attention that also reads a cache or a prefix always runs on `xla`.

- `xla`: judgejax.model.attention.causal (blocked einsums): the reference and the CPU default;
- `pallas-gpu`: jax.experimental.pallas.ops.gpu.attention.mha (Triton), causal, segment ids;
- `splash`: Pallas TPU splash attention, causal mask, segment ids, its MQA form per KV head;
- `cudnn`: cuDNN's fused attention through `jax.nn.dot_product_attention(implementation="cudnn")`
  on NVIDIA GPUs, bfloat16 compute only, grouped-query heads without repeating K and V. Its
  public API has no segment ids: the segments enter as a boolean [B, 1, T, T] mask (cuDNN adds it
  as a bias), so packed and left-padded rows are exact, at the cost of reading that bias per head;
- `auto`: by platform, cpu -> xla, gpu -> cudnn (pallas-gpu for float32 compute), tpu -> splash
  (logged once).

A backend asked for by name on a platform that cannot run it is an error, never a fallback. The
platform is the target's, not this host's: the devices of the mesh set with `jax.set_mesh` (a TPU
topology's when compiling for a TPU slice on a CPU host, `judgejax plan --compile`), else JAX's
default backend. On a CPU target both Pallas kernels run in interpret mode (slow: for tests); on
their own target they lower to their kernels (Mosaic on TPU, Triton on GPU). All three see segment ids: a token
attends only earlier tokens of its own segment; segment 0 (padding) is never attended by a real
token, and padding queries get unspecified outputs. Under a mesh (`jax.set_mesh`) the kernels run
per shard (`shard_map`): rows split like the batch, KV heads like the `kv_heads` rule.
"""

from __future__ import annotations

import functools
import logging

import jax
import jax.numpy as jnp
from jax.experimental.pallas.ops.gpu import attention as pallas_gpu
from jax.experimental.pallas.ops.tpu import splash_attention as splash

from judgejax.model.attention import segment_mask
from judgejax.model.config import ConfigError
from judgejax.sharding import logical_spec

log = logging.getLogger(__name__)

AUTO = {"cpu": "xla", "gpu": "cudnn", "tpu": "splash"}  # on gpu: the fastest on an H200 (README, Benchmarks)
PLATFORMS = {"xla": ("cpu", "gpu", "tpu"), "pallas-gpu": ("cpu", "gpu"), "splash": ("cpu", "tpu"), "cudnn": ("gpu",)}
BLOCK = 128  # both kernels' sequence tile: sequences are padded to a multiple of it
QUERY_AXES = ("batch", "seq", "kv_heads", None, "head_dim")  # [B, T, K, G, H]
KV_AXES = ("batch", "seq", "kv_heads", "head_dim")  # [B, T, K, H]


def platform() -> str:
    """cpu, gpu or tpu: where the program being built runs: the platform of the mesh set with
    `jax.set_mesh` (also while tracing under jit), else JAX's default backend."""
    mesh = jax.sharding.get_abstract_mesh()
    device = None if mesh.empty else mesh.abstract_device
    name = device.platform if device is not None else jax.default_backend()
    return "gpu" if name in ("cuda", "rocm") else name


def resolve(name: str, on: str | None = None, compute_dtype: str = "float32") -> str:
    """The backend that runs for `model.attention=name` on platform `on` (default: the target's,
    `platform()`)."""
    return _resolve(name, on or platform(), compute_dtype)


@functools.cache
def _resolve(name: str, on: str, compute_dtype: str) -> str:
    if name == "auto":
        if on not in AUTO:
            raise ConfigError(f"model.attention=auto: no backend for platform {on!r}")
        picked, why = AUTO[on], f"on {on}"
        if picked == "cudnn":  # cuDNN's fused attention has no float32 form
            picked, why = ("cudnn", "on gpu with bfloat16 compute") if compute_dtype == "bfloat16" else (
                "pallas-gpu", f"on gpu with {compute_dtype} compute (cudnn needs bfloat16)")
        log.info("attention backend %s: model.attention=auto %s", picked, why)
        return picked
    if on not in PLATFORMS[name]:
        raise ConfigError(f"model.attention={name} cannot run on {on} (it runs on {', '.join(PLATFORMS[name])}); "
                          f"use auto or xla")
    return name


def self_attention(backend: str, q_btkgh, k_btkh, v_btkh, segment_ids_bt, scale: float):
    """Causal attention of `backend` (pallas-gpu, splash or cudnn) within each segment: the output
    [B, T, K, G, H] of queries [B, T, K, G, H] over keys and values [B, T, K, H]."""
    kernel = functools.partial(_KERNELS[backend], scale=scale)
    T = q_btkgh.shape[1]
    pad = -T % BLOCK
    if pad:  # padding slots form segment 0, which no real token attends
        q_btkgh, k_btkh, v_btkh, segment_ids_bt = (
            jnp.pad(x, [(0, 0), (0, pad)] + [(0, 0)] * (x.ndim - 2)) for x in (q_btkgh, k_btkh, v_btkh, segment_ids_bt))
    if not jax.sharding.get_abstract_mesh().empty:
        q_spec, kv_spec = logical_spec(QUERY_AXES), logical_spec(KV_AXES)
        kernel = jax.shard_map(kernel, in_specs=(q_spec, kv_spec, kv_spec, logical_spec(("batch", "seq"))),
                               out_specs=q_spec, check_vma=False)
    return kernel(q_btkgh, k_btkh, v_btkh, segment_ids_bt)[:, :T]


def _pallas_gpu(q_btkgh, k_btkh, v_btkh, segment_ids_bt, *, scale: float):
    # mha has no grouped-query form: each KV head is repeated for its G query heads (head k*G + g).
    B, T, K, G, H = q_btkgh.shape
    k_btnh, v_btnh = (jnp.repeat(x, G, axis=2) for x in (k_btkh, v_btkh))
    out_btnh = pallas_gpu.mha(q_btkgh.reshape(B, T, K * G, H), k_btnh, v_btnh, segment_ids_bt,
                              sm_scale=scale, causal=True, interpret=platform() == "cpu")
    return out_btnh.reshape(B, T, K, G, H)


def _splash_kernel(T: int, G: int, interpret: bool):
    """Splash attention of G query heads over one KV head (MQA form), causal over T slots. It is
    made inside the trace that calls it: its mask tables become constants of that program (made
    as concrete arrays they would be placed on the mesh's devices, which a TPU topology compiled
    for on another host does not have)."""
    mask = splash.MultiHeadMask([splash.CausalMask((T, T))] * G)
    return splash.make_splash_mqa_single_device(mask, interpret=interpret)


def _splash(q_btkgh, k_btkh, v_btkh, segment_ids_bt, *, scale: float):
    B, T, K, G, H = q_btkgh.shape
    kernel = _splash_kernel(T, G, platform() == "cpu")

    def one_row(q_kgth, k_kth, v_kth, segment_ids_t):
        segments = splash.SegmentIds(segment_ids_t, segment_ids_t)
        return jax.vmap(lambda q, k, v: kernel(q, k, v, segment_ids=segments))(q_kgth, k_kth, v_kth)

    q_bkgth = (q_btkgh * scale).astype(q_btkgh.dtype).transpose(0, 2, 3, 1, 4)  # splash does not scale
    out_bkgth = jax.vmap(one_row)(q_bkgth, k_btkh.transpose(0, 2, 1, 3), v_btkh.transpose(0, 2, 1, 3), segment_ids_bt)
    return out_bkgth.transpose(0, 3, 1, 2, 4)


def _cudnn(q_btkgh, k_btkh, v_btkh, segment_ids_bt, *, scale: float):
    # Query head k*G + g reads KV head k, as in dot_product_attention's grouped form.
    B, T, K, G, H = q_btkgh.shape
    mask_b1tt = segment_mask(segment_ids_bt, segment_ids_bt)[:, None]
    out_btnh = jax.nn.dot_product_attention(q_btkgh.reshape(B, T, K * G, H), k_btkh, v_btkh, mask=mask_b1tt,
                                            scale=scale, is_causal=True, implementation="cudnn")
    return out_btnh.reshape(B, T, K, G, H)


_KERNELS = {"pallas-gpu": _pallas_gpu, "splash": _splash, "cudnn": _cudnn}
