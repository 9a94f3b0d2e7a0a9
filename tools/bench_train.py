"""SFT and DPO training-step throughput of judgejax against transformers + torch and TRL's
DPOTrainer, on the SmolLM2-135M architecture (the real float32 weights), on this machine's CPU,
in one run.

    python tools/bench_train.py                  # seq 512, batch 8, 3 timed steps each
    python tools/bench_train.py --profile        # and where each step's time goes
    python tools/bench_train.py --seq 128 --batch 2 --steps 1 --skip-trl   # a quick smoke run

What runs, in this order:
1. This CPU's matmul peak: a jitted float32 2048 x 2048 JAX matmul, best of 10 (and torch.mm
   for reference), measured again at the end; the higher JAX figure is the peak.
2. Gradient accumulation (--accum, default auto): a step's --batch rows run as `accum`
   micro-batches (judgejax's `train.grad_accum`, a lax.scan; the torch loop and TRL accumulate
   the same way), so one optimizer update still covers all rows. auto takes the smallest accum
   whose compiled judgejax step (XLA's memory analysis of its temporaries) fits in this
   machine's available memory beside the resident train states.
3. Interleaved rounds (1 warm-up round, whose first judgejax calls compile, then --steps timed
   rounds), each running in turn:
   - the judgejax SFT step, built as `judgejax.train.loop.run` builds it (`make_sft_step`,
     `create_state`, `jax.jit(step, in_shardings, out_shardings, donate_argnums=0)`, batches
     placed by `global_batch`) on a 1-device mesh: --batch rows of --seq real chat tokens
     (consecutive tokens of the pairs' conversations), loss on every token;
   - a transformers + torch loop on the same weights and batch: `LlamaForCausalLM` forward
     (SDPA attention), float32 cross-entropy on every token, backward, global-norm clipping
     1.0, fused `torch.optim.AdamW` (judgejax's default betas/eps/weight decay), torch threads
     set to the core count XLA uses;
   - the judgejax DPO (+NLL, weight 1) step on --batch/2 real preference pairs, chosen and
     rejected each padded to --seq, so a DPO step covers the same --batch x --seq tokens as an
     SFT step; reference log-probs precomputed once by `compute_reference_logps` and carried in
     the batch, as the trainer does by default. The SFT and DPO steps share one train state
     (memory), so the DPO steps start from SFT-updated weights; the timing does not depend on it.
4. TRL 1.16 `DPOTrainer.train()` with max_steps = warm-up + --steps, the same pairs in the same
   order (sequential sampler), --batch/2 pairs per step, max_length --seq, float32 on CPU,
   `precompute_ref_log_probs=True`, loss ["sigmoid", "sft"] with weights [1, 1] (judgejax's
   DPO + NLL), gradient checkpointing off (as judgejax's default), no saving, no eval. Its step
   time is the wall time between consecutive steps of its own loop (batch collation included).

Pairs: the LLaMA-Factory dpo_en_demo.json rows (ShareGPT turns mapped to chat messages), read,
tokenized through the chat template and truncated to --seq tokens by judgejax's data pipeline;
only pairs whose prompt + longer completion fills --seq tokens are used, so every batch of both
systems is --seq long. TRL's own tokenization of the same rows is checked to give the same
token ids, and its precomputed reference log-probs are compared with judgejax's.

Same work: the judgejax SFT step and the torch loop start from the same weights on the same
batch, so their step-1 losses must agree. Numbers are medians of the timed steps. The machine
may be shared: compare the ratios of one run.
"""

from __future__ import annotations

import argparse
import gc
import math
import os
import pathlib
import sys
import tempfile
import time
from functools import partial

from judgejax.host import tune_process

tune_process()  # the process settings the judgejax command runs with; may re-execute this script

import jax  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402
from jax.sharding import NamedSharding, PartitionSpec as P  # noqa: E402
from tqdm import tqdm  # noqa: E402

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import bench_common as bc  # noqa: E402
from bench_train_profile import profile_jax, profile_torch  # noqa: E402
from bench_train_data import DEFAULT_DATA, load_full_pairs, sft_batch_of  # noqa: E402
from bench_train_report import WARMUP, report  # noqa: E402
from bench_train_torch import OPTIM, TorchLoop, torch_resident_bytes  # noqa: E402
from bench_train_trl import run_trl  # noqa: E402

