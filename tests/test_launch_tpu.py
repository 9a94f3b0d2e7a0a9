"""launch/tpu.py: gcloud command lines, dry runs, and the whole create -> ship -> run ->
preemption -> recreate -> resume flow against a fake `gcloud` on PATH (tests/fake_gcloud.py: a
real subprocess boundary that simulates slow provisioning, a failed worker and preemption)."""

from __future__ import annotations

import json
import os
import pathlib
import shlex
import shutil
import stat
import subprocess
import sys

import pytest

from judgejax.launch.remote import pinned_requirements, run_script, setup_script
from judgejax.launch.tpu import TpuSpec, create_command, main, scp_command, ssh_command
from judgejax.plan.chips import parse_slice

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parent

# A stand-in for a training run: resumes from the newest step_N file in its checkpoint folder
# (written by worker 0, like a collective checkpoint on the bucket) and trains to `total`.
STUB = '''import os, pathlib, sys, time
out, total = pathlib.Path(sys.argv[1]), int(sys.argv[2])
out.mkdir(parents=True, exist_ok=True)
done = sorted(int(p.name.split("_")[1]) for p in out.glob("step_*"))
start = done[-1] if done else 0
print(f"resuming from step {start}" if start else "starting", flush=True)
for step in range(start + 1, total + 1):
    time.sleep(1.0)
    if os.environ["FAKE_WORKER_ID"] == "0":
        (out / f"step_{step}").touch()
    print(f"saved step {step}", flush=True)
print("done", flush=True)
'''


def _executable(path: pathlib.Path, text: str) -> None:
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IEXEC)


@pytest.fixture
def gcloud(tmp_path, monkeypatch) -> pathlib.Path:
    """The fake gcloud's folder; scenario.json is written by each test."""
    root = tmp_path / "gcloud"
    (root / "bin").mkdir(parents=True)
    _executable(root / "bin" / "gcloud", f'#!/bin/sh\nexec {sys.executable} {HERE / "fake_gcloud.py"} "$@"\n')
    _executable(root / "bin" / "curl", '#!/bin/sh\necho "$FAKE_WORKER_ID"\n')  # the VM metadata server
    monkeypatch.setenv("PATH", f"{root / 'bin'}:{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_GCLOUD_DIR", str(root))
    return root


def _scenario(root: pathlib.Path, **settings) -> None:
    (root / "scenario.json").write_text(json.dumps(settings))


def _calls(root: pathlib.Path) -> list[list[str]]:
    path = root / "calls.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def _git(repo: pathlib.Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
                          check=True, capture_output=True, text=True).stdout.strip()


@pytest.fixture
def repo(tmp_path) -> pathlib.Path:
    """A small git checkout to ship: the project's pyproject.toml (for the pins) and the stub."""
    repo = tmp_path / "repo"
    repo.mkdir()
    shutil.copy(ROOT / "pyproject.toml", repo)
    (repo / "train_stub.py").write_text(STUB)
    _git(repo, "init", "-q")
    _git(repo, "add", ".")
    _git(repo, "commit", "-qm", "stub")
    return repo


def _launch(repo, *args, command=None) -> int:
    base = ["--name", "judge-test", "--type", "v5p-16", "--zone", "us-east5-a", "--poll-interval", "0"]
    return main([*base, *args, "--", *(command or ["true"])], repo=repo, sleep=lambda s: None)


