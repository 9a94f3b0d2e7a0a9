"""A fake `gcloud` for the TPU launcher tests, run as an executable on PATH.

It keeps one queued resource's state in $FAKE_GCLOUD_DIR/state.json, appends every call to
calls.jsonl, and follows $FAKE_GCLOUD_DIR/scenario.json:
  provision_polls  describes answering WAITING_FOR_RESOURCES / PROVISIONING before ACTIVE
  workers          how many TPU VM workers to simulate (default 2)
  fail_setup_once  a worker whose first setup fails (a failed worker)
  preempt_runs     which runs (1-based) are preempted, once `preempt_after` appears in worker 0's output
  create_error     stderr of a failing `queued-resources create`
Workers are folders worker<N>/ used as $HOME. `scp` copies into each. A setup command (marked by
its first line) unpacks the archive and makes an empty venv; a run command is executed by bash in
each worker folder, with a fake `curl` answering the worker number, output streamed as it comes.
A preemption kills the workers mid-run, marks the queued resource SUSPENDED, and exits 255 like
an ssh connection closed by the remote host.
"""

from __future__ import annotations

import json
import os
import pathlib
import shutil
import signal
import subprocess
import sys
import tarfile
import threading

ROOT = pathlib.Path(os.environ["FAKE_GCLOUD_DIR"])
STATE = ROOT / "state.json"


def load() -> dict:
    return json.loads(STATE.read_text()) if STATE.exists() else {"qr": None, "runs": 0, "setups": 0}


def save(state: dict) -> None:
    STATE.write_text(json.dumps(state))


def fail(message: str, code: int = 1) -> None:
    print(message, file=sys.stderr)
    sys.exit(code)


def not_found(what: str) -> None:
    fail(f"ERROR: (gcloud.compute.tpus.{what}) NOT_FOUND: Requested entity was not found.")


def run_workers(command: str, workers: list[pathlib.Path], preempt_after: str | None) -> int:
    bin_dir = ROOT / "bin"
    procs = []
    for i, home in enumerate(workers):
        env = dict(os.environ, HOME=str(home), FAKE_WORKER_ID=str(i), PATH=f"{bin_dir}:{os.environ['PATH']}")
        procs.append(subprocess.Popen(["bash", "-c", command], env=env, stdout=subprocess.PIPE,
                                      stderr=subprocess.STDOUT, text=True, start_new_session=True))
    preempted = threading.Event()
    lock = threading.Lock()

    def pump(i: int, proc: subprocess.Popen) -> None:
        for line in proc.stdout:
            with lock:
                sys.stdout.write(line)
                sys.stdout.flush()
            if i == 0 and preempt_after and preempt_after in line:
                preempted.set()
                for p in procs:  # the whole worker: bash and the program it started
                    os.killpg(p.pid, signal.SIGKILL)

    threads = [threading.Thread(target=pump, args=(i, p)) for i, p in enumerate(procs)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    codes = [p.wait() for p in procs]
    if preempted.is_set():
        return -1
    return max(codes, key=abs)


def main(argv: list[str]) -> None:
    with (ROOT / "calls.jsonl").open("a") as f:
        f.write(json.dumps(argv) + "\n")
    scenario = json.loads((ROOT / "scenario.json").read_text())
    state = load()
    workers = [ROOT / f"worker{i}" for i in range(scenario.get("workers", 2))]
    words = [a for a in argv if not a.startswith("--")]
    flags = dict(a[2:].split("=", 1) for a in argv if a.startswith("--") and "=" in a)
    group, verb = words[2], words[3]  # compute tpus GROUP VERB NAME ...
    qr = state["qr"]
    if group == "queued-resources" and verb == "create":
        if scenario.get("create_error"):
            fail(scenario["create_error"])
        if qr is not None:
            fail("ERROR: (gcloud.compute.tpus.queued-resources.create) ALREADY_EXISTS")
        state["qr"] = {"state": "WAITING_FOR_RESOURCES", "polls": scenario.get("provision_polls", 0),
                       "type": flags["accelerator-type"]}
        print(f"Create request issued for: [{words[4]}]", file=sys.stderr)
    elif group == "queued-resources" and verb == "describe":
        if qr is None:
            not_found("queued-resources.describe")
        if qr["state"] in ("WAITING_FOR_RESOURCES", "PROVISIONING"):
            qr["polls"] -= 1
            qr["state"] = "ACTIVE" if qr["polls"] < 0 else "PROVISIONING" if qr["polls"] == 0 else qr["state"]
        print(qr["state"])
    elif group == "queued-resources" and verb == "delete":
        if qr is None:
            not_found("queued-resources.delete")
        state["qr"] = None
        for home in workers:
            shutil.rmtree(home, ignore_errors=True)  # a new slice has fresh disks
    elif group == "tpu-vm" and verb == "describe":
        if qr is None:
            not_found("tpu-vm.describe")
        print({"ACTIVE": "READY", "SUSPENDED": "PREEMPTED"}.get(qr["state"], "CREATING"))
    elif group == "tpu-vm" and verb in ("scp", "ssh"):
        if qr is None or qr["state"] != "ACTIVE":
            fail("ssh: connect to host 10.0.0.2 port 22: Connection refused", 255)
        if verb == "scp":
            local = pathlib.Path(words[4])
            for home in workers:
                home.mkdir(parents=True, exist_ok=True)
                shutil.copy(local, home / words[5].split(":", 1)[1])
        elif flags["command"].startswith("# judgejax setup "):
            state["setups"] += 1
            archive = flags["command"].splitlines()[0].split()[-1]
            for i, home in enumerate(workers):
                if i == scenario.get("fail_setup_once") and state["setups"] == 1:
                    print(f"[worker {i}] error: pip could not reach the package index")
                    save(state)
                    sys.exit(1)
                with tarfile.open(home / archive) as tar:
                    tar.extractall(home / "judgejax", filter="data")
                (home / "judgejax-venv" / "bin").mkdir(parents=True, exist_ok=True)
                (home / "judgejax-venv" / "bin" / "activate").write_text("")
                print(f"[worker {i}] setup done")
        else:
            state["runs"] += 1
            save(state)
            preempt = state["runs"] in scenario.get("preempt_runs", [])
            code = run_workers(flags["command"], workers, scenario.get("preempt_after") if preempt else None)
            if code == -1:
                state = load()
                state["qr"]["state"] = "SUSPENDED"
                save(state)
                fail("Connection to 10.0.0.2 closed by remote host.", 255)
            sys.exit(code)
    else:
        fail(f"fake gcloud: unsupported call {argv}")
    save(state)


if __name__ == "__main__":
    main(sys.argv[1:])