from judgejax.train.config import TrainSection  # noqa: E402
from judgejax.data.config import DataConfig  # noqa: E402
from judgejax.data.pipeline import preference_dataset  # noqa: E402
from judgejax.model.build import params_of  # noqa: E402
from judgejax.model.checkpoint import load_model  # noqa: E402
from judgejax.model.config import REMAT_POLICIES, ModelConfig  # noqa: E402
from judgejax.fetch.smollm2 import smollm2_path  # noqa: E402
from judgejax.sharding import MeshConfig, make_mesh  # noqa: E402
from judgejax.tokenizer import load_tokenizer  # noqa: E402
from judgejax.train.batches import global_batch, seq_batch_keys  # noqa: E402
from judgejax.train.optimizer import make_optimizer  # noqa: E402
from judgejax.train.reference import compute_reference_logps  # noqa: E402
from judgejax.train.state import abstract_state, create_state, shardings_of  # noqa: E402
from judgejax.train.steps import DPOConfig, make_dpo_step, make_sft_step  # noqa: E402

DPO = DPOConfig()  # sigmoid, beta 0.1, NLL weight 1: the recipe's DPO + NLL
MEMORY_SHARE = 0.7  # of MemAvailable that --accum auto lets the run plan for (others may share the machine)


def _log(message: str) -> None:
    bc.log("bench_train", message)


# ----------------------------------------------------------------------------------------------
# judgejax