def test_command_lines():
    spot = TpuSpec("judge-7b", parse_slice("v5p-64"), "us-east5-a", provisioning="spot")
    assert create_command(spot) == [
        "gcloud", "compute", "tpus", "queued-resources", "create", "judge-7b", "--node-id=judge-7b",
        "--zone=us-east5-a", "--accelerator-type=v5p-64", "--runtime-version=v2-alpha-tpuv5", "--spot"]
    reserved = TpuSpec("j", parse_slice("v5e-16"), "us-west4-a", project="p", provisioning="reserved",
                       runtime_version="v2-alpha-tpuv5-lite-custom")
    assert create_command(reserved)[6:] == ["--node-id=j", "--zone=us-west4-a", "--project=p",
                                            "--accelerator-type=v5litepod-16",
                                            "--runtime-version=v2-alpha-tpuv5-lite-custom", "--reserved"]
    on_demand = TpuSpec("j", parse_slice("v6e-8"), "z")
    assert create_command(on_demand)[-2:] == ["--accelerator-type=v6e-8", "--runtime-version=v2-alpha-tpuv6e"]
    assert scp_command(on_demand, pathlib.Path("/tmp/x/code.tar.gz"))[5:8] == ["/tmp/x/code.tar.gz", "j:code.tar.gz",
                                                                             "--zone=z"]
    ssh = ssh_command(spot, "echo hi")
    assert "--worker=all" in ssh and ssh[-1] == "--command=echo hi"


def test_setup_installs_the_pyproject_pins_with_jax_tpu_and_mounts_the_bucket():
    requirements, python = pinned_requirements(ROOT / "pyproject.toml")
    assert python == "3.11"
    assert "jax[tpu]==0.10.2" in requirements and "jaxlib==0.10.2" in requirements
    assert "flax==0.12.8" in requirements and not any(r.startswith(("jax==", "torch")) for r in requirements)
    script = setup_script("judgejax-abc.tar.gz", requirements, python, "gs://my-bucket")
    assert script.startswith("# judgejax setup judgejax-abc.tar.gz\n")
    assert 'pip install --quiet --python ~/judgejax-venv/bin/python "jax[tpu]==0.10.2" jaxlib==0.10.2' in script
    assert "--no-deps -e ~/judgejax" in script and "--python 3.11" in script
    assert "gcsfuse --implicit-dirs my-bucket /gcs/my-bucket" in script
    assert "gcsfuse" not in setup_script("a.tar.gz", requirements, python, None)


def test_run_script_prefixes_each_line_with_the_worker_and_keeps_the_exit_status(tmp_path):
    home = tmp_path / "home"
    (home / "judgejax").mkdir(parents=True)
    (home / "judgejax-venv" / "bin").mkdir(parents=True)
    (home / "judgejax-venv" / "bin" / "activate").write_text("")
    _executable(tmp_path / "curl", "#!/bin/sh\necho 3\n")
    script = run_script(["bash", "-c", 'echo "one two"; echo oops >&2; exit 7'])
    done = subprocess.run(["bash", "-c", script], capture_output=True, text=True,
                          env={"HOME": str(home), "PATH": f"{tmp_path}:/usr/bin:/bin"})
    assert done.returncode == 7
    assert done.stdout == "[worker 3] one two\n[worker 3] oops\n"
    assert (home / "judgejax-run.log").read_text() == "one two\noops\n"


def _commands(out: str) -> list[str]:
    """The commands a dry run printed (`+ ` then the shell-quoted command, over several lines when
    a script is quoted in it), each as its words joined by spaces."""
    commands, pending = [], None
    for line in out.splitlines():
        if pending is None and not line.startswith("+ "):
            continue
        pending = line[2:] if pending is None else f"{pending}\n{line}"
        try:
            commands.append(" ".join(shlex.split(pending)))
            pending = None
        except ValueError:  # an open quote: the command goes on
            continue
    return commands


