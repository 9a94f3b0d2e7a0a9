"""The fused attention kernels that run on this platform (on CPU: both Pallas kernels in interpret
mode; on a GPU: pallas-gpu and cudnn) equal blocked XLA attention: values and gradients on packed
and left-padded rows with grouped-query heads, no document attends another, the same under a
(data, fsdp, tensor) mesh, inside the model and when sampling; backends are picked by platform
and a backend asked for where it cannot run is an error.

cudnn computes in bfloat16: it is compared with XLA's float32 attention of the same bfloat16
inputs, to bfloat16's precision. On a GPU float32 matmuls run in TF32, hence the looser float32
tolerance there."""

from __future__ import annotations

import logging

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from judgejax.model import attention, attention_backends
from judgejax.model.build import init_model, model_from_params, params_of
from judgejax.model.config import ConfigError, ModelConfig
from judgejax.model.llm import _mask
from judgejax.sample.sampler import generate
from judgejax.sharding import MeshConfig, make_mesh

ON = attention_backends.platform()
KERNELS = [name for name in ("pallas-gpu", "splash", "cudnn") if ON in attention_backends.PLATFORMS[name]]
F32_KERNELS = [name for name in KERNELS if name != "cudnn"]  # cudnn has no float32 form
B, T, K, G, H = 2, 200, 2, 2, 16  # T not a multiple of the kernels' 128-slot tile


def rows() -> np.ndarray:
    """Row 0: three packed documents; row 1: left-padded by 37 slots (segment 0), one document."""
    segments = np.zeros((B, T), np.int32)
    segments[0, :60], segments[0, 60:150], segments[0, 150:] = 1, 2, 3
    segments[1, 37:] = 1
    return segments


def inputs(seed: int = 0):
    keys = jax.random.split(jax.random.key(seed), 4)
    q = jax.random.normal(keys[0], (B, T, K, G, H))
    k, v = (jax.random.normal(key, (B, T, K, H)) for key in keys[1:3])
    weights = jax.random.normal(keys[3], (B, T, K, G, H)) * (rows() != 0)[:, :, None, None, None]
    return q, k, v, weights


def xla(q, k, v, segments, scale=0.25):
    slots = jnp.arange(q.shape[1])
    return attention.causal(q, k, v, _mask(slots, slots, segments, segments), scale)


def fused(backend):
    dtype = jnp.bfloat16 if backend == "cudnn" else jnp.float32

    def run(q, k, v, segments, scale=0.25):
        out = attention_backends.self_attention(backend, *(x.astype(dtype) for x in (q, k, v)), segments, scale)
        return out.astype(jnp.float32)

    return run


def tolerance(backend, float32_cpu: float) -> float:
    """The largest difference from float32 XLA allowed, relative to the reference's largest value."""
    return 2e-2 if backend == "cudnn" else float32_cpu if ON == "cpu" else 5e-3


@pytest.mark.parametrize("backend", KERNELS)
def test_kernel_equals_xla_values_and_gradients(backend):
    q, k, v, weights = inputs()
    if backend == "cudnn":  # the reference sees the same bfloat16-rounded inputs
        q, k, v = (x.astype(jnp.bfloat16).astype(jnp.float32) for x in (q, k, v))
    segments = jnp.asarray(rows())
    real = rows() != 0  # padding queries' outputs are unspecified
    out, ref = jax.jit(fused(backend))(q, k, v, segments), xla(q, k, v, segments)
    np.testing.assert_allclose(np.asarray(out)[real], np.asarray(ref)[real],
                               atol=tolerance(backend, 2e-5) * float(jnp.abs(ref).max()))

    def grads(fn):
        return jax.jit(jax.grad(lambda q, k, v: jnp.sum(fn(q, k, v, segments) * weights), argnums=(0, 1, 2)))(q, k, v)

    for g, g_ref in zip(grads(fused(backend)), grads(xla)):
        np.testing.assert_allclose(np.asarray(g), np.asarray(g_ref), atol=tolerance(backend, 1e-4) * float(jnp.abs(g_ref).max()))
        assert float(jnp.abs(g_ref).max()) > 1e-2


