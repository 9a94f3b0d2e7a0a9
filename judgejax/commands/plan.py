"""`judgejax plan`: will a run config fit an accelerator slice? Per-chip memory before anything runs."""

from __future__ import annotations

import argparse
import sys

from judgejax.commands.common import model_path
from judgejax.model import attention_backends
from judgejax.plan.chips import CHIPS, Slice, slice_arg
from judgejax.plan.memory import GIB, USABLE, MemoryPlan, PlanError, plan_memory, suggest, usable_bytes
from judgejax.plan.shapes import KNOWN
from judgejax.sharding import ShardingError


def _gib(n: int) -> str:
    return f"{n / GIB:8.2f}"


def report(plan: MemoryPlan, chunk: int) -> list[str]:
    """The per-chip table of one plan."""
    others = ", ".join(f"{policy} {value / GIB:.2f}" for policy, value in plan.activations_by_policy.items()
                       if policy != plan.remat)
    rows = [
        ("parameters", plan.params),
        ("optimizer state", plan.optimizer),
        ("gradients + optimizer update", plan.gradients),
    ]
    if plan.reference:
        rows.append(("DPO reference (in memory)", plan.reference))
    if plan.gathered:
        rows.append(("fsdp: gathered weights + gradients", plan.gathered))
    rows += [
        (f"activations, remat={plan.remat} ({others})", plan.activations),
        (f"logits (chunks of {min(chunk, plan.seq_len)} tokens)", plan.logits),
        ("= training step", plan.training),
        *([("host memory: offloaded activations", plan.offloaded)] if plan.remat == "offload" else []),
        (f"sampling: KV cache ({plan.sample_rows} rows x {plan.sample_len} tokens)", plan.kv_cache),
        ("sampling: prefill (prompt K/V, the cache's second copy, scores, last logits)", plan.prefill),
        *([("sampling: fsdp-gathered weights", plan.gathered_weights)] if plan.gathered_weights else []),
        ("= sampling (parameters + the above)", plan.sampling),
    ]
    width = max(len(name) for name, _ in rows)
    lines = [f"  {'per chip':<{width}}      GiB"]
    lines += [f"  {name:<{width}} {_gib(value)}" for name, value in rows]
    return lines


def register(sub) -> None:
    p = sub.add_parser(
        "plan", help="per-chip memory of a run config on an accelerator slice; does it fit?",
        description="Size a training run before it starts: parameters, optimizer state, gradients, "
                    "activations (under each remat policy) and the KV cache of sampling, per chip, for the "
                    "config's mesh on a slice; says whether it fits and suggests a mesh (or a remat policy, or "
                    "more gradient accumulation) when it does not. Model shapes come from model.path's config.json, "
                    "or, when the folder is not there yet, from built-in shapes chosen by its name "
                    f"({', '.join(KNOWN)}) or --arch. Slice names follow "
                    "Google's: v4-N and v5p-N count TensorCores (2 per chip: v5p-64 = 32 chips), v5e-N "
                    "(v5litepod-N) and v6e-N count chips; h100-N / h200-N count GPUs. HBM per chip (GiB): "
                    + ", ".join(f"{c.name} {c.hbm_gib:g}" for c in CHIPS.values())
                    + f"; a plan may use {USABLE:.0%} of it. Exits with status 1 when the config does not fit.")
    p.add_argument("--config", required=True, help="YAML run config (see configs/)")
    p.add_argument("--type", required=True, type=slice_arg, metavar="TYPE",
                   help="accelerator slice, e.g. v5p-64, v6e-16, h100-16")
    p.add_argument("--stage", choices=("sft", "dpo"), default="sft",
                   help="training stage (dpo runs chosen and rejected together: twice the rows)")
    p.add_argument("--arch", help="use these built-in shapes instead of model.path's config.json")
    p.add_argument("--sample-rows", type=int,
                   help="sequences sampled at once over all chips (default data.global_batch_size)")
    p.add_argument("--sample-length", type=int, help="prompt + new tokens when sampling (default data.max_length)")
    p.add_argument("--compile", action="store_true",
                   help="also compile every program the run executes (the stage's train step, the DPO reference "
                        "pass, the sampler) for the slice's TPU chips with the TPU compiler, on this host (no TPU "
                        "needed: the `tpu` extra's libtpu), and print XLA's bytes per chip beside the planner's; the "
                        "exit status then follows XLA (1 when a program needs more than "
                        f"{USABLE * 100:.0f}%% of a chip's HBM)")
    p.add_argument("--search", action="store_true",
                   help="--compile, and also compile the train step under every remat policy (none, names, dots, "
                        "full) and grad_accum (1, 2, 4, ... while the micro-batch splits over the data shards) and "
                        "list them, those that fit first, with XLA's bytes per chip, the headroom and the FLOPs each "
                        "recomputes")
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="dotted config overrides, as for sft/dpo")
    p.set_defaults(func=main, single_process=True)


