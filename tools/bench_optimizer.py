"""The optimizer update alone on this machine: judgejax's (optax.clip_by_global_norm + optax.adamw,
judgejax.train.optimizer) against torch's fused AdamW with clip_grad_norm_, on float32 parameters
in SmolLM2-135M's shapes. The JAX update is jitted with the state donated, as in the train step;
each is timed as the best of `--repeats` calls after a warm-up.

  python tools/bench_optimizer.py
"""

from __future__ import annotations

import argparse
import sys

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import NamedSharding, PartitionSpec as P

import bench_common as bc
from judgejax.model.build import nest
from judgejax.model.config import ModelConfig
from judgejax.model.llm import param_shapes
from judgejax.plan.shapes import KNOWN
from judgejax.train.optimizer import OptimConfig, make_optimizer

# SmolLM2-135M's parameters, grouped as the model holds them (outer, layers)
SHAPES = nest(param_shapes(ModelConfig.from_hf(KNOWN["SmolLM2-135M"]), padded=False))
CONFIG = OptimConfig(learning_rate=1e-5, weight_decay=0.01, grad_clip=1.0)


def time_jax(tx: optax.GradientTransformation, repeats: int) -> float:
    sharding = NamedSharding(jax.make_mesh((1,), ("d",)), P())
    params = {g: {n: jax.device_put(jnp.full(s, 0.01, jnp.float32), sharding) for n, s in part.items()}
              for g, part in SHAPES.items()}
    grads = jax.tree.map(lambda p: p * 0.5, params)
    call = bc.donated_update(tx, params, tx.init(params), grads)
    call()
    return bc.best_seconds(call, repeats)


def time_torch(repeats: int) -> float:
    import torch

    params = [torch.nn.Parameter(torch.full(s, 0.01)) for part in SHAPES.values() for s in part.values()]
    for p in params:
        p.grad = p.detach() * 0.5
    opt = torch.optim.AdamW(params, lr=CONFIG.learning_rate, betas=(CONFIG.b1, CONFIG.b2), eps=CONFIG.eps,
                            weight_decay=CONFIG.weight_decay, fused=True)

    def call():
        torch.nn.utils.clip_grad_norm_(params, CONFIG.grad_clip)
        opt.step()

    call()
    return bc.best_seconds(call, repeats)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    count = sum(int(np.prod(s)) for part in SHAPES.values() for s in part.values())
    times = {"judgejax (optax clip_by_global_norm + adamw), donated": time_jax(make_optimizer(CONFIG, 100), args.repeats),
             "torch AdamW(fused=True) + clip_grad_norm_": time_torch(args.repeats)}
    print(f"Optimizer update, {count / 1e6:.1f}M float32 parameters (SmolLM2-135M shapes), {bc.cores()} cores, "
          f"best of {args.repeats}\n")
    torch_seconds = times["torch AdamW(fused=True) + clip_grad_norm_"]
    print(bc.markdown_table(["update", "seconds", "time vs torch"],
                            [[name, f"{s:.3f}", f"{s / torch_seconds:.2f}x"] for name, s in times.items()]))
    print("\nReproduce: `python tools/bench_optimizer.py " + " ".join(sys.argv[1:]) + "`")


if __name__ == "__main__":
    main()
