"""Every program a run executes compiles for a TPU slice with the real TPU compiler (libtpu, on
this CPU host): the SFT and DPO(+NLL) steps, the reference pass and the sampler, with splash
attention lowered to Mosaic kernels; XLA's bytes per chip against the planner's; the launcher
refuses a run that does not fit before creating anything."""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys

import pytest
import yaml

from judgejax.launch.preflight import plan_command
from judgejax.model.config import ModelConfig
from judgejax.plan.chips import parse_slice
from judgejax.plan.compile import compile_program
from judgejax.plan.memory import plan_memory
from judgejax.plan.programs import sampler_program, training_programs
from judgejax.plan.topology import TopologyError, chip_grid, topology, tpu_devices
from judgejax.platforms import skip_absent_tpu
from judgejax.sharding import MeshConfig, make_mesh
from judgejax.train.config import load_config

ROOT = pathlib.Path(__file__).resolve().parents[1]
SLICE = parse_slice("v5p-8")  # 4 chips, one host
# Small, but in TPU tiles (head_dim 128, sides multiples of 128), so that XLA's bytes are the
# model's and not the layout padding of toy shapes (a 64-wide model's are mostly padding).
TINY = dict(architectures=["LlamaForCausalLM"], vocab_size=1024, hidden_size=256, intermediate_size=512,
            num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=1, rms_norm_eps=1e-5,
            rope_theta=10000.0, tie_word_embeddings=False)


def run_config(tmp_path: pathlib.Path, model_dir: str, **data) -> pathlib.Path:
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(dict(
        model=dict(path=model_dir, remat="full", attention="splash"),
        data=dict(path="unused.jsonl", max_length=256, bucket_lengths=[256], global_batch_size=8, **data),
        train=dict(output_dir=str(tmp_path / "out"), grad_accum=2, logprob_chunk=256),
        mesh=dict(data=2, fsdp=2, tensor=1))))
    return path


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory) -> pathlib.Path:
    path = tmp_path_factory.mktemp("tiny")
    (path / "config.json").write_text(json.dumps(TINY))
    return path


def test_chip_grids_are_googles():
    # v5p/v4 3-D grids and v5e/v6e 2-D grids as Cloud TPU names the slices (e.g. v5p-64 = 2x4x4).
    assert [chip_grid(c, 3) for c in (4, 8, 16, 32, 64, 128, 256)] == [
        (2, 2, 1), (2, 2, 2), (2, 2, 4), (2, 4, 4), (4, 4, 4), (4, 4, 8), (4, 8, 8)]
    assert [chip_grid(c, 2) for c in (1, 4, 8, 16, 32, 64, 128, 256)] == [
        (1, 1), (2, 2), (2, 4), (4, 4), (4, 8), (8, 8), (8, 16), (16, 16)]
    assert topology(parse_slice("v5p-64"))[0] == "v5p:2x4x4"
    assert topology(parse_slice("v5litepod-8"))[0] == "v5e:2x4"
    with pytest.raises(TopologyError, match="not a TPU slice"):
        topology(parse_slice("h100-8"))


def test_a_host_without_tpu_chips_starts_jax_on_the_cpu():
    def env(**kwargs):
        environ = {k: v for k, v in kwargs.items() if k == "JAX_PLATFORMS"}
        skip_absent_tpu(environ, installed=lambda m: m in kwargs.get("modules", ("libtpu",)),
                        device_files=lambda pattern: kwargs.get("files", []))
        return environ.get("JAX_PLATFORMS")

    assert env() == "cpu"
    assert env(files=["/dev/accel0"]) is None  # a TPU VM: JAX finds its chips
    assert env(modules=()) is None  # no libtpu: nothing to skip
    assert env(modules=("libtpu", "jax_cuda12_plugin")) is None  # a GPU host chooses for itself
    assert env(JAX_PLATFORMS="tpu") == "tpu"  # the user's choice stays


def _compile_all(cfg_path, tiny_dir, stage):
    config = load_config(cfg_path)
    cfg = ModelConfig.from_hf(TINY, remat="full", attention="splash")
    mesh = make_mesh(MeshConfig(2, 2, 1), tpu_devices(SLICE))
    plan = plan_memory(cfg, config, (2, 2, 1), stage, platform="tpu")
    programs = [*training_programs(cfg, config, mesh, stage, plan), sampler_program(cfg, mesh, plan)]
    return plan, {p.name.split(" (")[0]: compile_program(p, mesh) for p in programs}