def main(args: argparse.Namespace) -> None:
    from judgejax.train.config import load_config
    from judgejax.plan.shapes import model_shape

    config = load_config(args.config, args.overrides)
    slice_: Slice = args.type
    cfg, source = model_shape(model_path(config.model.path), args.arch, **config.model.numerics())
    platform = "tpu" if slice_.is_tpu else "gpu"
    sizes = dict(processes=slice_.hosts, sample_rows=args.sample_rows, sample_len=args.sample_length, platform=platform)
    attention = attention_backends.resolve(config.model.attention, platform, config.model.compute_dtype)
    print(f"{args.config} ({args.stage}) on {slice_.describe()}")
    print(f"model {config.model.path} ({source}): params {config.model.param_dtype}, "
          f"compute {config.model.compute_dtype}, attention {attention}")
    budget = usable_bytes(slice_.chip.hbm_gib)
    try:
        mesh = config.mesh.shape(slice_.chips)
        plan = plan_memory(cfg, config, mesh, args.stage, **sizes)
    except (PlanError, ShardingError) as e:
        print(f"cannot run as configured: {e}")
        plan = None
    if plan is not None:
        print(f"{plan.param_count / 1e9:.2f} B parameters; mesh data={mesh[0]} fsdp={mesh[1]} tensor={mesh[2]}; "
              f"micro-batch {plan.rows} row(s) x {plan.seq_len} tokens per chip (global batch "
              f"{config.data.global_batch_size}, grad_accum {config.train.grad_accum})")
        print("\n".join(report(plan, config.train.logprob_chunk)))
        if args.compile or args.search:
            sys.exit(0 if compile_for_slice(cfg, config, slice_, args.stage, plan, args.search, sizes) else 1)
        if plan.peak <= budget:
            print(f"fits: {plan.peak / GIB:.1f} GiB needed, {slice_.chip.hbm_gib:g} GiB per chip "
                  f"({budget / GIB:.1f} GiB usable)")
            return
        print(f"does not fit: {plan.peak / GIB:.1f} GiB needed, {slice_.chip.hbm_gib:g} GiB per chip "
              f"({budget / GIB:.1f} GiB usable)")
    better = suggest(cfg, config, slice_.chips, slice_.chip.hbm_gib, args.stage, **sizes)
    if better is None:
        print(f"no mesh, remat or gradient accumulation fits {slice_.name}; use a larger slice")
    else:
        print(f"suggested ({better.plan.peak / GIB:.1f} GiB per chip): {' '.join(better.overrides(config))}")
    sys.exit(1)


def compile_for_slice(cfg, config, slice_: Slice, stage: str, plan: MemoryPlan, search: bool, sizes: dict) -> bool:
    """Compile the run's programs for the slice's chips and print XLA's table (and with `search`
    the train step's variants); True if the run's programs all fit."""
    import dataclasses

    from judgejax.plan import search as variants
    from judgejax.plan.compile import compile_program, table
    from judgejax.plan.programs import sampler_program, training_programs
    from judgejax.plan.topology import tpu_devices
    from judgejax.sharding import make_mesh

    cfg = dataclasses.replace(cfg, attention=config.model.attention)
    mesh = make_mesh(config.mesh, tpu_devices(slice_))
    programs = [*training_programs(cfg, config, mesh, stage, plan), sampler_program(cfg, mesh, plan)]
    print(f"compiling {len(programs)} programs for {slice_.name} with the TPU compiler (XLA's buffer "
          "assignment: the compiler's plan per chip, not a measurement)")
    rows = []
    for program in programs:
        rows.append(compile_program(program, mesh))
        what = "more than the chip's HBM" if rows[-1].refused else f"{rows[-1].total / GIB:.2f} GiB per chip"
        print(f"  {program.name}: {what}, compiled in {rows[-1].seconds:.0f} s", flush=True)
    budget = usable_bytes(slice_.chip.hbm_gib)
    print("\n".join(table(rows, slice_.chip.hbm_gib, budget)))
    too_big = [r for r in rows if r.refused or r.total > budget]
    for r in too_big:
        need = f"more than the chip's HBM ({r.refused})" if r.refused else f"{r.total / GIB:.1f} GiB per chip"
        print(f"does not fit: {r.name} needs {need}, {budget / GIB:.1f} GiB usable of {slice_.chip.hbm_gib:g}")
    if not too_big:
        print(f"fits: every program within {budget / GIB:.1f} GiB per chip ({USABLE:.0%} of {slice_.chip.hbm_gib:g})")
    if search:
        print(f"the {stage} step under every remat policy and grad_accum (FLOPs: the model's matmuls recomputed "
              "per step, not a measurement):")
        print("\n".join(variants.table(variants.search(cfg, config, mesh, stage, **sizes), budget)))
    return not too_big
