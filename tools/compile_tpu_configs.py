"""Compile every shipped TPU config for its slice with the TPU compiler on this host
(`judgejax plan --compile`) and write what it printed to results/tpu-compile/<config>.md.

    python tools/compile_tpu_configs.py                 # all six; a config already written is kept
    python tools/compile_tpu_configs.py --only qwen2.5-7b-v5p-16 --redo

Each file holds the command, the planner's table and XLA's per-chip bytes for every program the run
executes, and the wall time. The figures are XLA's buffer assignment (the compiler's plan per chip),
never timings; the wall time is this host's compile time.
"""

from __future__ import annotations

import argparse
import pathlib
import subprocess
import sys
import time

from judgejax.launch.preflight import without_noise
from judgejax.plan.memory import GIB

ROOT = pathlib.Path(__file__).resolve().parent.parent
OUT = ROOT / "results" / "tpu-compile"
# (config, slice, stage): the slice each config's header names.
CONFIGS = [
    ("qwen2.5-7b-v5p-16", "v5p-16", "sft"),
    ("qwen2.5-7b", "v5p-64", "sft"),
    ("qwen2.5-7b-dpo", "v5p-64", "dpo"),
    ("qwen2.5-32b-v5p-128", "v5p-128", "sft"),
    ("qwen2.5-32b-dpo-v5p-128", "v5p-128", "dpo"),
    ("qwen2.5-7b-lora-v5e-8", "v5e-8", "sft"),
]


def run(config: str, slice_: str, stage: str) -> tuple[int, str, float]:
    command = [sys.executable, "-m", "judgejax", "plan", "--config", f"configs/{config}.yaml", "--type", slice_,
               "--stage", stage, "--compile"]
    began = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    shown = " ".join(["judgejax", *command[3:]])
    text = f"```\n{shown}\n```\n\n```\n{without_noise(done.stdout + done.stderr)}\n```\n"
    return done.returncode, text, time.perf_counter() - began


def planned(config: str, slice_: str, stage: str) -> dict[str, float]:
    """The planner's GiB per chip for each kind of program, by today's planner (a file compiled
    before a planner change keeps XLA's figures, which do not depend on it)."""
    from judgejax.plan.chips import parse_slice
    from judgejax.plan.memory import plan_memory
    from judgejax.plan.shapes import model_shape
    from judgejax.train.config import load_config

    run = load_config(ROOT / "configs" / f"{config}.yaml")
    target = parse_slice(slice_)
    cfg, _ = model_shape(run.model.path, **run.model.numerics())
    plan = plan_memory(cfg, run, run.mesh.shape(target.chips), stage, processes=target.hosts, platform="tpu")
    return {"SFT step": plan.training, "DPO+NLL step": plan.training, "DPO reference pass": plan.scoring,
            "sampler": plan.sampling}


def summary() -> list[str]:
    """One Markdown table over every config's file: each program's XLA total per chip, the
    planner's, their ratio, the Mosaic kernels, compile time and fit."""
    lines = ["| config | slice | program | XLA GiB per chip | % of HBM | planner GiB | planner / XLA | Mosaic kernels "
             "| compile s | fits |", "|---|---|---|---|---|---|---|---|---|---|"]
    for config, slice_, stage in CONFIGS:
        path = OUT / f"{config}.md"
        rows = [line for line in path.read_text().splitlines()
                if line.startswith("| ") and not line.startswith("| program")] if path.exists() else []
        plan = planned(config, slice_, stage) if rows else {}
        for row in rows:
            name, *_, total, share, _, _, kernels, seconds, fits = (c.strip() for c in row.strip("|").split("|"))
            gib = plan[name.split(" (")[0]] / GIB
            ratio = f"{gib / float(total):.2f}" if total.replace(".", "").isdigit() else "–"
            lines.append(f"| {config} | {slice_} | {name} | {total} | {share} | {gib:.2f} | {ratio} | {kernels} | "
                         f"{seconds} | {fits} |")
        if not rows:
            lines.append(f"| {config} | {slice_} | not compiled yet | | | | | | | |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", nargs="+", metavar="CONFIG", help="only these configs (names under configs/)")
    parser.add_argument("--redo", action="store_true", help="compile again even if its file exists")
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    for config, slice_, stage in CONFIGS:
        target = OUT / f"{config}.md"
        if (args.only and config not in args.only) or (target.exists() and not args.redo):
            continue
        print(f"{config} on {slice_} ({stage}) ...", flush=True)
        status, text, seconds = run(config, slice_, stage)
        target.write_text(f"# {config} on {slice_} ({stage})\n\n{text}\nexit status {status}; "
                          f"{seconds / 60:.1f} min on this host\n")
        print(f"  exit {status} in {seconds / 60:.1f} min -> {target.relative_to(ROOT)}", flush=True)
    (OUT / "README.md").write_text("# The shipped TPU configs compiled for their slices\n\n`python tools/compile_tpu_"
                                   "configs.py` (XLA's buffer assignment per chip; one file per config beside this "
                                   "one)\n\n" + "\n".join(summary()) + "\n")


if __name__ == "__main__":
    main()
