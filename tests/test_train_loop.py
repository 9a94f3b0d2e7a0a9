"""The trainer end to end on a tiny model: it learns, and a killed run resumes exactly."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap

import pytest

from judgejax.model.config import LoraConfig  # noqa: F401 (the LoRA case's config, by name)
from judgejax.train.config import ModelSection, RunConfig, TrainSection
from judgejax.data.config import DataConfig
from judgejax.train.loop import run
from judgejax.train.optimizer import OptimConfig
from judgejax.train.steps import DPOConfig
from tiny_run import make_tiny_model, write_pref, write_sft


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny")
    return make_tiny_model(root / "model"), write_sft(root / "sft.jsonl"), write_pref(root / "pref.jsonl")


def config(model, data, out, *, epochs, lr, lora=None, **train) -> RunConfig:
    return RunConfig(
        model=ModelSection(path=str(model), lora=lora),
        data=DataConfig(path=str(data), max_length=64, bucket_lengths=(64,), global_batch_size=8, epochs=epochs),
        train=TrainSection(output_dir=str(out), **{"log_every": 1, **train}),
        optim=OptimConfig(learning_rate=lr, schedule="constant", grad_clip=0.0),
        dpo=DPOConfig(beta=0.1, nll_weight=0.0),
    )


def losses(out):
    return [json.loads(line)["loss"] for line in (out / "metrics.jsonl").read_text().splitlines()]


def test_sft_overfits_and_dpo_separates_pairs(tiny, tmp_path):
    model, sft, pref = tiny
    run(config(model, sft, tmp_path / "sft", epochs=60, lr=1e-2, save_every=1000), "sft")
    sft_losses = losses(tmp_path / "sft")
    assert sft_losses[-1] < 0.05 < sft_losses[0]
    assert (tmp_path / "sft" / "loss_curve.png").stat().st_size > 0
    assert list((tmp_path / "sft" / "tensorboard").iterdir())

    run(config(tmp_path / "sft", pref, tmp_path / "dpo", epochs=15, lr=1e-3, save_every=1000), "dpo")
    records = [json.loads(line) for line in (tmp_path / "dpo" / "metrics.jsonl").read_text().splitlines()]
    margins = [r["rewards/margins"] for r in records]
    assert records[-1]["rewards/accuracies"] == 1.0
    assert margins[-1] > margins[len(margins) // 2] > margins[0]
    assert (tmp_path / "dpo" / "reference_logps.npz").exists()


KILLER = textwrap.dedent("""
    import os, pathlib, signal, sys, time
    sys.path.insert(0, {tests!r})
    from test_train_loop import config
    from judgejax.model.config import LoraConfig
    from judgejax.train.loop import run

    def kill_after(step, metrics):
        if step == {kill_at}:
            committed = pathlib.Path({out!r}) / "checkpoints" / "2"
            deadline = time.time() + 60
            while not committed.is_dir() and time.time() < deadline:  # the async save of step 2
                time.sleep(0.05)
            os.kill(os.getpid(), signal.SIGKILL)

    run(config({model!r}, {data!r}, {out!r}, epochs=5, lr=1e-2, save_every=2, lora={lora}), "sft",
        callbacks=[kill_after])
""")


@pytest.mark.parametrize("lora", [None, "LoraConfig(rank=4, dropout=0.1)"], ids=["full", "lora"])
def test_sigkill_then_resume_gives_identical_losses(tiny, tmp_path, lora):
    """Full fine-tuning and LoRA (whose checkpoint holds the adapters and their optimizer state)."""
    model, sft, _ = tiny
    adapters = eval(lora) if lora else None
    run(config(model, sft, tmp_path / "straight", epochs=5, lr=1e-2, save_every=2, lora=adapters), "sft")
    reference = losses(tmp_path / "straight")
    assert len(reference) == 5

    script = KILLER.format(tests=os.path.dirname(__file__), kill_at=3, model=str(model), data=str(sft),
                           out=str(tmp_path / "killed"), lora=lora)
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=8"}
    proc = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    assert (tmp_path / "killed" / "checkpoints" / "2").is_dir()

    assert not (tmp_path / "killed" / "checkpoints" / "4").exists()
    run(config(model, sft, tmp_path / "killed", epochs=5, lr=1e-2, save_every=2, lora=adapters), "sft")
    assert losses(tmp_path / "killed") == reference  # bitwise: same floats, same data order


def test_damaged_latest_checkpoint_falls_back(tiny, tmp_path, capfd):
    model, sft, _ = tiny
    cfg = config(model, sft, tmp_path / "run", epochs=4, lr=1e-2, save_every=2, keep=3)
    run(cfg, "sft")
    reference = losses(tmp_path / "run")
    # Truncate the biggest array file of the latest checkpoint (step 4), then extend the run.
    latest = tmp_path / "run" / "checkpoints" / "4" / "state"
    victim = max((p for p in latest.rglob("*") if p.is_file()), key=lambda p: p.stat().st_size)
    victim.write_bytes(victim.read_bytes()[: victim.stat().st_size // 3])
    longer = config(model, sft, tmp_path / "run", epochs=5, lr=1e-2, save_every=2, keep=3)
    run(longer, "sft")
    err = capfd.readouterr().err
    assert "checkpoint" in err and "damaged" in err and "resuming from step 2" in err
    assert losses(tmp_path / "run")[:2] == reference[:2]


def test_sigterm_saves_and_stops_unfinished(tiny, tmp_path):
    """SIGTERM (TPU preemption notice) saves the current step and raises, so nothing downstream
    mistakes the stopped run for a finished one; rerunning finishes it."""
    from judgejax.train.loop import Preempted

    model, sft, _ = tiny

    def sigterm_at_2(step, metrics):
        if step == 2:
            os.kill(os.getpid(), signal.SIGTERM)

    cfg = config(model, sft, tmp_path / "run", epochs=4, lr=1e-2, save_every=100)
    with pytest.raises(Preempted, match="saved step 2 of 4"):
        run(cfg, "sft", callbacks=[sigterm_at_2])
    assert (tmp_path / "run" / "checkpoints" / "2").is_dir()
    run(cfg, "sft")
    assert len(losses(tmp_path / "run")) == 4


def test_metrics_fetched_every_n_steps_are_the_same_metrics(tiny, tmp_path):
    """log_every only changes when the loop waits on the device: every step is still logged, with
    the same losses, and the callbacks see the steps in order."""
    model, sft, _ = tiny
    run(config(model, sft, tmp_path / "each", epochs=5, lr=1e-2, save_every=100), "sft")
    seen = []
    run(config(model, sft, tmp_path / "every3", epochs=5, lr=1e-2, save_every=100, log_every=3), "sft",
        callbacks=[lambda step, metrics: seen.append((step, metrics["loss"]))])
    assert losses(tmp_path / "every3") == losses(tmp_path / "each")
    assert seen == list(enumerate(losses(tmp_path / "each"), start=1))
