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
import json
import math
import os
import pathlib
import shlex
import sys
import tempfile
import time
from functools import partial

import jax
import numpy as np
import optax
from jax.sharding import NamedSharding, PartitionSpec as P
from tqdm import tqdm

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import bench_common as bc  # noqa: E402
from bench_train_profile import profile_jax, profile_torch  # noqa: E402
from bench_train_trl import run_trl  # noqa: E402

from judgejax.train.config import TrainSection  # noqa: E402
from judgejax.data.columns import Columns  # noqa: E402
from judgejax.data.config import DataConfig  # noqa: E402
from judgejax.data.errors import RowRef  # noqa: E402
from judgejax.data.load import load_preference_examples  # noqa: E402
from judgejax.data.pipeline import preference_dataset  # noqa: E402
from judgejax.data.readers import read_rows  # noqa: E402
from judgejax.data.rows import PreferenceRow, parse_preference_row  # noqa: E402
from judgejax.data.stats import DataStats  # noqa: E402
from judgejax.data.tokenize import PreferenceExample  # noqa: E402
from judgejax.model.build import params_of  # noqa: E402
from judgejax.model.checkpoint import load_model  # noqa: E402
from judgejax.model.config import ModelConfig  # noqa: E402
from judgejax.model.smollm2 import smollm2_path  # noqa: E402
from judgejax.sharding import MeshConfig, make_mesh  # noqa: E402
from judgejax.tokenizer import load_tokenizer  # noqa: E402
from judgejax.train.batches import global_batch, seq_batch_keys  # noqa: E402
from judgejax.train.optimizer import OptimConfig, make_optimizer  # noqa: E402
from judgejax.train.reference import compute_reference_logps  # noqa: E402
from judgejax.train.state import abstract_state, create_state, shardings_of  # noqa: E402
from judgejax.train.steps import DPOConfig, make_dpo_step, make_sft_step  # noqa: E402

DEFAULT_DATA = "/work/shared/data/preferences/llamafactory/dpo_en_demo.json"
SHAREGPT_ROLES = {"system": "system", "human": "user", "gpt": "assistant"}
WARMUP = 1  # untimed rounds; judgejax's first call of each step compiles
OPTIM = OptimConfig()  # judgejax's defaults, mirrored by the torch loop and TRL
DPO = DPOConfig()  # sigmoid, beta 0.1, NLL weight 1: the recipe's DPO + NLL
MEMORY_SHARE = 0.7  # of MemAvailable that --accum auto lets the run plan for (others may share the machine)
TARGETS = {"torch": 1.2, "peak": 0.70, "dpo_vs_sft": 1.1, "trl": 2.0}


def _log(message: str) -> None:
    bc.log("bench_train", message)


# ----------------------------------------------------------------------------------------------
# Data


def _judgejax_rows_file(path: pathlib.Path, scratch: pathlib.Path) -> pathlib.Path:
    """A file judgejax's readers take: LLaMA-Factory ShareGPT json is rewritten as jsonl rows of
    prompt messages, chosen and rejected; any other file is used as it is."""
    if path.suffix != ".json":
        return path
    records = json.loads(path.read_text())
    if not (isinstance(records, list) and records and isinstance(records[0], dict) and "conversations" in records[0]):
        return path
    out = scratch / (path.stem + ".jsonl")
    with out.open("w") as f:
        for i, record in enumerate(records):
            try:
                prompt = [{"role": SHAREGPT_ROLES[t["from"]], "content": t["value"]} for t in record["conversations"]]
                row = {"prompt": prompt, "chosen": record["chosen"]["value"], "rejected": record["rejected"]["value"]}
            except (KeyError, TypeError) as e:
                raise SystemExit(f"{path} row {i}: not a ShareGPT preference record (missing {e})") from e
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    return out


def load_full_pairs(path: pathlib.Path, tokenizer, seq: int, needed: int, scratch: pathlib.Path):
    """The first `needed` preference pairs (rows and judgejax examples) whose prompt + longer
    completion fills `seq` tokens after judgejax's truncation."""
    source = _judgejax_rows_file(path, scratch)
    data = DataConfig(path=str(source), max_length=seq, overlong="truncate", bucket_lengths=(seq,))
    examples, stats = load_preference_examples(data, tokenizer)
    parse = partial(parse_preference_row, columns=Columns())
    rows: dict[RowRef, PreferenceRow] = {row.ref: row for row in read_rows(source, parse, "raise", DataStats())}
    full = [e for e in examples if len(e.prompt_ids) + max(len(e.chosen_ids), len(e.rejected_ids)) == seq]
    _log(f"{path}: {stats.summary()}; {len(full)} pairs fill {seq} tokens, {needed} used")
    if len(full) < needed:
        raise SystemExit(f"{path}: only {len(full)} pairs fill {seq} tokens, the run needs {needed}; "
                         "lower --steps, --batch or --seq")
    full = full[:needed]
    return [rows[e.ref] for e in full], full


