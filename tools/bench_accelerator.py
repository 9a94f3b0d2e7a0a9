"""Training and sampling throughput of judgejax on an accelerator (GPU or TPU), random weights.

For each model shape (the Hugging Face config of a real 1.5B-7B model, or SmolLM2-135M for a CPU
smoke run; random weights): the jitted SFT step with each attention backend (under the first remat
policy), then with each other remat policy (under the fastest backend), then the DPO (+NLL) step
with the fastest setting, over packed [batch, seq] rows with float32 master weights, bfloat16
compute and AdamW: tokens/s; MFU = model FLOPs / step time / the chip's peak, with model FLOPs
counted with the causal half of the attention (tools/bench_common.CAUSAL_FORMULA) and as peers
count them (the full T x T attention, FLOPS_FORMULA); HFU adds the FLOPs the remat policy
recomputes (RECOMPUTE); temp GiB: XLA's temporaries of the compiled step. A setting
that fails (a kernel that does not compile here, out of memory) is reported as such and the
benchmark goes on. Then the jitted sampler (greedy, random prompts): decode tokens/s per batch size
and the share of the HBM roofline (each decode step must at least read the bfloat16 weights and the
KV cache once).

  python tools/bench_accelerator.py --models qwen2.5-1.5b llama-3.2-3b --attention cudnn pallas-gpu xla \
      --remat names none dots full --budget-s 420
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import sys
import time

import jax
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec as P

import bench_common as bc
from judgejax.model.build import init_model, model_from_params, params_of
from judgejax.model.config import ATTENTION_BACKENDS, REMAT_POLICIES, ModelConfig
from judgejax.plan.shapes import KNOWN
from judgejax.sample.sampler import generate
from judgejax.sharding import BATCH, MeshConfig, make_mesh
from judgejax.train.optimizer import OptimConfig, make_optimizer
from judgejax.train.state import create_state
from judgejax.train.steps import DPOConfig, make_dpo_step, make_sft_step

# the shapes of released models (judgejax plan's table; weights are random here), by lower-case name
SHAPES = {name.lower(): hf for name, hf in KNOWN.items()}
PEAK_TFLOPS = {"H100": 989.0, "H200": 989.0, "A100": 312.0, "TPU v5p": 459.0, "TPU v5 lite": 197.0, "TPU v4": 275.0}
HBM_TBS = {"H100": 3.35, "H200": 4.8, "A100": 2.0, "TPU v5p": 2.76, "TPU v5 lite": 0.82, "TPU v4": 1.2}


def _chip(name: str, table: dict[str, float]) -> float:
    return next((v for k, v in table.items() if k.lower() in name.lower()), float("nan"))


def packed_rows(rng, rows: int, seq: int, vocab: int) -> dict[str, np.ndarray]:
    """Rows packed with documents of 256-1024 tokens, each with its own segment id and positions."""
    tokens = rng.integers(0, vocab, (rows, seq), dtype=np.int32)
    segments = np.zeros((rows, seq), np.int32)
    positions = np.zeros((rows, seq), np.int32)
    for r in range(rows):
        start, seg = 0, 1
        while start < seq:
            n = min(int(rng.integers(256, 1025)), seq - start)
            segments[r, start:start + n], positions[r, start:start + n] = seg, np.arange(n)
            start, seg = start + n, seg + 1
    targets = np.roll(tokens, -1, axis=1)
    loss_mask = (segments == np.roll(segments, -1, axis=1)).astype(np.float32)
    return dict(tokens=tokens, targets=targets, loss_mask=loss_mask, positions=positions, segment_ids=segments)


def time_steps(step, state, batch, steps: int):
    """Compiles `step` (state donated); returns (state, seconds of each call after two warm-ups,
    the bytes XLA allocates for the step's temporaries: activations, gradients, workspace)."""
    step = jax.jit(step, donate_argnums=0).lower(state, batch).compile()
    temp_bytes = step.memory_analysis().temp_size_in_bytes
    seconds = []
    for i in range(steps + 2):
        began = time.perf_counter()
        state, metrics = step(state, batch)
        float(metrics["loss"])
        if i >= 2:
            seconds.append(time.perf_counter() - began)
    return state, seconds, temp_bytes


def failed(error: Exception) -> str:
    return f"failed: {type(error).__name__}: {str(error).splitlines()[0][:120]}"


class Budget:
    """Wall time since the benchmark began against --budget-s: settings not yet started when it
    is spent are reported as not run, so a one-shot run on a lent machine ends in time."""

    def __init__(self, seconds: float):
        self.seconds, self.began = seconds, time.perf_counter()

    def spent(self) -> bool:
        return time.perf_counter() - self.began > self.seconds


def bench_train(cfg: ModelConfig, mesh, args, peak: float, clock: Budget) -> list[list[str]]:
    """SFT with every attention backend under the first remat policy; then SFT under the other
    policies with the backend that was fastest; then DPO+NLL with the fastest setting. A row each."""
    rng = np.random.default_rng(0)
    tx = make_optimizer(OptimConfig(), total_steps=1000)
    rows_sharding = lambda a: NamedSharding(mesh, P(None, BATCH, *[None] * (a.ndim - 1)))  # noqa: E731
    put = lambda a: jax.device_put(a[None], rows_sharding(a))  # noqa: E731  [accum=1, rows, ...]
    sft = {k: put(v) for k, v in packed_rows(rng, args.batch, args.seq, cfg.vocab_size).items()}
    half = {k: v[: args.batch // 2] for k, v in packed_rows(rng, args.batch, args.seq, cfg.vocab_size).items()}
    dpo = {f"{side}_{k}": put(v) for side in ("chosen", "rejected") for k, v in half.items()}
    dpo |= {f"ref_{side}_logps": put(np.full(args.batch // 2, -300.0, np.float32)) for side in ("chosen", "rejected")}
    rows, seconds_of = [], {}
    with jax.set_mesh(mesh):
        state = create_state(params_of(init_model(cfg, mesh)), tx)

        def measure(kind: str, attention: str, remat: str):
            nonlocal state
            run = cfg.replace(attention=attention, remat=remat)
            setting = [args.model, attention, remat, kind, f"{args.batch}x{args.seq}"]
            if clock.spent():
                rows.append(setting + [f"not run: past --budget-s {clock.seconds:.0f}"] + [""] * 6)
                return
            step, batch = ((make_sft_step(run, tx), sft) if kind == "SFT"
                           else (make_dpo_step(run, tx, DPOConfig()), dpo))
            try:
                state, seconds, temp_bytes = time_steps(step, state, batch, args.steps)
            except Exception as error:  # noqa: BLE001  one failed setting must not end a one-shot GPU run
                rows.append(setting + [failed(error)] + [""] * 6)
                print(rows[-1], flush=True)
                state = create_state(params_of(init_model(cfg, mesh)), tx)  # the donated state may be gone
                return
            s = seconds_of[kind, attention, remat] = bc.median(seconds)
            model_flops = bc.train_flops(run, args.batch, args.seq, causal=True)
            full_flops = bc.train_flops(run, args.batch, args.seq)
            hardware_flops = model_flops + bc.recompute_flops(run, args.batch, args.seq)
            rows.append(setting + [f"{s:.3f}", f"{args.batch * args.seq / s:,.0f}", f"{model_flops / s / 1e12:.0f}",
                                   f"{100 * model_flops / s / peak:.1f}%", f"{100 * full_flops / s / peak:.1f}%",
                                   f"{100 * hardware_flops / s / peak:.1f}%", f"{temp_bytes / 2**30:.1f}"])
            print(rows[-1], flush=True)

        def fastest(settings):
            timed = [x for x in settings if ("SFT", *x) in seconds_of]
            return min(timed, key=lambda x: seconds_of["SFT", *x]) if timed else settings[0]

        first = args.remat[0]
        for attention in args.attention:
            measure("SFT", attention, first)
        best_attention = fastest([(a, first) for a in args.attention])[0]
        for remat in args.remat[1:]:
            measure("SFT", best_attention, remat)
        measure("DPO+NLL", *fastest([(best_attention, r) for r in args.remat]))
    return rows


def bench_sampler(cfg: ModelConfig, mesh, args, hbm: float, clock: Budget) -> list[list[str]]:
    """A row per layer loop (a lax.scan over layers, or unrolled) x batch size."""
    cfg = cfg.replace(param_dtype="bfloat16", compute_dtype="bfloat16", remat="none")
    params = params_of(init_model(cfg, mesh))
    weight_bytes = bc.model_params(cfg) * 2
    rows = []
    for layers, batch in itertools.product(args.sample_layers, args.sample_batches):
        model = model_from_params(cfg.replace(unroll_layers=layers == "unrolled"), params)
        rng = np.random.default_rng(batch)
        prompts = [rng.integers(0, cfg.vocab_size, args.prompt_len).tolist() for _ in range(batch)]
        kw = dict(stop_ids=[], buckets=(args.prompt_len,))
        setting = [args.model, layers, batch, f"{args.prompt_len}+{args.new_tokens}"]
        if clock.spent():
            rows.append(setting + [f"not run: past --budget-s {clock.seconds:.0f}", "", "", ""])
            continue
        timed = {}
        try:
            for n in (1, args.new_tokens):
                generate(model, prompts, max_new_tokens=n, **kw)  # compile
                timed[n] = bc.best_seconds(lambda: generate(model, prompts, max_new_tokens=n, **kw), 2)
        except Exception as error:  # noqa: BLE001  as in bench_train
            rows.append(setting + [failed(error), "", "", ""])
            print(rows[-1], flush=True)
            continue
        decode = timed[args.new_tokens] - timed[1]
        steps = args.new_tokens - 1
        kv_bytes = 2 * cfg.num_layers * batch * (args.prompt_len + args.new_tokens) * cfg.num_kv_heads * cfg.head_dim * 2
        roofline = hbm * 1e12 / (weight_bytes + kv_bytes)  # decode steps/s if only these bytes counted
        rows.append(setting + [f"{timed[1] * 1e3:.0f}", f"{batch * steps / decode:,.0f}", f"{1e3 * decode / steps:.2f}",
                               f"{100 * steps / decode / roofline:.0f}%"])
        print(rows[-1], flush=True)
    return rows


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=["qwen2.5-1.5b"], choices=sorted(SHAPES))
    parser.add_argument("--batch", type=int, default=8, help="rows per SFT step (DPO: half as many pairs)")
    parser.add_argument("--seq", type=int, default=2048)
    parser.add_argument("--steps", type=int, default=5, help="timed steps after two warm-ups")
    parser.add_argument("--attention", nargs="+", choices=ATTENTION_BACKENDS, default=["auto"],
                        help="attention backends of the SFT step, each under the first --remat policy "
                             "(auto: the platform's choice)")
    parser.add_argument("--remat", nargs="+", choices=REMAT_POLICIES, default=["full"],
                        help="remat policies of the SFT step; those after the first run with the fastest "
                             "backend, and DPO+NLL with the fastest setting")
    parser.add_argument("--budget-s", type=float, default=float("inf"),
                        help="start no setting after this many seconds (the rest are reported as not run)")
    parser.add_argument("--sample-batches", type=int, nargs="*", default=[1, 16, 64])
    parser.add_argument("--sample-layers", nargs="+", choices=("scan", "unrolled"), default=["scan"],
                        help="the sampler's loop over layers: a lax.scan, or unrolled (model.unroll_layers)")
    parser.add_argument("--prompt-len", type=int, default=512)
    parser.add_argument("--new-tokens", type=int, default=256)
    parser.add_argument("--matmul-n", type=int, default=8192, help="size of the bf16 matmul that measures the peak")
    parser.add_argument("--parts", nargs="+", choices=("train", "sample"), default=["train", "sample"],
                        help="what to measure: the train steps, the sampler, or both")
    parser.add_argument("--json", help="also write the tables here")
    args = parser.parse_args(argv)
    device = jax.devices()[0]
    kind = device.device_kind
    peak = _chip(kind, PEAK_TFLOPS) * 1e12
    measured = bc.jax_matmul_peak(args.matmul_n, 10, "bfloat16")
    mesh = make_mesh(MeshConfig(data=-1))
    print(f"{len(jax.devices())} x {kind}, jax {jax.__version__}; bf16 matmul {args.matmul_n}^3 measured "
          f"{measured / 1e12:.1f} TFLOP/s, datasheet dense bf16 {peak / 1e12:.0f}", flush=True)
    train, sample, clock = [], [], Budget(args.budget_s)
    for name in args.models:
        args.model = name
        cfg = ModelConfig.from_hf(SHAPES[name], param_dtype="float32", compute_dtype="bfloat16")
        print(f"{name}: {bc.model_params(cfg) / 1e9:.2f}B parameters", flush=True)
        if "train" in args.parts:
            train += bench_train(cfg, mesh, args, peak, clock)
        if "sample" in args.parts:
            sample += bench_sampler(cfg, mesh, args, _chip(kind, HBM_TBS), clock)
    print(f"\n{kind}: against the datasheet's dense bf16 {peak / 1e12:.0f} TFLOP/s (a {args.matmul_n}^3 bf16 matmul "
          f"measured {measured / 1e12:.1f} here); float32 master weights, bf16 compute, AdamW, packed documents of "
          f"256-1024 tokens. MFU: {bc.CAUSAL_FORMULA}. MFU full-attn: {bc.FLOPS_FORMULA}. HFU: MFU's FLOPs plus "
          "those the remat policy recomputes (tools/bench_common.RECOMPUTE). temp GiB: XLA's temporaries of the compiled "
          "step (activations kept for the backward pass, gradients, workspace)\n")
    print(bc.markdown_table(["model", "attention", "remat", "step", "rows x seq", "s/step", "tokens/s", "TFLOP/s",
                             "MFU", "MFU full-attn", "HFU", "temp GiB"], train))
    print(f"\nSampler: greedy, bf16 weights, random prompts; decode = time(prompt + N new) - time(prompt + 1 new); "
          f"roofline = bf16 weights + KV cache read once per step at {_chip(kind, HBM_TBS)} TB/s\n")
    print(bc.markdown_table(["model", "layers", "batch", "prompt+new", "prefill+1 ms", "decode tok/s", "ms/step",
                             "share of HBM roofline"], sample))
    flags = f"XLA_FLAGS='{os.environ['XLA_FLAGS']}' " if os.environ.get("XLA_FLAGS") else ""
    print(f"\nReproduce: `{flags}python tools/bench_accelerator.py " + " ".join(sys.argv[1:]) + "`")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"device": kind, "train": train, "sample": sample}, f, indent=1)


if __name__ == "__main__":
    main()
