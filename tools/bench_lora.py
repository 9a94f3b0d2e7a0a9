"""SFT step of full fine-tuning against LoRA in judgejax, and the transformers + PEFT LoRA loop,
on the real SmolLM2-135M-Instruct (float32) on this machine's CPU, in one run.

    python tools/bench_lora.py                       # 8 rows x 512 tokens, 3 timed steps each
    python tools/bench_lora.py --seq 128 --steps 1   # a quick smoke run

Each system runs in its own process (so each resident-set peak is its own), one after the other,
on the same batch (bench_train's: 8 rows of 512 consecutive real chat tokens of the LLaMA-Factory
pairs, loss on every token): 1 warm-up step (judgejax compiles in it), then --steps timed steps;
the figure is their median. The step-1 losses agree (LoRA's B starts at zero): the same work
(QLoRA's differs by the quantisation of its base).
- judgejax full: every parameter trained (AdamW, float32), `make_sft_step` jitted as the trainer
  jits it (donated state), remat `names`;
- judgejax LoRA: rank 16, alpha 32 on all seven projections (TRL's defaults), the base frozen and
  passed beside the adapters' state, the same step function;
- judgejax QLoRA: the same adapters on the base's projections held as NF4 codes (blocks of 64),
  dequantised inside each projection;
- transformers + PEFT: `get_peft_model(LoraConfig(r=16, lora_alpha=32, all seven projections,
  dropout 0))`, forward, cross-entropy, backward, clipping, fused AdamW over the adapters.
Memory: XLA's planned temporaries of the compiled step (judgejax), the trained state (parameters
and AdamW moments that are updated; for LoRA the frozen base too) and the process's peak resident
set (ru_maxrss). Compare the ratios of one run.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import resource
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

SYSTEMS = ("judgejax full", "judgejax LoRA", "judgejax QLoRA (NF4)", "transformers + PEFT LoRA")
RANK, ALPHA = 16, 32.0
TARGETS = ("q", "k", "v", "o", "gate", "up", "down")


def measure(system: str, seq: int, batch: int, steps: int) -> dict:
    """One system's steps, in this process."""
    from judgejax.host import tune_process
    from judgejax.platforms import skip_absent_tpu

    skip_absent_tpu()
    tune_process()
    import bench_common as bc
    from bench_train_data import DEFAULT_DATA, load_full_pairs, sft_batch_of
    from judgejax.fetch.smollm2 import smollm2_path
    from judgejax.tokenizer import load_tokenizer

    path = smollm2_path()
    with tempfile.TemporaryDirectory(prefix="bench_lora-") as scratch:
        _, examples = load_full_pairs(pathlib.Path(DEFAULT_DATA), load_tokenizer(path), seq, 4, pathlib.Path(scratch))
    host = sft_batch_of(examples, batch, seq)
    seconds, losses, extra = [], [], {}
    if system == SYSTEMS[3]:
        step = _peft_step(path, bc.cores())
        for _ in range(1 + steps):
            began = time.perf_counter()
            losses.append(step(host))
            seconds.append(time.perf_counter() - began)
        extra["state_bytes"] = step.state_bytes
    else:
        import jax

        from judgejax.model import lora
        from judgejax.model.build import params_of
        from judgejax.model.checkpoint import load_model
        from judgejax.model.config import LoraConfig, ModelConfig
        from judgejax.sharding import MeshConfig, make_mesh
        from judgejax.train.batches import global_batch
        from judgejax.train.optimizer import OptimConfig, make_optimizer
        from judgejax.train.state import abstract_state, create_state, jit_train_step, shardings_of
        from judgejax.train.steps import make_sft_step

        quantized = dict(base_quant="nf4", block_size=64) if system == SYSTEMS[2] else {}
        adapters = LoraConfig(rank=RANK, alpha=ALPHA, targets=TARGETS, **quantized) if system != SYSTEMS[0] else None
        mesh = make_mesh(MeshConfig(data=1), devices=jax.devices()[:1])
        cfg = ModelConfig.from_hf_dir(path, remat="names", lora=adapters)
        tx = make_optimizer(OptimConfig(), 1 + steps)
        base = params_of(load_model(path, mesh))
        trainable = lora.fresh_adapters(cfg, mesh) if adapters else base
        frozen = lora.frozen_base(cfg, base, mesh) if adapters else None
        abstract = abstract_state(cfg, mesh, tx)
        jitted = jit_train_step(make_sft_step(cfg, tx), shardings_of(abstract), mesh)
        with jax.set_mesh(mesh):
            compiled = jitted.lower(abstract, global_batch(mesh, host, 1), frozen).compile()
            extra["temp_bytes"] = compiled.memory_analysis().temp_size_in_bytes
            state = create_state(trainable, tx)
            extra["state_bytes"] = sum(x.nbytes for x in jax.tree.leaves((state, frozen)))
            for _ in range(1 + steps):
                began = time.perf_counter()
                state, metrics = jitted(state, global_batch(mesh, host, 1), frozen)
                losses.append(float(jax.device_get(metrics["loss"])))
                seconds.append(time.perf_counter() - began)
    timed = seconds[1:]
    return {"system": system, "seconds": bc.median(timed), "tokens_per_second": batch * seq / bc.median(timed),
            "first_loss": losses[0], "peak_rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024, **extra}


def _peft_step(path, threads: int):
    import peft
    import torch
    from transformers import AutoModelForCausalLM

    from bench_train_torch import OPTIM

    torch.set_num_threads(threads)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
    model = peft.get_peft_model(model, peft.LoraConfig(r=RANK, lora_alpha=ALPHA, lora_dropout=0.0,
                                                       target_modules=[f"{t}_proj" for t in TARGETS]))
    model.train()
    trained = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trained, lr=OPTIM.learning_rate, betas=(OPTIM.b1, OPTIM.b2), eps=OPTIM.eps,
                                  weight_decay=OPTIM.weight_decay, fused=True)

    def step(host) -> float:
        tokens, targets = (torch.from_numpy(host[k]).long() for k in ("tokens", "targets"))
        logits = model(input_ids=tokens, use_cache=False).logits
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(trained, OPTIM.grad_clip)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return float(loss.item())

    # every weight, and AdamW's two moments of each trained one
    step.state_bytes = sum(p.numel() * 4 for p in model.parameters()) + sum(2 * p.numel() * 4 for p in trained)
    return step


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seq", type=int, default=512, help="tokens per row (default 512)")
    parser.add_argument("--batch", type=int, default=8, help="rows per step (default 8)")
    parser.add_argument("--steps", type=int, default=3, help="timed steps per system after 1 warm-up (default 3)")
    parser.add_argument("--system", choices=SYSTEMS, help=argparse.SUPPRESS)  # one system, in a child process
    args = parser.parse_args(argv)
    if args.system:
        print(json.dumps(measure(args.system, args.seq, args.batch, args.steps)))
        return
    results = []
    for system in SYSTEMS:
        print(f"[bench_lora] {system} ...", file=sys.stderr, flush=True)
        child = subprocess.run([sys.executable, __file__, "--system", system, "--seq", str(args.seq),
                                "--batch", str(args.batch), "--steps", str(args.steps)],
                               capture_output=True, text=True)
        if child.returncode:
            raise SystemExit(f"{system} failed:\n{child.stderr[-3000:]}")
        results.append(json.loads(child.stdout.strip().splitlines()[-1]))
    import bench_common as bc

    full = results[0]
    rows = [[r["system"], f"{r['seconds']:.2f}", f"{r['tokens_per_second']:.0f}",
             f"{r['tokens_per_second'] / full['tokens_per_second']:.2f}",
             f"{r['temp_bytes'] / 1e9:.2f}" if "temp_bytes" in r else "n/a",
             f"{r['state_bytes'] / 1e9:.2f}", f"{r['peak_rss'] / 1e9:.2f}", f"{r['first_loss']:.4f}"] for r in results]
    command = "python tools/bench_lora.py" + ("" if (args.seq, args.batch, args.steps) == (512, 8, 3) else
                                               f" --seq {args.seq} --batch {args.batch} --steps {args.steps}")
    print(f"SmolLM2-135M-Instruct SFT step, {args.batch} x {args.seq} tokens, float32, {bc.cores()} cores "
          f"(`{command}`)\n")
    print(bc.markdown_table(["system", "step s", "tokens/s", "vs full", "XLA temporaries GB", "state GB",
                             "peak RSS GB", "step-1 loss"], rows))


if __name__ == "__main__":
    main()
