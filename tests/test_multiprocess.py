"""Multi-process runs on one CPU machine: 2 processes x 4 CPU devices joined through
jax.distributed on localhost (gloo collectives) train exactly like 1 process x 8 devices, their
collective checkpoint resumes in a 1-process run, and a process that never joins is an error
naming it, not a hang."""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys
import threading
import time

import portpicker
import pytest
import yaml

from judgejax.train.config import load_config
from judgejax.distributed import DistributedInitError, Processes, expected_processes, initialize, roll_call
from judgejax.train.loop import run
from tiny_run import make_tiny_model, write_sft

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _config(tmp_path: pathlib.Path) -> pathlib.Path:
    model = make_tiny_model(tmp_path / "model")
    data = write_sft(tmp_path / "sft.jsonl", rows=32)
    config = {
        "model": {"path": str(model)},
        "data": {"path": str(data), "max_length": 64, "bucket_lengths": [32, 64], "global_batch_size": 8},
        "train": {"output_dir": str(tmp_path / "unused"), "save_every": 100},
        # A constant learning rate, so a run cut at step 2 and resumed follows the same schedule.
        "optim": {"learning_rate": 1.0e-2, "schedule": "constant"},
        # Parameters sharded over all 8 devices, i.e. across both processes.
        "mesh": {"data": 1, "fsdp": 8, "tensor": 1},
    }
    path = tmp_path / "sft.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def _process_env(port: int, process_id: int, num_processes: int = 2, timeout_s: int = 120) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("XLA_FLAGS", None)  # conftest's 8 devices are for this process only
    env.update(JAX_PLATFORMS="cpu", JAX_NUM_CPU_DEVICES="4", JUDGEJAX_COORDINATOR=f"127.0.0.1:{port}",
               JUDGEJAX_NUM_PROCESSES=str(num_processes), JUDGEJAX_PROCESS_ID=str(process_id),
               JUDGEJAX_INIT_TIMEOUT=str(timeout_s), PYTHONPATH=str(ROOT))
    return env


def _start_cli(argv: list[str], env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "judgejax.cli", *argv], env=env, cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _losses(run_dir: pathlib.Path) -> dict[int, dict]:
    return {r["step"]: r for r in map(json.loads, (run_dir / "metrics.jsonl").read_text().splitlines())}


def test_two_processes_train_like_one_and_their_checkpoint_resumes_in_one(tmp_path, capsys):
    config = _config(tmp_path)
    port = portpicker.pick_unused_port()
    two = tmp_path / "two"
    procs = [_start_cli(["sft", "--config", str(config), "train.steps=2", f"train.output_dir={two}"],
                        _process_env(port, i)) for i in range(2)]
    # Meanwhile, the same 3 steps in this process (8 devices, one process).
    one = tmp_path / "one"
    run(load_config(config, ["train.steps=3", f"train.output_dir={one}"]), "sft")
    outputs = [p.communicate(timeout=300)[0] for p in procs]
    for i, (p, out) in enumerate(zip(procs, outputs)):
        assert p.returncode == 0, f"process {i} failed:\n{out[-4000:]}"
    assert "sft finished at step 2" in outputs[0] and "sft finished" not in outputs[1]  # only process 0 logs

    reference, two_process = _losses(one), _losses(two)
    assert sorted(two_process) == [1, 2]
    for step in (1, 2):
        for key in ("loss", "grad_norm", "tokens"):
            assert two_process[step][key] == pytest.approx(reference[step][key], rel=2e-6), (step, key)
    assert reference[2]["loss"] < reference[1]["loss"]  # the steps really train

    # The checkpoint the two processes wrote together resumes in one process and continues exactly.
    capsys.readouterr()
    run(load_config(config, ["train.steps=3", f"train.output_dir={two}"]), "sft")
    assert "resuming from step 2" in capsys.readouterr().err
    resumed = _losses(two)
    assert sorted(resumed) == [1, 2, 3]
    for key in ("loss", "grad_norm"):
        assert resumed[3][key] == pytest.approx(reference[3][key], rel=2e-6), key


def test_a_process_that_never_joins_stops_the_cli_with_its_id(tmp_path):
    """Process 0 of two, alone: the command exits within the timeout naming process 1."""
    config = _config(tmp_path)
    port = portpicker.pick_unused_port()
    argv = ["sft", "--config", str(config), f"train.output_dir={tmp_path / 'run'}"]
    start = time.monotonic()
    proc = _start_cli(argv, _process_env(port, 0, timeout_s=3))
    out = proc.communicate(timeout=120)[0]
    assert time.monotonic() - start < 100
    assert proc.returncode == 1 and "Traceback" not in out
    assert (f"judgejax: error: jax.distributed: process(es) [1] never joined: 2 processes expected "
            f"(JUDGEJAX_NUM_PROCESSES); coordinator 127.0.0.1:{port}; waited 3 s; joined: ['0 (this host)']") in out, \
        out[-3000:]
    assert not (tmp_path / "run").exists()  # nothing ran