def sft_batch_of(examples: list[PreferenceExample], batch: int, seq: int) -> dict[str, np.ndarray]:
    """`batch` rows of `seq` consecutive real tokens (the prompt + chosen and prompt + rejected
    conversations end to end, repeated if they are too few), every position a token to learn."""
    stream = np.concatenate([np.concatenate([e.prompt_ids, c]) for e in examples for c in (e.chosen_ids, e.rejected_ids)])
    ids = np.resize(stream, batch * (seq + 1)).reshape(batch, seq + 1).astype(np.int32)
    return {
        "tokens": ids[:, :-1],
        "targets": ids[:, 1:],
        "loss_mask": np.ones((batch, seq), np.float32),
        "positions": np.broadcast_to(np.arange(seq, dtype=np.int32), (batch, seq)).copy(),
        "segment_ids": np.ones((batch, seq), np.int32),
    }


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


# ----------------------------------------------------------------------------------------------
# transformers + torch


def torch_resident_bytes(cfg: ModelConfig) -> int:
    """float32 parameters, gradients and two AdamW moments of the torch model."""
    return 4 * 4 * bc.model_params(cfg)


class TorchLoop:
    """The plain transformers + torch training step on the same weights and batch, accumulating
    gradients over `accum` micro-batches like judgejax."""

    def __init__(self, path: pathlib.Path, threads: int, accum: int):
        import torch
        from transformers import AutoModelForCausalLM

        torch.set_num_threads(threads)
        self.torch, self.accum = torch, accum
        self.model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
        self.model.train()
        self.optimizer = torch.optim.AdamW(
            self.model.parameters(), lr=OPTIM.learning_rate, betas=(OPTIM.b1, OPTIM.b2), eps=OPTIM.eps,
            weight_decay=OPTIM.weight_decay, fused=True,
        )
        self.seconds: list[float] = []
        self.losses: list[float] = []

    def micro_batches(self, host: dict[str, np.ndarray]):
        tokens, targets = (self.torch.from_numpy(host[k]).long() for k in ("tokens", "targets"))
        return list(zip(tokens.chunk(self.accum), targets.chunk(self.accum)))

    def loss(self, tokens, targets):
        """Mean token NLL of one micro-batch over the step's micro-batches (all rows hold the
        same number of loss tokens, so the sum over micro-batches is the batch mean)."""
        logits = self.model(input_ids=tokens, use_cache=False).logits
        nll = self.torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))
        return nll / self.accum

    def update(self) -> None:
        self.torch.nn.utils.clip_grad_norm_(self.model.parameters(), OPTIM.grad_clip)
        self.optimizer.step()

    def __call__(self, micro_batches) -> float:
        began = time.perf_counter()
        total = 0.0
        for tokens, targets in micro_batches:
            loss = self.loss(tokens, targets)
            loss.backward()
            total += loss.item()
        self.update()
        self.optimizer.zero_grad(set_to_none=True)
        seconds = time.perf_counter() - began
        self.seconds.append(seconds)
        self.losses.append(total)
        return seconds


# ----------------------------------------------------------------------------------------------
# TRL


# ----------------------------------------------------------------------------------------------
# Report


