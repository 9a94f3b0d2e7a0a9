"""The --profile part of tools/bench_train.py: the seconds of an SFT step's parts (decoder
forward, forward with the LM head, forward + backward, optimizer update) for judgejax and the
torch loop, and XLA's FLOP count of the compiled step."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

import bench_common as bc
from judgejax.model.build import model_from_params
from judgejax.model.config import ModelConfig
from judgejax.train.steps import sequence_token_logps


def _best_of(fn, repeats: int = 2) -> float:
    fn()  # compile and warm
    return bc.best_seconds(fn, repeats)


def profile_jax(cfg: ModelConfig, chunk: int, steps, tx, host: dict[str, np.ndarray]) -> dict:
    """For bench_train's JaxSteps `steps`: seconds per step of the SFT step's parts, each timed on one micro-batch and multiplied by
    the micro-batches per step (forward of the decoder only, forward with the LM head and
    log-softmax, forward + backward), the optimizer update once, and XLA's FLOP count of the
    compiled step."""
    batch = steps.place(host)
    micro = jax.tree.map(lambda x: x[0], batch)
    params = steps.state.params

    def loss(p, m):
        return -sequence_token_logps(cfg, p, m, chunk).sum() / jnp.maximum(m["loss_mask"].sum(), 1.0)

    def decoder(p, m):
        hidden, _ = model_from_params(cfg, p).hidden_states(m["tokens"], m["positions"], m["segment_ids"])
        return hidden.sum()

    grad_fn = jax.jit(jax.value_and_grad(loss))
    parts = {}
    for name, fn in (("decoder forward", jax.jit(decoder)), ("forward (with LM head + log-softmax)", jax.jit(loss)),
                     ("forward + backward", grad_fn)):
        bc.log("bench_train", f"profile judgejax: {name}")
        parts[name] = steps.accum * _best_of(lambda: jax.block_until_ready(fn(params, micro)))
    grads = grad_fn(params, micro)[1]
    bc.log("bench_train", "profile judgejax: optimizer update")
    copies = jax.tree.map(jnp.copy, (steps.state.params, steps.state.opt_state))  # donated, as in the train step
    parts["optimizer update (clip + AdamW)"] = _best_of(bc.donated_update(tx, *copies, grads))
    bc.log("bench_train", "profile judgejax: cost analysis of the compiled step")
    cost = steps.jitted["sft"].lower(steps.state, batch).compile().cost_analysis()
    cost = cost[0] if isinstance(cost, (list, tuple)) else cost
    return {"parts": parts, "xla_flops": float(cost.get("flops", float("nan"))),
            "xla_bytes": float(cost.get("bytes accessed", float("nan")))}


def profile_torch(loop, host: dict[str, np.ndarray]) -> dict:
    """The same parts for bench_train's TorchLoop `loop` (forwards without autograd, as judgejax's are)."""
    torch = loop.torch
    tokens, targets = loop.micro_batches(host)[0]

    def decoder():
        with torch.no_grad():
            loop.model.model(input_ids=tokens, use_cache=False)

    def forward():
        with torch.no_grad():
            loop.loss(tokens, targets)

    def forward_backward():
        loop.loss(tokens, targets).backward()

    parts = {}
    for name, fn in (("decoder forward", decoder), ("forward (with LM head + log-softmax)", forward),
                     ("forward + backward", forward_backward)):
        bc.log("bench_train", f"profile torch: {name}")
        parts[name] = loop.accum * _best_of(fn)
    bc.log("bench_train", "profile torch: optimizer update")
    parts["optimizer update (clip + AdamW)"] = _best_of(loop.update)  # on the gradients of the last backward
    loop.optimizer.zero_grad(set_to_none=True)
    return {"parts": parts}
