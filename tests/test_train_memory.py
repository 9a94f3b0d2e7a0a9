"""Micro-batches sized to a memory budget (judgejax/train/memory.py): the choice from XLA's plan,
the same training with the micro-batches it picks, and the one-line error before the first step
when even one row does not fit."""

from __future__ import annotations

import dataclasses
import json
import re
import subprocess
import sys

import numpy as np
import pytest
import yaml

from judgejax.budget import GB, MemoryBudgetError
from judgejax.sharding import MeshConfig
from judgejax.train.loop import run
from judgejax.train.memory import accum_options, choose_accum
from test_train_loop import config, losses
from tiny_run import make_tiny_model, write_sft


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny")
    # 4 KV heads: the tensor axis of a (data 2, tensor 4) mesh, whose micro-batches have 8, 4 or 2 rows
    return make_tiny_model(root / "model", num_key_value_heads=4), write_sft(root / "sft.jsonl")


class FakeCompiled:
    """A compiled step whose plan is 2 GB of state and temporaries of 1 GB plus 1 GB per row
    (counted twice: the next call's beside this one's)."""

    def __init__(self, rows: int):
        self.rows = rows

    def memory_analysis(self):
        return dataclasses.make_dataclass("M", ["argument_size_in_bytes", "output_size_in_bytes",
                                                "alias_size_in_bytes", "temp_size_in_bytes"])(
            int(2 * GB), int(2 * GB), int(2 * GB), int((1 + self.rows) * GB))


def test_accum_options_divide_rows_over_devices():
    assert accum_options(8, 1, 1) == [1, 2, 4, 8]
    assert accum_options(8, 2, 2) == [2, 4]
    assert accum_options(12, 1, 2) == [1, 2, 3, 6]


def test_choose_accum_takes_the_largest_micro_batch_that_fits(monkeypatch):
    monkeypatch.setattr("jax.local_device_count", lambda: 1)
    compiled: list[int] = []

    def compile_for(accum):
        compiled.append(accum)
        return FakeCompiled(16 // accum)

    logged: list[str] = []
    choose = lambda budget: choose_accum(compile_for, 16, [1, 2, 4, 8, 16], int(budget * GB), "test", "step",  # noqa: E731
                                         logged.append)[0]
    # micro-batches of 16 rows plan 2 + 2 x 17 = 36 GB (temporaries twice), 8: 20, 4: 12, 2: 8, 1: 6
    assert choose(40) == 1 and compiled == [1]
    compiled.clear()
    assert choose_accum(compile_for, 16, [1, 2, 4, 8, 16], int(12 * GB), "test", "step", logged.append) == (4, 12 * GB)
    assert compiled == [1, 4]  # 8 rows: 2 + 34 / 2 GB predicted, not compiled; 4 rows: 10.5 predicted, 12 planned
    assert "4 micro-batch(es) of 4 row(s)" in logged[-1] and "12 GB of the 12 GB budget" in logged[-1]
    compiled.clear()
    assert choose(11) == 8 and compiled == [1, 4, 8]  # 4 rows predicted to fit but do not: 2 rows do
    compiled.clear()
    with pytest.raises(MemoryBudgetError, match=r"step: one micro-batch of 1 row\(s\) needs 6 GB .* budget of 5.5 GB "
                                                r"\(test\); lower data.max_length, set model.remat=full, or raise "
                                                r"train.memory_budget"):
        choose(5.5)
    assert compiled == [1, 16]


def _tried(text: str) -> dict[int, float]:
    """Rows -> GB of the 'tried' list of the sizing's log line or error."""
    tried = re.search(r"tried ([^)]*?)(\)|$)", text, re.M).group(1)
    return {int(rows): float(gb) for rows, gb in re.findall(r"(\d+) rows: ([\d.e+-]+) GB", tried)}


def test_a_budget_below_one_row_stops_before_the_first_step_with_one_line(tiny, tmp_path):
    model, sft = tiny
    cfg = config(model, sft, tmp_path / "run", epochs=1, lr=1e-2)
    raw = {"model": {"path": str(model)}, "data": dataclasses.asdict(cfg.data),
           "train": {"output_dir": str(tmp_path / "run"), "memory_budget": 1e-6}, "mesh": {"data": 2, "tensor": 4}}
    path = tmp_path / "sft.yaml"
    path.write_text(yaml.safe_dump(raw))
    done = subprocess.run([sys.executable, "-m", "judgejax.cli", "sft", "--config", str(path)],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 1
    last = done.stderr.strip().splitlines()[-1]
    assert re.fullmatch(r"judgejax: error: sft step \(8 rows of up to 64 tokens\): one micro-batch of 2 row\(s\) "
                        r"needs [\d.e+-]+ GB .* more than the budget of 1e-06 GB \(train.memory_budget=1e-06 GB\); "
                        r"lower data.max_length, set model.remat=full, or raise train.memory_budget", last), last
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "run" / "metrics.jsonl").exists() and not (tmp_path / "run" / "checkpoints").exists()


def test_micro_batches_chosen_for_a_budget_train_as_one_batch(tiny, tmp_path, capfd):
    model, sft = tiny
    mesh = MeshConfig(data=2, tensor=4)  # micro-batches of 8, 4 or 2 rows
    whole = dataclasses.replace(config(model, sft, tmp_path / "whole", epochs=2, lr=1e-2), mesh=mesh)
    run(whole, "sft")
    with pytest.raises(MemoryBudgetError) as error:
        run(dataclasses.replace(whole, train=dataclasses.replace(whole.train, output_dir=str(tmp_path / "x"),
                                                                 memory_budget=1e-6)), "sft")
    plans = _tried(str(error.value))  # 8 and 2 rows
    assert plans[8] > plans[2]
    budget = (plans[8] + plans[2]) / 2
    split = dataclasses.replace(whole, train=dataclasses.replace(whole.train, output_dir=str(tmp_path / "split"),
                                                                 memory_budget=budget))
    capfd.readouterr()
    run(split, "sft")
    chosen = re.search(r"(\d) micro-batch\(es\) of (\d) row", capfd.readouterr().err)
    assert chosen and int(chosen.group(1)) in (2, 4) and int(chosen.group(1)) * int(chosen.group(2)) == 8
    np.testing.assert_allclose(losses(tmp_path / "split"), losses(tmp_path / "whole"), rtol=2e-5)
    first = [json.loads(line) for line in (tmp_path / "split" / "metrics.jsonl").read_text().splitlines()][0]
    assert first["grad_norm"] > 0


def test_the_loop_runs_the_probed_program_not_a_second_compile(tiny, tmp_path, monkeypatch):
    """jit does not reuse a program compiled through `lower`: steps of the probed shapes must call
    the probe's program, so the jitted step is never called when every batch has those shapes."""
    from judgejax.train import setup

    calls: list[int] = []
    real = setup.jit_train_step

    class Counting:
        def __init__(self, jitted):
            self.jitted = jitted

        def lower(self, *args):
            return self.jitted.lower(*args)

        def __call__(self, *args):
            calls.append(1)
            return self.jitted(*args)

    monkeypatch.setattr(setup, "jit_train_step", lambda *a, **k: Counting(real(*a, **k)))
    model, sft = tiny
    run(config(model, sft, tmp_path / "probed", epochs=2, lr=1e-2), "sft")  # one bucket length: 64
    assert calls == [] and len(losses(tmp_path / "probed")) > 1