def _verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def report(args, cfg: ModelConfig, res: dict) -> str:
    seq, batch, pairs, accum = args.seq, args.batch, args.batch // 2, res["accum"]
    tokens = batch * seq
    flops = bc.train_flops(cfg, batch, seq)
    peak = res["jax_peak"]
    jx = res["jax"]
    out = [f"## judgejax training throughput: SmolLM2-135M architecture, float32, seq {seq}, batch {batch}, CPU\n"]
    rows = []
    times = {"judgejax SFT": jx.seconds["sft"], "judgejax DPO": jx.seconds["dpo"]}
    if res.get("torch"):
        times["torch loop"] = res["torch"].seconds
    if res.get("trl"):
        times["TRL"] = res["trl"]["seconds"]
    med = {k: bc.median(v[WARMUP:]) for k, v in times.items()}
    best = {k: min(v[WARMUP:]) for k, v in times.items()}

    def add(name, key, what, pair_rate, loss):
        rows.append([name, what, f"{med[key]:.2f}", f"{best[key]:.2f}", f"{tokens / med[key]:,.0f}",
                     f"{pairs / med[key]:.3f}" if pair_rate else "", f"{flops / med[key] / 1e9:.1f}",
                     f"{100 * flops / med[key] / peak:.0f}%", loss])

    label = f"{batch} x {seq}"
    add("judgejax SFT step", "judgejax SFT", label, False, f"{jx.losses['sft'][0]:.5f}")
    if res.get("torch"):
        add("transformers + torch loop", "torch loop", label, False, f"{res['torch'].losses[0]:.5f}")
    add("judgejax DPO+NLL step (precomputed ref)", "judgejax DPO", f"{pairs} pairs x 2 x {seq}", True, "")
    if res.get("trl"):
        add("TRL DPOTrainer.train() (precomputed ref)", "TRL", f"{pairs} pairs x 2 x {seq}", True, "")
    header = ["system", "tokens per step", "median step s", "best step s", "tokens/s", "pairs/s", "model GFLOP/s",
              "% of JAX matmul peak", "loss at step 1 (same weights, same batch)"]
    out.append(bc.markdown_table(header, rows))

    def target(name, num, den, goal, at_least, fmt):
        if num not in med or den not in med:
            return [name, "skipped", "skipped", goal, "-"]
        by_median, by_best = med[num] / med[den], best[num] / best[den]
        if at_least:  # a throughput ratio: time of the other system over time of this one
            by_median, by_best = 1 / by_median, 1 / by_best
        ok = by_median >= TARGETS[goal] if at_least else by_median <= TARGETS[goal]
        sign = ">=" if at_least else "<="
        return [name, fmt(by_median), fmt(by_best), f"{sign} {fmt(TARGETS[goal])}", _verdict(ok)]

    ratio = lambda x: f"{x:.2f}x"  # noqa: E731
    percent = lambda x: f"{100 * x:.0f}%"  # noqa: E731
    frac_median, frac_best = flops / med["judgejax SFT"] / peak, flops / best["judgejax SFT"] / peak
    targets = [
        target("judgejax SFT tokens/s / torch loop tokens/s", "judgejax SFT", "torch loop", "torch", True, ratio),
        ["judgejax SFT model FLOP/s / measured JAX matmul peak", percent(frac_median), percent(frac_best),
         f">= {percent(TARGETS['peak'])}", _verdict(frac_median >= TARGETS["peak"])],
        target(f"judgejax DPO step time / SFT step time (same {batch} x {seq} tokens)", "judgejax DPO",
               "judgejax SFT", "dpo_vs_sft", False, ratio),
        target("judgejax DPO pairs/s / TRL DPOTrainer pairs/s", "judgejax DPO", "TRL", "trl", True, ratio),
    ]
    out.append("\n" + bc.markdown_table(["target", "measured (medians)", "measured (best steps)", "goal",
                                         "result (medians)"], targets))

    temps = ", ".join(f"accum {a}: {t / 1e9:.1f} GB" for a, t in res["memory"]["temps"].items())
    notes = [
        f"matmul peak (2048 x 2048 float32, best of 10, at the start and the end of the run): JAX jit "
        f"{peak / 1e9:.1f} GFLOP/s, torch.mm {res['torch_peak'] / 1e9:.1f} GFLOP/s",
        f"{bc.FLOPS_FORMULA}: {flops / 1e12:.3f} TFLOP per step here (P = {bc.matmul_params(cfg) / 1e6:.1f}M)",
        f"gradient accumulation: {accum} micro-batch(es) of {batch // accum} rows (SFT, torch) / {pairs // accum} "
        f"pair(s) (DPO, TRL) per step ({res['accum_how']}); XLA temporaries of the compiled judgejax step: {temps}; "
        f"MemAvailable at the start {res['memory']['available'] / 1e9:.1f} GB",
        f"steps: {WARMUP} warm-up + {args.steps} timed per system; judgejax SFT, torch and judgejax DPO "
        "interleaved step by step; TRL after them in its own loop; step seconds (warm-up first): "
        + "; ".join(f"{k} " + ", ".join(f"{x:.1f}" for x in v) for k, v in times.items()),
        f"DPO batches: {pairs} real pairs (rows whose prompt + longer completion fills {seq} tokens after "
        f"truncation), chosen and rejected each padded to {seq}: the same {batch} x {seq} tokens as an SFT step",
        f"judgejax reference pass over {len(res['dpo_batches']) * pairs} pairs (compile included): "
        f"{res['ref_seconds']:.1f} s",
        f"the same matmul after every round (best of 3), a gauge of the CPU share this run got: median "
        f"{bc.median(res['round_peaks'][WARMUP:]) / 1e9:.1f} GFLOP/s, the SFT step's model FLOP/s are "
        f"{100 * flops / med['judgejax SFT'] / bc.median(res['round_peaks'][WARMUP:]):.0f}% of it; 1-minute load average "
        f"during the rounds {min(res['loads']):.1f} to {max(res['loads']):.1f} on {bc.cores()} cores",
        f"threads: XLA CPU pool and torch.set_num_threads = {bc.cores()} cores; jax {jax.__version__}, "
        f"XLA_FLAGS={res['xla_flags']!r}",
    ]
    if res.get("trl"):
        ours = np.concatenate([res["reference"]["chosen"], res["reference"]["rejected"]]).astype(np.float64)
        theirs = np.concatenate([res["trl"]["reference"]["chosen"], res["trl"]["reference"]["rejected"]])
        notes.append(
            f"TRL: same token ids for every pair; its precomputed reference log-probs vs judgejax's: max abs diff "
            f"{np.abs(ours - theirs).max():.2e} (values about {np.abs(theirs).mean():.0f}); setup (model load, "
            f"tokenization, reference precompute) {res['trl']['setup_seconds']:.1f} s")
    out.append("\n" + "\n".join(f"- {n}" for n in notes))

    if res.get("profile"):
        out.append(f"\n### Where an SFT step's time goes (best of 2 after a warm-up call; forward and backward "
                   f"timed on one micro-batch x {accum})\n")
        jp, tp = res["profile"]["jax"]["parts"], res["profile"].get("torch", {}).get("parts", {})
        prow = []
        for name, seconds in jp.items():
            theirs = tp.get(name)
            prow.append([name, f"{seconds:.2f}", f"{theirs:.2f}" if theirs else "-",
                         f"{seconds / theirs:.2f}" if theirs else "-"])
        sft_s, torch_s = med["judgejax SFT"], med.get("torch loop")
        prow.append(["full step (median of the timed steps)", f"{sft_s:.2f}",
                     f"{torch_s:.2f}" if torch_s else "-", f"{sft_s / torch_s:.2f}" if torch_s else "-"])
        out.append(bc.markdown_table(["part", "judgejax s", "torch s", "judgejax / torch"], prow))
        xla = res["profile"]["jax"]["xla_flops"]
        out.append(f"\n- XLA cost analysis of the compiled SFT step: {xla / 1e12:.3f} TFLOP "
                   f"({xla / flops:.2f}x the formula), {res['profile']['jax']['xla_bytes'] / 1e9:.1f} GB accessed; "
                   f"XLA counts a while loop's body once, so the {cfg.num_layers} iterations of the layer scan "
                   "(and the micro-batch scan) count as one")
    command = "python tools/bench_train.py" + ("" if len(sys.argv) < 2 else " " + shlex.join(sys.argv[1:]))
    out.append(f"\nReproduce: `{command}`")
    return "\n".join(out)


