"""launch/gpu.py: the SLURM batch script, run against fake `scontrol` and `srun` so that each
task's process id and coordinator reach judgejax's own multi-host start-up as intended."""

from __future__ import annotations

import json
import os
import pathlib
import stat
import subprocess
import sys

from judgejax.launch.slurm import SlurmSpec, batch_script, main

ROOT = pathlib.Path(__file__).resolve().parents[1]

# srun: run the task once per node with its SLURM_PROCID, lines prefixed "N: " as --label does.
FAKE_SRUN = f'''#!{sys.executable}
import os, subprocess, sys
args = sys.argv[1:]
assert args[:3] == ["--label", "--kill-on-bad-exit=1", "--ntasks-per-node=1"], args
for task in range(int(os.environ["SLURM_NNODES"])):
    out = subprocess.run(args[3:], env=dict(os.environ, SLURM_PROCID=str(task)), capture_output=True, text=True)
    sys.stdout.write("".join(f"{{task}}: {{line}}\\n" for line in (out.stdout + out.stderr).splitlines()))
'''
FAKE_SCONTROL = '#!/bin/sh\n[ "$1 $2 $3" = "show hostnames gpu[07-08]" ] && printf "gpu07\\ngpu08\\n"\n'
PROBE = ("from judgejax.distributed import expected_processes; import json; "
         "p = expected_processes(); print(json.dumps([p.coordinator, p.num_processes, p.process_id, p.source]))")


def _executable(path: pathlib.Path, text: str) -> None:
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IEXEC)


def test_batch_script_content():
    spec = SlurmSpec("judge", nodes=4, partition="gpu", account="lab", time="24:00:00", venv="/opt/venv",
                     workdir="/home/me/judgejax")
    script = batch_script(spec, ["judgejax", "sft", "--config", "configs/qwen2.5-7b.yaml", "train.output_dir=/s/a b"])
    lines = script.splitlines()
    assert lines[0] == "#!/bin/bash"
    assert [l for l in lines if l.startswith("#SBATCH")] == [
        "#SBATCH --job-name=judge", "#SBATCH --nodes=4", "#SBATCH --ntasks-per-node=1", "#SBATCH --gpus-per-node=8",
        "#SBATCH --exclusive", "#SBATCH --output=%x-%j.out", "#SBATCH --partition=gpu", "#SBATCH --account=lab",
        "#SBATCH --time=24:00:00"]
    assert "cd /home/me/judgejax" in lines and "source /opt/venv/bin/activate" in lines
    assert ('export JUDGEJAX_COORDINATOR="$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)'
            ':$((20000 + SLURM_JOB_ID % 20000))"') in lines
    assert 'export JUDGEJAX_NUM_PROCESSES="$SLURM_NNODES"' in lines
    assert lines[-1].startswith("srun --label --kill-on-bad-exit=1 --ntasks-per-node=1 bash -c ")
    assert subprocess.run(["bash", "-n"], input=script, text=True).returncode == 0


def test_the_script_wires_the_coordinator_and_process_ids(tmp_path):
    """Two nodes gpu07, gpu08, job 12345: both tasks see coordinator gpu07:32345, 2 processes,
    and their own id, read by judgejax.distributed as a real run would."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    _executable(bin_dir / "srun", FAKE_SRUN)
    _executable(bin_dir / "scontrol", FAKE_SCONTROL)
    script = batch_script(SlurmSpec("probe", nodes=2, workdir=str(ROOT)), [sys.executable, "-c", PROBE])
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "SLURM_JOB_NODELIST": "gpu[07-08]", "SLURM_NNODES": "2",
           "SLURM_JOB_ID": "12345", "SLURM_NTASKS": "2", "PYTHONPATH": str(ROOT)}
    done = subprocess.run(["bash", "-c", script], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    tasks = {line.split(": ", 1)[0]: json.loads(line.split(": ", 1)[1]) for line in done.stdout.splitlines()}
    assert tasks == {"0": ["gpu07:32345", 2, 0, "JUDGEJAX_NUM_PROCESSES"],
                     "1": ["gpu07:32345", 2, 1, "JUDGEJAX_NUM_PROCESSES"]}


def test_dry_run_prints_the_script_and_submits_nothing(tmp_path, capsys):
    script = tmp_path / "job.sbatch"
    assert main(["--nodes", "2", "--job-name", "judge", "--script", str(script), "--dry-run", "--",
                 "judgejax", "sft", "--config", "c.yaml"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("#!/bin/bash\n#SBATCH --job-name=judge\n#SBATCH --nodes=2\n")
    assert out.rstrip().endswith(f"+ sbatch {script}") and not script.exists()


def test_submit_writes_the_script_and_reports_the_job(tmp_path, capsys, monkeypatch):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    _executable(bin_dir / "sbatch", f'#!/bin/sh\necho "$@" > {tmp_path}/sbatch.args\necho "Submitted batch job 4242"\n')
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    script = tmp_path / "job.sbatch"
    assert main(["--nodes", "3", "--script", str(script), "--", "judgejax", "dpo", "--config", "d.yaml"]) == 0
    assert "submitted job 4242: 3 nodes x 8 GPUs" in capsys.readouterr().out
    assert (tmp_path / "sbatch.args").read_text().strip() == str(script)
    assert "#SBATCH --nodes=3" in script.read_text()

    _executable(bin_dir / "sbatch", '#!/bin/sh\necho "sbatch: error: invalid partition specified: nope" >&2\nexit 1\n')
    assert main(["--nodes", "1", "--script", str(script), "--", "true"]) == 1
    assert (f"command failed (exit 1): sbatch {script}\nsbatch: error: invalid partition specified: nope"
            in capsys.readouterr().err)