def _roll_call_threads(processes: list[Processes], timeout_s: float) -> dict[int, BaseException | None]:
    results: dict[int, BaseException | None] = {}

    def call(p: Processes) -> None:
        try:
            roll_call(p, timeout_s)
            results[p.process_id] = None
        except BaseException as e:  # noqa: BLE001 - reported to the test
            results[p.process_id] = e

    threads = [threading.Thread(target=call, args=(p,)) for p in processes]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout_s + 60)
    return results


def test_roll_call_completes_when_all_join_in_any_order():
    port = portpicker.pick_unused_port()
    everyone = [Processes(f"127.0.0.1:{port}", 4, i, "test") for i in (3, 1, 2, 0)]
    start = time.monotonic()
    assert _roll_call_threads(everyone, 20) == {0: None, 1: None, 2: None, 3: None}
    assert time.monotonic() - start < 10


def test_roll_call_names_the_missing_process_on_every_host():
    port = portpicker.pick_unused_port()
    present = [Processes(f"127.0.0.1:{port}", 3, i, "test") for i in (0, 1)]
    start = time.monotonic()
    results = _roll_call_threads(present, 1.5)
    assert time.monotonic() - start < 10
    for pid in (0, 1):
        assert isinstance(results[pid], DistributedInitError)
        assert "process(es) [2] never joined" in str(results[pid])
        assert "joined: ['0 (this host)', '1 (" in str(results[pid])
    assert str(results[1]).startswith("process 1: ")


def test_a_missing_coordinator_is_named_by_the_waiting_process():
    port = portpicker.pick_unused_port()
    env = {"JUDGEJAX_NUM_PROCESSES": "2", "JUDGEJAX_PROCESS_ID": "1", "JUDGEJAX_COORDINATOR": f"127.0.0.1:{port}"}
    start = time.monotonic()
    with pytest.raises(DistributedInitError, match=rf"process 0 never answered at 127.0.0.1:{port}: 2 processes "
                                                   r"expected \(JUDGEJAX_NUM_PROCESSES\).*waited 1 s"):
        initialize(timeout_s=1.0, environ=env)
    assert time.monotonic() - start < 5


def test_expected_processes_from_each_source():
    assert expected_processes({}, metadata=lambda key: None).num_processes == 1
    explicit = {"JUDGEJAX_NUM_PROCESSES": "4", "JUDGEJAX_PROCESS_ID": "3", "JUDGEJAX_COORDINATOR": "node-a:1234"}
    assert expected_processes(explicit) == Processes("node-a:1234", 4, 3, "JUDGEJAX_NUM_PROCESSES")
    with pytest.raises(DistributedInitError, match="needs JUDGEJAX_COORDINATOR and JUDGEJAX_PROCESS_ID"):
        expected_processes({"JUDGEJAX_NUM_PROCESSES": "2"})
    with pytest.raises(DistributedInitError, match="process id 4 is outside 0..3"):
        expected_processes({**explicit, "JUDGEJAX_PROCESS_ID": "4"})
    with pytest.raises(DistributedInitError, match="'node-a' is not host:port"):
        expected_processes({**explicit, "JUDGEJAX_COORDINATOR": "node-a"})
    slurm = {"SLURM_NTASKS": "16", "SLURM_PROCID": "5", "SLURM_JOB_ID": "4097",
             "SLURM_STEP_NODELIST": "gpu[007-010,012],cpu1"}
    # JAX's SLURM port: job id mod 4096 in the top 4096 ports.
    assert expected_processes(slurm) == Processes("gpu007:61441", 16, 5, "SLURM")
    gke = {"TPU_WORKER_HOSTNAMES": "t-0.svc,t-1.svc,t-2.svc,t-3.svc", "TPU_WORKER_ID": "2"}
    assert expected_processes(gke) == Processes("t-0.svc:8482", 4, 2, "TPU_WORKER_HOSTNAMES")
    metadata = {"worker-network-endpoints": "w-0:0:10.0.0.7,w-1:1:10.0.0.8", "agent-worker-number": "1"}
    assert expected_processes({}, metadata=metadata.get) == Processes("10.0.0.7:8482", 2, 1, "Cloud TPU VM metadata")
    two_slices = {"MEGASCALE_NUM_SLICES": "2", "MEGASCALE_SLICE_ID": "1", "MEGASCALE_COORDINATOR_ADDRESS": "10.9.0.1:8080"}
    assert expected_processes(two_slices, metadata=metadata.get) == Processes(
        "10.9.0.1:8482", 4, 3, "Cloud TPU VM metadata + MEGASCALE")
    with pytest.raises(DistributedInitError, match="MEGASCALE_NUM_SLICES=2 needs MEGASCALE_SLICE_ID"):
        expected_processes({**gke, "MEGASCALE_NUM_SLICES": "2"})
    # An explicit setting wins over the cluster's own variables.
    assert expected_processes({**slurm, "JUDGEJAX_NUM_PROCESSES": "1"}).num_processes == 1


def test_a_busy_coordinator_port_is_an_error_naming_it():
    import socket

    with socket.create_server(("", 0)) as busy:
        port = busy.getsockname()[1]
        with pytest.raises(DistributedInitError, match=f"process 0 cannot listen on port {port} of this host"):
            roll_call(Processes(f"127.0.0.1:{port}", 2, 0, "test"), 1.0)