# ----------------------------------------------------------------------------------------------


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=3, help="timed steps per system, after 1 warm-up step (default 3)")
    parser.add_argument("--seq", type=int, default=512, help="sequence length of every row (default 512)")
    parser.add_argument("--batch", type=int, default=8,
                        help="SFT rows per step; DPO steps take batch/2 pairs, the same tokens (default 8, even)")
    parser.add_argument("--accum", default="auto",
                        help="micro-batches per step, a divisor of batch/2, for every system; auto: the smallest "
                             "whose judgejax step fits in the available memory (default auto)")
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
    res: dict = {"xla_flags": os.environ.get("XLA_FLAGS", "")}

    with tempfile.TemporaryDirectory(prefix="bench_train-") as scratch_dir:
        scratch = pathlib.Path(scratch_dir)
        rows, examples = load_full_pairs(pathlib.Path(args.data), tokenizer, args.seq, rounds * pairs, scratch)
        sft_host = sft_batch_of(examples, args.batch, args.seq)

        import torch  # threads set before the first torch matmul

        torch.set_num_threads(threads)
        _log("measuring the matmul peak")
        jax_peaks, torch_peaks = [bc.jax_matmul_peak()], [bc.torch_matmul_peak()]

        cfg = ModelConfig.from_hf_dir(path, param_dtype="float32", compute_dtype="float32", remat="none")
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

        params = params_of(load_model(path, mesh, param_dtype="float32", compute_dtype="float32", remat="none"))
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