def test_dry_runs_print_every_command_and_run_none(gcloud, repo, capsys):
    _scenario(gcloud)
    head = _git(repo, "rev-parse", "HEAD")
    command = ["judgejax", "sft", "--config", "configs/qwen2.5-7b.yaml"]

    assert _launch(repo, "--spot", "--bucket", "gs://my-bucket", "--dry-run", command=command) == 0
    printed = _commands(capsys.readouterr().out)
    assert printed[2] == ("gcloud compute tpus queued-resources create judge-test --node-id=judge-test "
                          "--zone=us-east5-a --accelerator-type=v5p-16 --runtime-version=v2-alpha-tpuv5 --spot")
    archive = [c for c in printed if c.startswith("git ")]
    assert len(archive) == 1 and archive[0].endswith(f"judgejax-{head[:12]}.tar.gz {head}")
    assert any(c.startswith("gcloud compute tpus tpu-vm scp ") and c.endswith("--worker=all --quiet") for c in printed)
    ssh = [c for c in printed if " tpu-vm ssh " in c]
    assert len(ssh) == 2 and "gcsfuse --implicit-dirs my-bucket" in ssh[0]
    assert "judgejax sft --config configs/qwen2.5-7b.yaml 2>&1 | tee -a ~/judgejax-run.log" in ssh[1]
    assert not any(" delete " in c for c in printed)

    assert _launch(repo, "--reserved", "--type", "v5e-16", "--project", "p", "--delete-at-end", "--dry-run") == 0
    printed = _commands(capsys.readouterr().out)
    assert "--project=p --accelerator-type=v5litepod-16 --runtime-version=v2-alpha-tpuv5-lite --reserved" in printed[2]
    assert printed[-3] == "gcloud compute tpus queued-resources delete judge-test --zone=us-east5-a --project=p --force --quiet"

    assert _launch(repo, "--reuse", "--dry-run") == 0
    printed = _commands(capsys.readouterr().out)
    assert not any(" create " in c for c in printed) and any(" tpu-vm scp " in c for c in printed)

    assert _launch(repo, "--run-only", "--dry-run") == 0
    printed = _commands(capsys.readouterr().out)
    assert [c.split()[3:5] for c in printed] == [["queued-resources", "describe"]] * 2 + [["tpu-vm", "ssh"]]
    assert _calls(gcloud) == []  # gcloud itself never ran