@pytest.mark.parametrize("backend", KERNELS)
def test_no_document_attends_another_or_the_padding(backend):
    """New keys and values in document 2 of row 0 and in row 1's padding change nothing else."""
    q, k, v, _ = inputs()
    segments = jnp.asarray(rows())
    changed = np.zeros((B, T), bool)
    changed[0, 60:150], changed[1, :37] = True, True
    _, k2, v2, _ = inputs(seed=1)
    k_new, v_new = (jnp.where(changed[:, :, None, None], b, a) for a, b in ((k, k2), (v, v2)))
    run = jax.jit(fused(backend))
    before, after = np.asarray(run(q, k, v, segments)), np.asarray(run(q, k_new, v_new, segments))
    others = ~changed & (rows() != 0)
    np.testing.assert_allclose(after[others], before[others], atol=1e-6)
    assert np.abs(after[0, 60:150] - before[0, 60:150]).max() > 1e-2  # document 2 did change


@pytest.mark.parametrize("backend", KERNELS)
def test_kernel_under_a_mesh_equals_one_device(backend):
    if len(jax.devices()) < 4:
        pytest.skip(f"a (1, 2, 2) mesh needs 4 devices; {ON} has {len(jax.devices())}")
    q, k, v, _ = inputs()
    segments = jnp.asarray(rows())
    mesh = make_mesh(MeshConfig(data=1, fsdp=2, tensor=2), jax.devices()[:4])
    with jax.set_mesh(mesh):
        sharded = jax.jit(fused(backend))(q, k, v, segments)
    real = rows() != 0
    np.testing.assert_allclose(np.asarray(sharded)[real], np.asarray(fused(backend)(q, k, v, segments))[real],
                               atol=1e-6)


HF = dict(architectures=["Qwen3ForCausalLM"], vocab_size=64, hidden_size=32, intermediate_size=64, head_dim=16,
          num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2, rms_norm_eps=1e-6,
          tie_word_embeddings=True)


MODEL_CASES = {"pallas-gpu": "none", "splash": "names", "cudnn": "names"}  # backend: remat policy


@pytest.mark.parametrize("backend, remat", [(name, MODEL_CASES[name]) for name in KERNELS])
def test_model_logits_and_gradients_match_xla(backend, remat):
    mesh = make_mesh(MeshConfig(data=1), jax.devices()[:1])
    params = params_of(init_model(ModelConfig.from_hf(HF), mesh, seed=2))
    tokens = jax.random.randint(jax.random.key(3), (B, T), 0, HF["vocab_size"])
    segments = jnp.asarray(rows())
    positions = jnp.asarray(np.maximum(np.arange(T)[None] - np.array([[0], [37]]), 0))
    real = rows() != 0

    compute = "bfloat16" if backend == "cudnn" else "float32"

    def run(attention_name, remat_name):
        cfg = ModelConfig.from_hf(HF, attention=attention_name, remat=remat_name, compute_dtype=compute)

        def loss(p):
            logits, _ = model_from_params(cfg, p)(tokens, positions, segments)
            return jnp.sum(jnp.where(real[..., None], logits.astype(jnp.float32), 0.0) ** 2), logits

        step = jax.jit(jax.value_and_grad(loss, has_aux=True))
        # the kernel runs: a Pallas call in the jaxpr, cuDNN's custom call (__cudnn$fmha...) in the HLO
        program = step.lower(params).as_text() if backend == "cudnn" else str(jax.make_jaxpr(loss)(params))
        assert (("cudnn" if backend == "cudnn" else "pallas_call") in program) == (attention_name != "xla")
        return step(params)

    (loss, logits), grads = run(backend, remat)
    (loss_ref, logits_ref), grads_ref = run("xla", "none")
    logits, logits_ref = (np.asarray(x, np.float32)[real] for x in (logits, logits_ref))
    np.testing.assert_allclose(logits, logits_ref, atol=tolerance(backend, 1e-4) * max(1.0, np.abs(logits_ref).max()))
    np.testing.assert_allclose(float(loss), float(loss_ref), rtol=tolerance(backend, 1e-5))
    for g, g_ref in zip(jax.tree.leaves(grads), jax.tree.leaves(grads_ref)):
        np.testing.assert_allclose(np.asarray(g), np.asarray(g_ref),
                                   atol=tolerance(backend, 1e-4) * max(1.0, float(jnp.abs(g_ref).max())))


