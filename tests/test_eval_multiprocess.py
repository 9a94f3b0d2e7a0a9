"""Two JAX processes (CPU, gloo collectives) evaluate one shard each on their own devices; process 0
merges. The records equal a one-process run's."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap

import numpy as np

from judgejax.eval.options import EvalOptions
from judgejax.eval.run import evaluate
from test_eval_tiny_models import DATA, SUBSETS, tiny_judges  # noqa: F401  (fixture)

WORKER = textwrap.dedent("""
    import sys
    import jax
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.config.update("jax_num_cpu_devices", 2)
    port, process, model, data, out = sys.argv[1:6]
    jax.distributed.initialize(coordinator_address=f"127.0.0.1:{port}", num_processes=2, process_id=int(process),
                               initialization_timeout=60)
    from judgejax.eval.options import EvalOptions
    from judgejax.eval.run import evaluate
    summary = evaluate(EvalOptions(benchmark="rewardbench", model=model, data=data, out=out, mode="verdict-prob",
                                   both_orders=True, subsets=sys.argv[6:], limit_per_subset=1, batch_size=2))
    print("merged" if summary is not None else "not merged", jax.local_device_count())
""")


def options(model, out):
    return EvalOptions(benchmark="rewardbench", model=str(model), data=str(DATA), out=str(out), mode="verdict-prob",
                       both_orders=True, subsets=SUBSETS, limit_per_subset=1, batch_size=2)


def read_jsonl(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_two_processes_write_one_shard_each_and_process_0_merges(tiny_judges, tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    out = tmp_path / "two"
    workers = [subprocess.Popen([sys.executable, "-c", WORKER, str(port), str(i), str(tiny_judges["policy"]), str(DATA),
                                 str(out), *SUBSETS], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
               for i in range(2)]
    results = [w.communicate(timeout=240) for w in workers]
    for worker, (stdout, stderr) in zip(workers, results):
        assert worker.returncode == 0, stderr[-3000:]
    outcome = [[line for line in stdout.splitlines() if line.endswith("merged 2")] for stdout, _ in results]
    assert outcome == [["merged 2"], ["not merged 2"]], [stdout[-500:] for stdout, _ in results]
    shards = [read_jsonl(out / f"shard-{i}-of-2.jsonl") for i in range(2)]
    assert len(shards[0]) == len(shards[1]) == len(SUBSETS)

    evaluate(options(tiny_judges["policy"], tmp_path / "one"))
    merged, single = read_jsonl(out / "results.jsonl"), read_jsonl(tmp_path / "one" / "results.jsonl")
    keys = ("row", "swapped", "seeded", "prompt_hash", "verdict", "result")
    assert [tuple(r[k] for k in keys) for r in merged] == [tuple(r[k] for k in keys) for r in single]
    np.testing.assert_allclose([r["logp_a"] for r in merged], [r["logp_a"] for r in single], rtol=1e-5, atol=1e-4)
