"""tools/judge_quality_report.py with a GPU tier: the ablation table from tools/sft_data_ablation.py's
ablation.json, the GPU tier's targets met or missed from the numbers given, the machine line and
the stage times; an ablation without its tier is refused."""

from __future__ import annotations

import json
import pathlib
import sys

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent / "tools"))

import judge_quality_report  # noqa: E402

METRICS = ("accuracy", "mean_accuracy", "both_correct", "consistency", "p_verdict_a", "parse_error_rate")


def metric(value: float, half_width: float) -> dict:
    return {"value": value, "ci": [value - half_width, value + half_width]}


def judge(accuracy: float, chat: float, p_a: float) -> dict:
    overall = {m: metric(accuracy, 0.02) for m in METRICS} | {"p_verdict_a": metric(p_a, 0.03)}
    return {"score": accuracy, "num_examples": 100,
            "intervals": {"overall": overall, "groups": {"Chat": {"mean_accuracy": metric(chat, 0.05)},
                                                         "Reasoning": {"mean_accuracy": metric(0.5, 0.05)}}}}


def difference(value: float, half_width: float) -> dict:
    overall = {m: metric(value, half_width) for m in METRICS} | {"num_examples": 100, "num_clusters": 100}
    return {"rewardbench-generative": {"overall": overall}}


def pipeline_summary(dpo_minus_sft: float) -> dict:
    return {"judges": {"base": {"rewardbench-generative": judge(0.50, 0.50, 0.90)},
                       "sft": {"rewardbench-generative": judge(0.58, 0.68, 0.60)},
                       "dpo": {"rewardbench-generative": judge(0.61, 0.66, 0.52)}},
            "differences": {"sft-base": difference(0.08, 0.03), "dpo-sft": difference(dpo_minus_sft, 0.03)},
            "command": "judgejax pipeline --config configs/judge-quality-h100.yaml", "config": {},
            "seconds": {"prepare": 6.4, "sft": 41.0, "eval_dpo": None},
            "machine": {"processor": "x86_64", "cpus": 16, "jax_backend": "gpu"}}


def ablation(heldout: list[float]) -> dict:
    points = [{"fraction": f, "pairs": round(976 * f), "examples": 2 * round(976 * f), "steps": 10 * i,
               "last_loss": 0.5, "seconds": 20.0,
               "heldout": {"mean_accuracy": metric(acc, 0.04), "consistency": metric(0.3, 0.05),
                           "p_verdict_a": metric(0.5, 0.05)},
               "rewardbench": {"mean_accuracy": metric(0.55, 0.03), "consistency": metric(0.2, 0.05),
                               "p_verdict_a": metric(0.45, 0.05)}}
              for i, (f, acc) in enumerate(zip((0.125, 0.25, 0.5, 1.0), heldout), start=1)]
    return {"command": "python tools/sft_data_ablation.py --config C --out O", "mode": "generative",
            "sft_pairs": 976, "heldout_pairs": 477, "rewardbench_per_subset": 10, "points": points}


def write_inputs(tmp_path: pathlib.Path, dpo_minus_sft: float, heldout: list[float]) -> list[str]:
    run = tmp_path / "run"
    run.mkdir()
    (run / "summary.json").write_text(json.dumps(pipeline_summary(dpo_minus_sft)))
    (tmp_path / "ablation.json").write_text(json.dumps(ablation(heldout)))
    return ["--tier", f"gpu={run}", "--ablation", f"gpu={tmp_path / 'ablation.json'}",
            "--machine", "gpu=NVIDIA H100 80GB HBM3", "--out", str(tmp_path / "out")]


def target_rows(report: str) -> dict[str, list[str]]:
    section = report.split("### Targets", 1)[1]
    rows = [line.strip("|").split(" | ") for line in section.splitlines() if line.startswith("| ") and "---" not in line]
    return {cells[0].strip(): [c.strip() for c in cells[1:]] for cells in rows[1:]}


def test_gpu_tier_targets_and_ablation_table(tmp_path):
    judge_quality_report.main(write_inputs(tmp_path, dpo_minus_sft=0.03, heldout=[0.52, 0.55, 0.55, 0.61]))
    report = (tmp_path / "out" / "report.md").read_text()
    rows = target_rows(report)
    assert rows["SFT - base RewardBench both-order accuracy, paired 95% interval above 0"] == ["8.0 [5.0, 11.0]", "yes"]
    assert rows["DPO - sft RewardBench both-order accuracy, paired 95% interval above 0"] == ["3.0 [0.0, 6.0]", "no"]
    assert rows["DPO RewardBench overall both-order accuracy >= 60"] == ["61.0 [59.0, 63.0]", "yes"]
    assert rows["DPO RewardBench Chat both-order accuracy >= 70"] == ["66.0 [61.0, 71.0]", "no"]
    assert rows["DPO P(verdict=A) within 0.40-0.60"] == ["0.52 [0.49, 0.55]", "yes"]
    assert rows["Ablation: held-out both-order accuracy rises with the SFT share"][1] == "yes"
    assert "machine: NVIDIA H100 80GB HBM3, x86_64, 16 CPUs" in report
    assert "(prepare 6 s, sft 41 s)" in report
    table = report.split("### SFT data-amount ablation", 1)[1].split("### Targets", 1)[0]
    lines = [line for line in table.splitlines() if line.startswith("| ")]
    assert len(lines) == 1 + 4  # header and one row per share
    assert lines[1].startswith("| 0.125 | 122 | 244 | 10 | 0.500 | 52.0 [48.0, 56.0] | 30.0 [25.0, 35.0] | 0.50 [0.45, 0.55] |")
    assert lines[4].startswith("| 1 | 976 | 1952 | 40 |")
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["ablations"]["gpu"]["points"][3]["fraction"] == 1.0
    assert summary["machines"] == {"gpu": "NVIDIA H100 80GB HBM3"}


def test_ablation_that_falls_misses_its_target(tmp_path):
    judge_quality_report.main(write_inputs(tmp_path, dpo_minus_sft=0.05, heldout=[0.52, 0.58, 0.55, 0.61]))
    rows = target_rows((tmp_path / "out" / "report.md").read_text())
    assert rows["Ablation: held-out both-order accuracy rises with the SFT share"][1] == "no"
    assert rows["DPO - sft RewardBench both-order accuracy, paired 95% interval above 0"][1] == "yes"


def test_ablation_needs_its_tier(tmp_path, capsys):
    args = write_inputs(tmp_path, 0.03, [0.5] * 4)
    with pytest.raises(SystemExit) as exit_info:
        judge_quality_report.main(args[2:])  # --ablation gpu=... without --tier gpu
    assert exit_info.value.code == 2
    assert f"--ablation gpu={tmp_path / 'ablation.json'}: no --tier gpu" in capsys.readouterr().err
