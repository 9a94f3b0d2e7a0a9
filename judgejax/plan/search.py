"""Choose by the compiler: a run's train step compiled for the slice under each remat policy and
micro-batch size (gradient accumulation), with XLA's bytes per chip, the headroom left and the
model FLOPs each policy spends recomputing the forward pass.

Recomputed FLOPs per step (matmuls only, forward pass, the whole model; T tokens a row, causal
attention scoring half the keys on average): `none` 0; `full` every layer again (q, k, v, o,
gate, up, down projections and attention); `dots` attention only (its products have batch
dimensions, so the policy does not save them); `names` the out- and down-projections (q, k, v,
the attention output, gate and up are saved).
"""

from __future__ import annotations

import dataclasses

from jax.sharding import Mesh

from judgejax.model.config import ModelConfig
from judgejax.plan.compile import CompiledProgram, compile_program
from judgejax.plan.memory import GIB, SEARCH, plan_memory
from judgejax.plan.programs import training_programs
from judgejax.sharding import data_parallel_size
from judgejax.train.config import RunConfig


@dataclasses.dataclass(frozen=True)
class Candidate:
    remat: str
    grad_accum: int
    rows_per_chip: int
    compiled: CompiledProgram
    recomputed_flops: float


def recomputed_flops(cfg: ModelConfig, policy: str, tokens: int, seq: int) -> float:
    """Forward-pass FLOPs recomputed by the backward pass under `policy`, for `tokens` tokens in
    rows of `seq` (module docstring)."""
    D, N, K, H, F, L = (cfg.hidden_size, cfg.num_heads, cfg.num_kv_heads, cfg.head_dim, cfg.intermediate_size,
                        cfg.num_layers)
    projections = 2 * (2 * D * N * H + 2 * D * K * H + 3 * D * F)
    attention = 2 * N * H * seq  # Q K^T and P V, 2 FLOPs a multiply-add, over seq / 2 keys on average
    per_token = {"none": 0, "full": projections + attention, "dots": attention, "names": 2 * (N * H * D + F * D)}
    return float(L * tokens * per_token[policy])


def accumulations(config: RunConfig, batch_ways: int) -> list[int]:
    """Every grad_accum of 1, 2, 4, ... whose micro-batch still splits over the data shards."""
    out, accum = [], 1
    while config.data.global_batch_size % (accum * batch_ways) == 0:
        out.append(accum)
        accum *= 2
    return out


def search(cfg: ModelConfig, config: RunConfig, mesh: Mesh, stage: str, **sizes) -> list[Candidate]:
    """The stage's train step compiled for `mesh` under every policy in SEARCH and grad_accum."""
    shape = tuple(mesh.shape[a] for a in ("data", "fsdp", "tensor"))
    found = []
    for remat in SEARCH:
        for accum in accumulations(config, data_parallel_size(mesh)):
            changed = dataclasses.replace(config, model=dataclasses.replace(config.model, remat=remat),
                                          train=dataclasses.replace(config.train, grad_accum=accum))
            changed_cfg = dataclasses.replace(cfg, remat=remat)
            plan = plan_memory(changed_cfg, changed, shape, stage, **sizes)
            [step, *_] = training_programs(changed_cfg, changed, mesh, stage, plan)
            tokens = config.data.global_batch_size * plan.seq_len * (2 if stage == "dpo" else 1)
            found.append(Candidate(remat, accum, plan.rows, compile_program(step, mesh),
                                   recomputed_flops(cfg, remat, tokens, plan.seq_len)))
    return found


def table(found: list[Candidate], usable: int) -> list[str]:
    lines = ["| remat | grad_accum | rows per chip | XLA GiB per chip | headroom GiB | recomputed TFLOP per step | fits |",
             "|---|---|---|---|---|---|---|"]
    for c in sorted(found, key=lambda c: (c.compiled.refused != "" or c.compiled.total > usable,
                                          c.recomputed_flops, c.grad_accum)):
        fits = not c.compiled.refused and c.compiled.total <= usable
        total = "> HBM" if c.compiled.refused else f"{c.compiled.total / GIB:.2f}"
        headroom = f"{(usable - c.compiled.total) / GIB:.2f}" if fits else "–"
        lines.append(f"| {c.remat} | {c.grad_accum} | {c.rows_per_chip} | {total} | {headroom} | "
                     f"{c.recomputed_flops / 1e12:.3g} | {'yes' if fits else 'no'} |")
    return lines
