"""What judgejax/host.py's process setting (and XLA:CPU's flush-to-zero flag) do to a training step on this CPU: the judgejax SFT
step and the transformers + torch loop (tools/bench_train.py's, same weights and batch) timed in
one child process per setting, with the page faults each step takes.

    python tools/bench_host.py                 # 8 x 512 tokens, 3 timed rounds per setting
    python tools/bench_host.py --seq 128 --batch 2 --steps 1   # a quick smoke run

Settings (each child runs with JUDGEJAX_HOST_TUNING=0 and exactly these):
- none: glibc's and XLA's defaults;
- ftz: XLA_FLAGS=--xla_cpu_ftz=true (denormals flushed to zero in XLA:CPU kernels);
- heap: GLIBC_TUNABLES with judgejax.host.MALLOC_TUNABLES (glibc keeps the memory it frees):
  what the `judgejax` command runs with;
- both: heap and ftz.
In a child, each round runs one judgejax SFT step then one torch step (1 warm-up round, whose
judgejax step compiles, then --steps timed rounds). Each step's page faults and kernel (system)
CPU seconds come from getrusage; peak RSS is the child's. Numbers are medians of the timed rounds;
the children run one after another, so compare the ratios within a row and the trend down the
table (the machine may be shared)."""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import subprocess
import sys

import bench_common as bc
from bench_train_data import DEFAULT_DATA
from judgejax.host import MALLOC_TUNABLES

XLA_CPU_FLAG = "--xla_cpu_ftz=true"  # tried, not adopted: no measured gain
HEAP = {"GLIBC_TUNABLES": ":".join(f"{k}={v}" for k, v in MALLOC_TUNABLES.items())}
SETTINGS = {"none": {}, "ftz": {"XLA_FLAGS": XLA_CPU_FLAG}, "heap": HEAP, "both": {"XLA_FLAGS": XLA_CPU_FLAG, **HEAP}}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=3, help="timed rounds per setting, after 1 warm-up round (default 3)")
    p.add_argument("--seq", type=int, default=512, help="tokens per row (default 512)")
    p.add_argument("--batch", type=int, default=8, help="rows per step (default 8)")
    p.add_argument("--data", default=DEFAULT_DATA, help="preference rows whose conversations make the batch")
    p.add_argument("--child", choices=SETTINGS, help=argparse.SUPPRESS)
    return p.parse_args(argv)


def child(args) -> dict:
    """Time the two steps in this process (run with one setting's environment)."""
    import resource
    import tempfile

    import jax
    from bench_train import JaxSteps
    from bench_train_data import load_full_pairs, sft_batch_of
    from bench_train_torch import OPTIM, TorchLoop
    from judgejax.model.build import params_of
    from judgejax.model.checkpoint import load_model
    from judgejax.model.config import ModelConfig
    from judgejax.fetch.smollm2 import smollm2_path
    from judgejax.sharding import MeshConfig, make_mesh
    from judgejax.tokenizer import load_tokenizer
    from judgejax.train.config import TrainSection
    from judgejax.train.optimizer import make_optimizer

    path = smollm2_path()
    with tempfile.TemporaryDirectory(prefix="bench_host-") as scratch:
        _, examples = load_full_pairs(pathlib.Path(args.data), load_tokenizer(path), args.seq, args.batch // 2,
                                      pathlib.Path(scratch))
    host = sft_batch_of(examples, args.batch, args.seq)
    cfg = ModelConfig.from_hf_dir(path, param_dtype="float32", compute_dtype="float32", remat="names")
    mesh = make_mesh(MeshConfig(data=1), devices=jax.devices()[:1])
    tx = make_optimizer(OPTIM, 1 + args.steps)
    steps = JaxSteps(cfg, tx, mesh, 1, TrainSection(output_dir="").logprob_chunk)
    steps.start(params_of(load_model(path, mesh, param_dtype="float32", compute_dtype="float32", remat="names")), tx)
    loop = TorchLoop(path, bc.cores(), 1)
    micro_batches = loop.micro_batches(host)
    out = {name: {"seconds": [], "faults": [], "kernel": []} for name in ("judgejax SFT", "torch")}
    for _ in range(1 + args.steps):
        for name, run in (("judgejax SFT", lambda: steps.run("sft", host)), ("torch", lambda: loop(micro_batches))):
            before = resource.getrusage(resource.RUSAGE_SELF)
            out[name]["seconds"].append(run())
            after = resource.getrusage(resource.RUSAGE_SELF)
            out[name]["faults"].append(after.ru_minflt - before.ru_minflt)
            out[name]["kernel"].append(after.ru_stime - before.ru_stime)
    out["losses"] = [steps.losses["sft"][0], loop.losses[0]]
    out["peak_rss"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return out


def main(argv=None) -> None:
    args = parse_args(argv)
    if args.child:
        print(json.dumps(child(args)))
        return
    base = {k: v for k, v in os.environ.items() if k not in ("XLA_FLAGS", "GLIBC_TUNABLES")}
    results = {}
    for name, settings in SETTINGS.items():
        bc.log("bench_host", f"setting {name}: {settings or 'defaults'}")
        cmd = [sys.executable, __file__, "--child", name, "--steps", str(args.steps), "--seq", str(args.seq),
               "--batch", str(args.batch), "--data", args.data]
        done = subprocess.run(cmd, env={**base, **settings, "JUDGEJAX_HOST_TUNING": "0"}, stdout=subprocess.PIPE,
                              text=True, check=True)
        results[name] = json.loads(done.stdout.strip().splitlines()[-1])
    def med(setting: str, system: str, key: str = "seconds") -> float:
        return bc.median(results[setting][system][key][1:])  # the timed rounds

    rows = []
    for name, res in results.items():
        jx, pt = med(name, "judgejax SFT"), med(name, "torch")
        rows.append([name, f"{jx:.2f}", f"{med('none', 'judgejax SFT') / jx:.2f}x",
                     f"{med(name, 'judgejax SFT', 'faults') / 1e3:.0f}K", f"{med(name, 'judgejax SFT', 'kernel'):.1f}",
                     f"{pt:.2f}", f"{med('none', 'torch') / pt:.2f}x", f"{med(name, 'torch', 'faults') / 1e3:.0f}K",
                     f"{med(name, 'torch', 'kernel'):.1f}", f"{pt / jx:.2f}x", f"{res['peak_rss'] / 1e9:.1f}",
                     f"{res['losses'][0]:.5f} / {res['losses'][1]:.5f}"])
    print(f"## Process settings and the SFT step: SmolLM2-135M, float32, remat names, {args.batch} x {args.seq} tokens, "
          f"{bc.cores()} CPU cores\n")
    print(bc.markdown_table(
        ["setting", "judgejax s", "speed-up vs none", "page faults / step", "kernel CPU s / step", "torch s",
         "speed-up vs none", "page faults / step", "kernel CPU s / step", "judgejax / torch (tokens/s)",
         "peak RSS GB", "step-1 loss judgejax / torch"], rows))
    print("\n" + "\n".join(f"- {name}: " + (" ".join(f"{k}={v}" for k, v in env.items()) or "glibc's and XLA's defaults")
                            for name, env in SETTINGS.items()))
    print(f"- medians of {args.steps} timed rounds after a warm-up round; one child process per setting, run in "
          "the order of the table; judgejax and torch share each child (its peak RSS holds both)")
    print(f"\nReproduce: `python tools/bench_host.py --steps {args.steps}`")


if __name__ == "__main__":
    main()