@pytest.mark.parametrize("backend", F32_KERNELS)
def test_sampling_equals_xla(backend):
    """Generation runs the kernel for the shared prefix and the packed prefill rows without one,
    and XLA for the prefill after the prefix and for each decode step (they read the cache)."""
    mesh = make_mesh(MeshConfig(data=1), jax.devices()[:1])
    params = params_of(init_model(ModelConfig.from_hf(HF), mesh, seed=4))
    rng = np.random.default_rng(0)
    shared = rng.integers(1, HF["vocab_size"], 9).tolist()
    prompts = [shared + rng.integers(1, HF["vocab_size"], n).tolist() for n in (3, 20, 11)]

    def sample(attention_name, prompts):
        model = model_from_params(ModelConfig.from_hf(HF, attention=attention_name), params)
        return generate(model, prompts, max_new_tokens=5, stop_ids=[], return_logprobs=True)

    for batch in (prompts, [p[::-1] for p in prompts]):  # with a shared prefix, and without
        for got, want in zip(sample(backend, batch), sample("xla", batch)):
            assert got.tokens == want.tokens
            np.testing.assert_allclose(got.logprobs, want.logprobs, atol=1e-4 if ON == "cpu" else 1e-2)


def test_auto_picks_by_platform_and_says_so_once(caplog):
    attention_backends._resolve.cache_clear()  # the once-per-choice log is cached
    asked = [("cpu", "float32"), ("gpu", "bfloat16"), ("gpu", "float32"), ("tpu", "bfloat16"), ("cpu", "float32")]
    with caplog.at_level(logging.INFO, logger="judgejax.model.attention_backends"):
        picked = [attention_backends.resolve("auto", on, dtype) for on, dtype in asked]
    assert picked == ["xla", "cudnn", "pallas-gpu", "splash", "xla"]
    assert [r.getMessage() for r in caplog.records] == [
        "attention backend xla: model.attention=auto on cpu",
        "attention backend cudnn: model.attention=auto on gpu with bfloat16 compute",
        "attention backend pallas-gpu: model.attention=auto on gpu with float32 compute (cudnn needs bfloat16)",
        "attention backend splash: model.attention=auto on tpu"]


def test_a_backend_where_it_cannot_run_is_an_error():
    with pytest.raises(ConfigError, match="model.attention=splash cannot run on gpu"):
        attention_backends.resolve("splash", "gpu")
    with pytest.raises(ConfigError, match="model.attention=pallas-gpu cannot run on tpu"):
        attention_backends.resolve("pallas-gpu", "tpu")
    with pytest.raises(ConfigError, match="model.attention=cudnn cannot run on cpu"):
        attention_backends.resolve("cudnn", "cpu")
    with pytest.raises(ConfigError, match="model.attention=cudnn cannot run on tpu"):
        attention_backends.resolve("cudnn", "tpu")
    assert [attention_backends.resolve(name, "cpu") for name in ("pallas-gpu", "splash")] == ["pallas-gpu", "splash"]
    assert attention_backends.resolve("cudnn", "gpu") == "cudnn"
    with pytest.raises(ConfigError, match="attention=cudnn needs compute_dtype=bfloat16"):
        ModelConfig.from_hf(HF, attention="cudnn")
    with pytest.raises(ConfigError, match="attention='flash'; choose one of auto, xla, pallas-gpu, splash, cudnn"):
        ModelConfig.from_hf(HF, attention="flash")