def test_the_launcher_script_runs_as_a_program():
    done = subprocess.run([sys.executable, "launch/tpu.py", "--name", "j", "--type", "v6e-8", "--zone", "z",
                           "--run-only", "--dry-run", "--", "judgejax", "plan", "--help"],
                          cwd=ROOT, capture_output=True, text=True, env={**os.environ, "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr
    assert "judgejax plan --help 2>&1 | tee -a ~/judgejax-run.log" in done.stdout


def test_create_run_preemption_recreate_and_resume(gcloud, repo, tmp_path, capsys):
    """Provisioning takes two polls; worker 1's first setup fails; the first run is preempted
    after step 2; the slice is recreated and the same command resumes from step 2."""
    _scenario(gcloud, provision_polls=2, fail_setup_once=1, preempt_runs=[1], preempt_after="saved step 2")
    checkpoints = tmp_path / "bucket" / "run"
    command = [sys.executable, "train_stub.py", str(checkpoints), "4"]
    assert _launch(repo, "--spot", "--delete-at-end", command=command) == 0
    out = capsys.readouterr().out

    assert "[launch] judge-test: queued resource WAITING_FOR_RESOURCES" in out
    assert "[launch] judge-test: queued resource PROVISIONING" in out
    assert "[worker 1] error: pip could not reach the package index" in out
    assert ("[launch] attempt 1 failed: command failed (exit 1): gcloud compute tpus tpu-vm ssh judge-test "
            "--zone=us-east5-a --worker=all") in out and "--command=<setup script>" in out
    assert "[launch] running again on the same slice (retry 1 of 3)" in out
    assert ("[launch] attempt 2 failed: the command exited with status 255; judge-test is queued resource "
            "SUSPENDED (preempted or failed)") in out
    assert "[launch] recreating judge-test (retry 2 of 3)" in out
    assert out.count("[worker 0] saved step 1") == 1  # steps 1-2 ran once, before the preemption
    assert out.count("[worker 0] saved step 3") == 1  # step 3 once, after it
    for worker in (0, 1):
        assert f"[worker {worker}] resuming from step 2" in out and f"[worker {worker}] done" in out
    assert sorted(p.name for p in checkpoints.iterdir()) == ["step_1", "step_2", "step_3", "step_4"]

    calls = _calls(gcloud)
    verbs = [c[3] for c in calls]
    assert verbs.count("create") == 2 and verbs.count("delete") == 2  # recreated once, deleted at the end
    runs = [c for c in calls if c[3] == "ssh" and not c[-1].startswith("--command=# judgejax setup")]
    assert len(runs) == 2 and runs[0] == runs[1]  # the same command both times
    assert sum(c[-1].startswith("--command=# judgejax setup") for c in calls if c[3] == "ssh") == 3
    assert json.loads((gcloud / "state.json").read_text())["qr"] is None


def test_gives_up_after_the_retry_bound(gcloud, repo, tmp_path, capsys):
    """Every run is preempted after its first saved step: one retry, then a clear message."""
    _scenario(gcloud, preempt_runs=[1, 2, 3], preempt_after="saved step")
    command = [sys.executable, "train_stub.py", str(tmp_path / "run"), "5"]
    assert _launch(repo, "--max-retries", "1", command=command) == 1
    captured = capsys.readouterr()
    assert "[worker 0] resuming from step 1" in captured.out
    assert ("launch/tpu.py: error: giving up after 2 attempts (--max-retries 1); last failure: the command exited "
            "with status 255; judge-test is queued resource SUSPENDED (preempted or failed). Checkpoints in "
            "train.output_dir are kept") in captured.err
    assert [c[3] for c in _calls(gcloud)].count("create") == 2


def test_a_gcloud_failure_shows_the_command_and_its_error(gcloud, repo, capsys):
    _scenario(gcloud, create_error="ERROR: (gcloud.compute.tpus.queued-resources.create) PERMISSION_DENIED: "
                                   "Permission 'tpu.queuedResources.create' denied on project my-proj")
    assert _launch(repo, "--project", "my-proj") == 1
    err = capsys.readouterr().err
    assert ("launch/tpu.py: error: command failed (exit 1): gcloud compute tpus queued-resources create judge-test "
            "--node-id=judge-test --zone=us-east5-a --project=my-proj --accelerator-type=v5p-16 "
            "--runtime-version=v2-alpha-tpuv5\nERROR: (gcloud.compute.tpus.queued-resources.create) "
            "PERMISSION_DENIED") in err


def test_reuse_and_run_only_need_the_tpu_and_a_new_name_must_be_free(gcloud, repo, tmp_path, capsys):
    _scenario(gcloud)
    assert _launch(repo, "--run-only") == 1
    assert "no queued resource or TPU named judge-test in us-east5-a to reuse" in capsys.readouterr().err
    command = [sys.executable, "train_stub.py", str(tmp_path / "run"), "2"]
    assert _launch(repo, command=command) == 0
    assert _launch(repo, command=command) == 1
    assert ("a queued resource or TPU named judge-test already exists in us-east5-a (queued resource ACTIVE); "
            "pass --reuse") in capsys.readouterr().err
    before = len(_calls(gcloud))
    assert _launch(repo, "--run-only", command=[*command[:-1], "3"]) == 0
    assert "[worker 0] resuming from step 2" in capsys.readouterr().out
    assert [c[3] for c in _calls(gcloud)[before:]] == ["describe", "describe", "ssh"]  # no create, scp or setup


def test_a_dirty_tree_is_refused_unless_allowed(gcloud, repo, capsys):
    _scenario(gcloud)
    (repo / "train_stub.py").write_text(STUB + "# edited\n")
    assert _launch(repo, "--dry-run") == 1
    assert "has uncommitted changes (train_stub.py); commit them" in capsys.readouterr().err
    assert _launch(repo, "--dry-run", "--allow-dirty") == 0
    head = _git(repo, "rev-parse", "HEAD")
    [archive] = [c for c in _commands(capsys.readouterr().out) if c.startswith("git ")]
    assert f"judgejax-{head[:12]}-dirty.tar.gz" in archive and not archive.endswith(head)
    assert _git(repo, "status", "--porcelain") == "M train_stub.py" and _git(repo, "stash", "list") == ""
