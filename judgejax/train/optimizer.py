"""AdamW with warmup + cosine/linear decay, global-norm clipping, and no decay on norms/biases."""

from __future__ import annotations

from typing import Literal

import jax
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


def make_optimizer(config: OptimConfig, total_steps: int) -> optax.GradientTransformation:
    """AdamW: its first moment is kept in float32 whatever the parameter dtype; its second moment takes the
    parameters' dtype (float32 unless model.param_dtype is bfloat16)."""
    adamw = optax.adamw(
        schedule(config, total_steps),
        b1=config.b1,
        b2=config.b2,
        eps=config.eps,
        weight_decay=config.weight_decay,
        mask=decay_mask,
        mu_dtype=jax.numpy.float32,
    )
    if not config.grad_clip:
        return adamw
    return optax.chain(optax.clip_by_global_norm(config.grad_clip), adamw)