class JaxSteps:
    """judgejax's SFT and DPO steps set up as `judgejax.train.loop.run` sets them up, sharing one
    donated train state. Running a step places the host batch as [accum, rows/accum, T], runs
    the jitted step and fetches its metrics: the loop's work per step."""

    def __init__(self, cfg: ModelConfig, tx: optax.GradientTransformation, mesh, accum: int, chunk: int):
        self.mesh, self.accum = mesh, accum
        self.state = abstract_state(cfg, mesh, tx)
        shardings = shardings_of(self.state)
        jit = partial(jax.jit, in_shardings=(shardings, None),
                      out_shardings=(shardings, NamedSharding(mesh, P())), donate_argnums=0)
        self.jitted = {"sft": jit(make_sft_step(cfg, tx, chunk)), "dpo": jit(make_dpo_step(cfg, tx, DPO, chunk))}
        self.seconds: dict[str, list[float]] = {"sft": [], "dpo": []}
        self.losses: dict[str, list[float]] = {"sft": [], "dpo": []}

    def abstract_batch(self, host: dict[str, np.ndarray]) -> dict[str, jax.ShapeDtypeStruct]:
        return {k: jax.ShapeDtypeStruct((self.accum, v.shape[0] // self.accum, *v.shape[1:]), v.dtype)
                for k, v in host.items() if k in seq_batch_keys(host)}

    def temp_bytes(self, kind: str, host: dict[str, np.ndarray]) -> int:
        """Bytes of temporaries XLA plans for the compiled step (its activations and gradients)."""
        compiled = self.jitted[kind].lower(self.state, self.abstract_batch(host)).compile()
        return compiled.memory_analysis().temp_size_in_bytes

    def start(self, params, tx: optax.GradientTransformation) -> None:
        self.state = create_state(params, tx)

    def place(self, host: dict[str, np.ndarray]) -> dict[str, jax.Array]:
        return global_batch(self.mesh, {k: host[k] for k in seq_batch_keys(host)}, self.accum)

    def run(self, kind: str, host: dict[str, np.ndarray]) -> float:
        began = time.perf_counter()
        self.state, metrics = self.jitted[kind](self.state, self.place(host))
        metrics = jax.device_get(metrics)
        seconds = time.perf_counter() - began
        self.seconds[kind].append(seconds)
        self.losses[kind].append(float(metrics["loss"]))
        return seconds


def state_bytes(state) -> int:
    return sum(math.prod(x.shape) * np.dtype(x.dtype).itemsize for x in jax.tree.leaves(state))


def mem_available() -> int:
    """MemAvailable of /proc/meminfo, in bytes."""
    for line in pathlib.Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) * 1024
    raise SystemExit("/proc/meminfo has no MemAvailable; pass --accum")


def choose_accum(cfg, tx, mesh, chunk, sft_host, dpo_host, candidates, torch_bytes: int) -> tuple[int, dict]:
    """The first of `candidates` whose judgejax step temporaries (the larger of SFT and DPO) fit
    in MEMORY_SHARE of MemAvailable beside the resident states: the judgejax train state and the
    torch model's parameters, gradients and AdamW moments (torch's own activations live at other
    times and were measured smaller than judgejax's). The last candidate if none fits."""
    available = mem_available()
    temps = {}
    for accum in candidates:
        steps = JaxSteps(cfg, tx, mesh, accum, chunk)
        temps[accum] = max(steps.temp_bytes("sft", sft_host), steps.temp_bytes("dpo", dpo_host))
        resident = state_bytes(steps.state) + torch_bytes
        fits = temps[accum] + resident <= MEMORY_SHARE * available
        _log(f"accum {accum}: judgejax step temporaries {temps[accum] / 1e9:.1f} GB + resident "
             f"{resident / 1e9:.1f} GB {'fit' if fits else 'do not fit'} in {MEMORY_SHARE:.0%} of "
             f"{available / 1e9:.1f} GB available")
        if fits:
            break
    return accum, {"temps": temps, "available": available}


def dpo_batches(cfg: ModelConfig, params, examples, seq: int, pairs: int, mesh, chunk: int):
    """Host DPO batches of `pairs` pairs in order, with the reference log-probs precomputed by
    judgejax's reference pass (the starting weights are the reference). Returns the batches,
    the reference table and the seconds of the reference pass (compile included)."""
    data = DataConfig(path="", max_length=seq, bucket_lengths=(seq,), global_batch_size=pairs, shuffle=False)
    began = time.perf_counter()
    table = compute_reference_logps(cfg, params, examples, data, mesh, chunk)
    seconds = time.perf_counter() - began
    dataset = preference_dataset(examples, data)
    batches = []
    for i in range(len(dataset)):
        local = dataset[i]
        index = local["row_index"]
        batches.append({**local, "ref_chosen_logps": table["chosen"][index], "ref_rejected_logps": table["rejected"][index]})
    return batches, table, seconds


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=3, help="timed steps per system, after 1 warm-up step (default 3)")
    parser.add_argument("--seq", type=int, default=512, help="sequence length of every row (default 512)")
    parser.add_argument("--batch", type=int, default=8,
                        help="SFT rows per step; DPO steps take batch/2 pairs, the same tokens (default 8, even)")
    parser.add_argument("--accum", default="auto",
                        help="micro-batches per step, a divisor of batch/2, for every system; auto: the smallest "
                             "whose judgejax step fits in the available memory (default auto)")
    parser.add_argument("--compute-dtype", choices=("float32", "bfloat16"), default="float32",
                        help="judgejax's matmul dtype (parameters and AdamW stay float32; torch and TRL run float32)")
    parser.add_argument("--remat", choices=REMAT_POLICIES, default="names",
                        help="judgejax's remat policy (default names: on this CPU faster than none, which stores more "
                             "and writes it into the layer scan's stacks, and than full, which runs the forward twice)")
    parser.add_argument("--skip-torch", action="store_true", help="leave out the transformers + torch loop")
    parser.add_argument("--skip-trl", action="store_true", help="leave out TRL's DPOTrainer")
    parser.add_argument("--profile", action="store_true",
                        help="also time the parts of one SFT step (decoder forward, forward with the LM head, "
                             "forward + backward, optimizer update) for judgejax and torch, and print XLA's FLOP "
                             "count of the compiled step")
    parser.add_argument("--data", default=DEFAULT_DATA,
                        help="preference pairs: LLaMA-Factory ShareGPT json, or any file judgejax's preference "
                             f"reader takes (prompt, chosen, rejected) (default {DEFAULT_DATA})")
    args = parser.parse_args(argv)
    if args.steps < 1 or args.seq < 8 or args.batch < 2 or args.batch % 2:
        parser.error("--steps must be >= 1, --seq >= 8, --batch an even number >= 2")
    if args.accum != "auto":
        if not args.accum.isdigit() or int(args.accum) < 1 or (args.batch // 2) % int(args.accum):
            parser.error(f"--accum {args.accum}: give auto or a divisor of batch/2 = {args.batch // 2}")
        args.accum = int(args.accum)
    return args


def main(argv=None) -> None:
    args = parse_args(argv)
    rounds = WARMUP + args.steps
    pairs = args.batch // 2
    threads = bc.cores()
    path = smollm2_path()
    tokenizer = load_tokenizer(path)
    res: dict = {"xla_flags": os.environ.get("XLA_FLAGS", ""), "glibc_tunables": os.environ.get("GLIBC_TUNABLES", "")}

    with tempfile.TemporaryDirectory(prefix="bench_train-") as scratch_dir:
        scratch = pathlib.Path(scratch_dir)
        rows, examples = load_full_pairs(pathlib.Path(args.data), tokenizer, args.seq, rounds * pairs, scratch)
        sft_host = sft_batch_of(examples, args.batch, args.seq)

        import torch  # threads set before the first torch matmul

        torch.set_num_threads(threads)
        _log("measuring the matmul peak")
        jax_peaks, torch_peaks = [bc.jax_matmul_peak()], [bc.torch_matmul_peak()]

        cfg = ModelConfig.from_hf_dir(path, param_dtype="float32", compute_dtype=args.compute_dtype, remat=args.remat)
        chunk = TrainSection(output_dir="").logprob_chunk
        tx = make_optimizer(OPTIM, rounds)
        mesh = make_mesh(MeshConfig(data=1), devices=jax.devices()[:1])
        dpo_shape = preference_dataset(examples[:pairs], DataConfig(
            path="", max_length=args.seq, bucket_lengths=(args.seq,), global_batch_size=pairs, shuffle=False))[0]
        dpo_shape.update(ref_chosen_logps=np.zeros(pairs, np.float32), ref_rejected_logps=np.zeros(pairs, np.float32))
        torch_bytes = 0 if args.skip_torch else torch_resident_bytes(cfg)
        auto = args.accum == "auto"
        candidates = [a for a in range(1, pairs + 1) if pairs % a == 0] if auto else [args.accum]
        accum, res["memory"] = choose_accum(cfg, tx, mesh, chunk, sft_host, dpo_shape, candidates, torch_bytes)
        res["accum"], res["accum_how"] = accum, ("chosen by --accum auto" if auto else "--accum")

        params = params_of(load_model(path, mesh, param_dtype="float32", compute_dtype=args.compute_dtype, remat=args.remat))
        _log("judgejax reference pass (precomputed reference log-probs)")
        res["dpo_batches"], res["reference"], res["ref_seconds"] = dpo_batches(
            cfg, params, examples, args.seq, pairs, mesh, chunk)
        jx = JaxSteps(cfg, tx, mesh, accum, chunk)
        jx.start(params, tx)  # the state owns (and the first step donates) the parameters
        del params
        systems = [("judgejax SFT", lambda i: jx.run("sft", sft_host))]
        loop = None
        if not args.skip_torch:
            loop = TorchLoop(path, threads, accum)
            micro_batches = loop.micro_batches(sft_host)
            systems.append(("torch", lambda i: loop(micro_batches)))
        systems.append(("judgejax DPO", lambda i: jx.run("dpo", res["dpo_batches"][i])))

        res["round_peaks"], res["loads"] = [], [os.getloadavg()[0]]
        bar = tqdm(range(rounds), desc="interleaved steps (first round compiles)", file=sys.stderr)
        for i in bar:
            times = {name: run(i) for name, run in systems}
            res["round_peaks"].append(bc.jax_matmul_peak(repeats=3))
            res["loads"].append(os.getloadavg()[0])
            bar.set_postfix({name: f"{s:.1f}s" for name, s in times.items()})
        res.update(jax=jx, torch=loop)

        if args.profile:
            res["profile"] = {"jax": profile_jax(cfg, chunk, jx, tx, sft_host)}
            if loop is not None:
                res["profile"]["torch"] = profile_torch(loop, sft_host)
        jx.state = None  # free the judgejax and torch states before TRL loads its own model
        if loop is not None:
            loop.model = loop.optimizer = None
        gc.collect()

        if not args.skip_trl:
            _log("TRL DPOTrainer")
            res["trl"] = run_trl(path, tokenizer, rows, examples, args.seq, pairs, accum, rounds, threads, scratch,
                                 OPTIM, DPO)

        _log("measuring the matmul peak again")
        jax_peaks.append(bc.jax_matmul_peak())
        torch_peaks.append(bc.torch_matmul_peak())
    res["jax_peak"], res["torch_peak"] = max(jax_peaks), max(torch_peaks)
    print(report(args, cfg, res))


if __name__ == "__main__":
    main()
