"""AdamW with warmup + cosine/linear decay, global-norm clipping, and no decay on norms/biases."""

from __future__ import annotations

from typing import Any, Literal, NamedTuple

import jax
import jax.numpy as jnp
import optax

from judgejax.config import section


@section
class OptimConfig:
    learning_rate: float = 1e-5
    warmup_steps: int = 0
    schedule: Literal["cosine", "linear", "constant"] = "cosine"
    min_lr_ratio: float = 0.0  # the decay ends at learning_rate * min_lr_ratio
    weight_decay: float = 0.0
    b1: float = 0.9
    b2: float = 0.95
    eps: float = 1e-8
    grad_clip: float = 1.0  # global gradient norm; 0 = off

    def __post_init__(self) -> None:
        if self.schedule not in ("cosine", "linear", "constant"):
            raise ValueError(f"optim.schedule={self.schedule!r}: choose cosine, linear or constant")
        if self.learning_rate <= 0 or self.warmup_steps < 0 or not 0 <= self.min_lr_ratio <= 1:
            raise ValueError(f"optim: bad learning rate settings {self}")


def schedule(config: OptimConfig, total_steps: int) -> optax.Schedule:
    peak, end = config.learning_rate, config.learning_rate * config.min_lr_ratio
    decay_steps = max(total_steps - config.warmup_steps, 1)
    if config.schedule == "cosine":
        decay = optax.cosine_decay_schedule(peak, decay_steps, alpha=config.min_lr_ratio)
    elif config.schedule == "linear":
        decay = optax.linear_schedule(peak, end, decay_steps)
    else:
        decay = optax.constant_schedule(peak)
    if not config.warmup_steps:
        return decay
    warmup = optax.linear_schedule(0.0, peak, config.warmup_steps)
    return optax.join_schedules([warmup, decay], [config.warmup_steps])


def decay_mask(params) -> dict:
    """True for matrices that take weight decay; norms and biases never do."""
    return {
        group: {name: "norm" not in name and "bias" not in name for name in tree}
        for group, tree in params.items()
    }


class AdamWState(NamedTuple):
    count: jax.Array  # updates made so far
    mu: Any  # first moments, float32
    nu: Any  # second moments, in the parameters' dtype


def make_optimizer(config: OptimConfig, total_steps: int) -> optax.GradientTransformation:
    """Global-norm clipping and AdamW (bias-corrected, decoupled weight decay on `decay_mask`) in
    one elementwise pass per parameter. It equals optax.chain(optax.clip_by_global_norm, optax.adamw(
    ..., mu_dtype=float32)) (tests/test_optimizer.py) but reads and writes each parameter, gradient
    and moment once: XLA:CPU runs optax's chain of transformations as several passes.
    The first moment is float32 whatever the parameter dtype; the second takes the parameters' dtype."""
    lr = schedule(config, total_steps)
    b1, b2, eps, wd, clip = config.b1, config.b2, config.eps, config.weight_decay, config.grad_clip

    def init(params) -> AdamWState:
        return AdamWState(count=jnp.zeros([], jnp.int32), mu=optax.tree.zeros_like(params, dtype=jnp.float32),
                          nu=optax.tree.zeros_like(params))

    def update(grads, state: AdamWState, params):
        count = optax.safe_increment(state.count)
        if clip:
            norm = optax.tree.norm(grads)
            clipped = jnp.squeeze(norm >= clip)
        step_size = -lr(state.count)
        mu_correction, nu_correction = 1 - b1**count, 1 - b2**count

        def leaf(g, m, v, p, decays):
            if clip:
                g = jax.lax.select(clipped, (g / norm.astype(g.dtype)) * clip, g)
            m = (1 - b1) * g + b1 * m
            v = (1 - b2) * (g * g) + b2 * v
            u = (m / mu_correction.astype(m.dtype)) / (jnp.sqrt(v / nu_correction.astype(v.dtype)) + eps)
            if decays and wd:
                u = u + wd * p
            return u * step_size, m.astype(jnp.float32), v.astype(p.dtype)

        out = jax.tree.map(leaf, grads, state.mu, state.nu, params, decay_mask(params))
        pick = lambda i: jax.tree.map(lambda o: o[i], out, is_leaf=lambda o: isinstance(o, tuple))  # noqa: E731
        return pick(0), AdamWState(count=count, mu=pick(1), nu=pick(2))

    return optax.GradientTransformation(init, update)