def test_sft_step_and_sampler_compile_for_tpu_with_splash_kernels(tmp_path, tiny_dir):
    plan, compiled = _compile_all(run_config(tmp_path, str(tiny_dir)), tiny_dir, "sft")
    assert set(compiled) == {"SFT step", "sampler"}
    step = compiled["SFT step"]
    # Splash attention lowered to Mosaic kernels (forward, and the backward's dq and dkv): not the
    # plain XLA ops its interpret mode would give.
    assert step.kernels >= 3
    assert compiled["sampler"].kernels >= 1  # the prefill (decoding reads the cache with XLA attention)
    # The donated state is reused: outputs alias arguments.
    assert step.alias > 0 and step.alias >= 0.9 * step.output
    # The planner's training step within [1, 1.5] x XLA's (it errs high on purpose).
    assert step.total <= plan.training <= 1.5 * step.total


def test_dpo_step_reference_pass_and_sampler_compile_for_tpu(tmp_path, tiny_dir):
    plan, compiled = _compile_all(run_config(tmp_path, str(tiny_dir)), tiny_dir, "dpo")
    assert set(compiled) == {"DPO+NLL step", "DPO reference pass", "sampler"}
    assert all(c.kernels >= 1 for c in compiled.values())
    step = compiled["DPO+NLL step"]
    assert step.total <= plan.training <= 1.5 * step.total


def test_preflight_refuses_a_run_that_does_not_fit_and_creates_nothing(tmp_path, tiny_dir, monkeypatch):
    # 4,096 rows of 2,048 tokens per step on a v5e-1's 16 GiB chip, without remat.
    config = run_config(tmp_path, str(tiny_dir))
    raw = yaml.safe_load(config.read_text())
    raw["data"].update(max_length=2048, bucket_lengths=[2048], global_batch_size=4096)
    raw["model"]["remat"] = "none"
    raw["train"]["grad_accum"] = 1
    raw["mesh"] = dict(data=1, fsdp=1, tensor=1)
    config.write_text(yaml.safe_dump(raw))
    gcloud = tmp_path / "bin" / "gcloud"
    gcloud.parent.mkdir()
    gcloud.write_text(f"#!/bin/sh\necho \"$@\" >> {tmp_path / 'gcloud-calls'}\nexit 1\n")
    gcloud.chmod(0o755)
    env = {**os.environ, "PATH": f"{gcloud.parent}:{os.environ['PATH']}"}
    done = subprocess.run([sys.executable, "launch/tpu.py", "--name", "judge", "--type", "v5e-1", "--zone", "z",
                           "--allow-dirty", "--", "judgejax", "sft", "--config", str(config)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 1
    assert "the run does not fit v5e-1" in done.stderr and "| SFT step |" in done.stderr
    assert "does not fit: SFT step needs" in done.stderr
    assert not (tmp_path / "gcloud-calls").exists()  # no queued resource created, nothing asked of gcloud


def test_preflight_checks_only_judgejax_training_runs():
    v5p = parse_slice("v5p-64")
    assert plan_command(["judgejax", "dpo", "--config", "c.yaml", "train.steps=3", "--debug"], v5p) == [
        "plan", "--config", "c.yaml", "--type", "v5p-64", "--stage", "dpo", "--compile", "train.steps=3"]
    assert plan_command(["judgejax", "eval", "rewardbench", "--model", "m"], v5p) is None
    assert plan_command(["python", "train_stub.py"], v5p) is None


def test_search_counts_the_recomputed_matmuls_and_the_micro_batches(tmp_path, tiny_dir):
    from judgejax.plan.search import accumulations, recomputed_flops

    cfg = ModelConfig.from_hf(TINY)  # D 256, 2 heads x 128, 1 KV head, F 512, 2 layers
    tokens, seq = 1000, 256
    projections = 2 * (2 * 256 * 256 + 2 * 256 * 128 + 3 * 256 * 512)  # q, o; k, v; gate, up, down
    attention = 2 * 2 * 128 * 256
    assert recomputed_flops(cfg, "none", tokens, seq) == 0
    assert recomputed_flops(cfg, "full", tokens, seq) == 2 * tokens * (projections + attention)
    assert recomputed_flops(cfg, "dots", tokens, seq) == 2 * tokens * attention
    assert recomputed_flops(cfg, "names", tokens, seq) == 2 * tokens * 2 * (256 * 256 + 512 * 256)
    # global batch 8 over data x fsdp = 4: micro-batches of 8 and 4 rows split; 2 rows would not.
    assert accumulations(load_config(run_config(tmp_path, str(tiny_dir))), 4) == [1, 2]
