"""Shared pieces of the benchmarks under tools/: this machine's measured matmul peak, the
model-FLOP formula of a training step, timing statistics and Markdown tables."""

from __future__ import annotations

import math
import os
import statistics
import sys
import time
from typing import Callable, Sequence

from judgejax.model.config import ModelConfig
from judgejax.model.llm import param_shapes

FLOPS_FORMULA = (
    "model FLOPs per step = tokens x (6 P + 12 L (n_heads x head_dim) T): P = matmul parameters "
    "(decoder projections + the LM head; the tied embedding gather is counted once, as the LM head), "
    "L layers, T the padded sequence length; the attention term counts the full T x T score and "
    "value matmuls forward and backward (PaLM's MFU convention, causal half not subtracted)"
)
CAUSAL_FORMULA = "6 P + 6 L (n_heads x head_dim) T per token: as above with the causal half of the attention only"
# Forward matmuls recomputed in the backward pass under each remat policy (judgejax.model.remat):
# full reruns each layer's forward; dots saves the projections but not the attention's batched
# dots (scores and values); names and offload save q/k/v, the attention output and the MLP's
# gate/up, so the backward recomputes only the attention scores (to rebuild the softmax).
RECOMPUTE = {"none": (), "full": ("layers", "scores", "values"), "dots": ("scores", "values"),
             "names": ("scores",), "offload": ("scores",)}


def donated_update(tx, params, opt_state, grads) -> Callable[[], None]:
    """One optimizer update per call, jitted with the parameters and optimizer state donated (as
    in the train step) and threaded from call to call; each call waits for its result."""
    import jax
    import optax

    def update(state, grads):
        params, opt_state = state
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state

    step = jax.jit(update, donate_argnums=0)
    held = [(params, opt_state)]

    def call() -> None:
        held[0] = jax.block_until_ready(step(held[0], grads))

    return call


def log(tool: str, message: str) -> None:
    """A progress line on stderr (stdout carries only the report)."""
    print(f"[{tool}] {message}", file=sys.stderr, flush=True)


def cores() -> int:
    """CPU cores this process may run on (XLA's CPU thread pool uses all of them)."""
    return len(os.sched_getaffinity(0))


def model_params(cfg: ModelConfig) -> int:
    """Every parameter of the model (a tied embedding once)."""
    return sum(math.prod(shape) for shape in param_shapes(cfg, padded=False).values())


def matmul_params(cfg: ModelConfig) -> int:
    """Parameters that take part in a matmul per token: decoder projections and the LM head."""
    return layer_matmul_params(cfg) + cfg.hidden_size * cfg.vocab_size


def layer_matmul_params(cfg: ModelConfig) -> int:
    """The decoder layers' projection parameters (q, k, v, o, gate, up, down), all layers."""
    d, n, k, h, f = cfg.hidden_size, cfg.num_heads, cfg.num_kv_heads, cfg.head_dim, cfg.intermediate_size
    return cfg.num_layers * (d * n * h + 2 * d * k * h + n * h * d + 3 * d * f)


def train_flops(cfg: ModelConfig, rows: int, seq: int, causal: bool = False) -> float:
    """Model FLOPs of one forward+backward over `rows` x `seq` tokens (FLOPS_FORMULA, or with
    `causal` CAUSAL_FORMULA)."""
    attention = (6 if causal else 12) * cfg.num_layers * cfg.num_heads * cfg.head_dim * seq
    return float(rows * seq * (6 * matmul_params(cfg) + attention))


def recompute_flops(cfg: ModelConfig, rows: int, seq: int) -> float:
    """FLOPs that cfg.remat's recomputation adds to a step (RECOMPUTE), causal attention counted:
    hardware FLOPs = train_flops(causal=True) + this."""
    parts = RECOMPUTE[cfg.remat]
    per_token = 2 * layer_matmul_params(cfg) if "layers" in parts else 0
    per_token += sum(cfg.num_layers * cfg.num_heads * cfg.head_dim * seq for part in ("scores", "values") if part in parts)
    return float(rows * seq * per_token)


def best_seconds(fn: Callable[[], object], repeats: int) -> float:
    """Fastest of `repeats` timed calls of `fn` (which must block until its work is done)."""
    times = []
    for _ in range(repeats):
        began = time.perf_counter()
        fn()
        times.append(time.perf_counter() - began)
    return min(times)


def jax_matmul_peak(n: int = 2048, repeats: int = 10, dtype: str = "float32") -> float:
    """FLOP/s of a jitted n x n matmul on JAX's default device, best of `repeats`."""
    import jax
    import jax.numpy as jnp

    a, b = (jax.random.normal(jax.random.key(i), (n, n), dtype) for i in (0, 1))
    matmul = jax.jit(jnp.matmul)
    matmul(a, b).block_until_ready()
    return 2 * n**3 / best_seconds(lambda: matmul(a, b).block_until_ready(), repeats)


def torch_matmul_peak(n: int = 2048, repeats: int = 10) -> float:
    """FLOP/s of a float32 n x n `torch.mm` on CPU with torch's current thread count, best of `repeats`."""
    import torch

    a, b = torch.randn(n, n), torch.randn(n, n)
    torch.mm(a, b)
    return 2 * n**3 / best_seconds(lambda: torch.mm(a, b), repeats)


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)
