"""Multi-host start-up: `jax.distributed.initialize()` when, and only when, more than one process
is expected, behind a roll call that turns a missing process into a clear error instead of a hang.

Where the processes come from, in order:
1. JUDGEJAX_NUM_PROCESSES, JUDGEJAX_PROCESS_ID, JUDGEJAX_COORDINATOR (host:port): set by
   `launch/gpu.py`, or by hand on any cluster.
2. SLURM (inside `srun`): SLURM_NTASKS, SLURM_PROCID, the first host of SLURM_STEP_NODELIST.
3. TPU on GKE: TPU_WORKER_HOSTNAMES (or TPU_PROCESS_ADDRESSES) and TPU_WORKER_ID.
4. A Cloud TPU VM slice (what `launch/tpu.py` creates): the VM metadata server's
   worker-network-endpoints and agent-worker-number, as JAX itself reads them.
For 3 and 4, MEGASCALE_NUM_SLICES / _SLICE_ID / _COORDINATOR_ADDRESS in the environment join
several slices (multislice).
JUDGEJAX_INIT_TIMEOUT (seconds, default 300) bounds the wait for every process to join.

The roll call runs before JAX's own start-up, because a process missing from
`jax.distributed.initialize` aborts the others from C++ with no Python error to catch. Process 0
listens on the coordinator's port, every other process reports its id there, and process 0
answers once all have arrived, or, when the timeout passes, tells those present which ids never
came; each process then raises `DistributedInitError` naming the missing ids, the coordinator
and the time waited. Only then does JAX start its service on the same port.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import socket
import time
import urllib.request
from typing import Callable, Mapping

DEFAULT_TIMEOUT_S = 300
TPU_COORDINATOR_PORT = 8482  # the port JAX uses on Cloud TPU VMs
_METADATA = "http://metadata.google.internal/computeMetadata/v1/instance/attributes/"


class DistributedInitError(RuntimeError):
    """The processes of a multi-process run did not all join."""


@dataclasses.dataclass(frozen=True)
class Processes:
    """The processes this one expects to run with, and where that was read from."""

    coordinator: str  # host:port of process 0
    num_processes: int
    process_id: int
    source: str

    def __post_init__(self) -> None:
        if self.num_processes < 1 or not 0 <= self.process_id < self.num_processes:
            raise DistributedInitError(
                f"{self.source}: process id {self.process_id} is outside 0..{self.num_processes - 1}")
        if self.num_processes > 1:
            _split_address(self.coordinator, self.source)


def _split_address(address: str, source: str) -> tuple[str, int]:
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise DistributedInitError(f"{source}: coordinator {address!r} is not host:port")
    return host.strip("[]"), int(port)


def _int(environ: Mapping[str, str], name: str) -> int:
    try:
        return int(environ[name])
    except ValueError:
        raise DistributedInitError(f"environment variable {name}={environ[name]!r} is not an integer") from None


def first_slurm_host(nodelist: str) -> str:
    """The first host of a SLURM node list: 'gpu[003-010,012],cpu1' -> 'gpu003'."""
    match = re.match(r"([^,\[]+)(?:\[([^\]]+)\])?", nodelist.strip())
    if not match:
        raise DistributedInitError(f"cannot read a host from SLURM node list {nodelist!r}")
    prefix, ranges = match.groups()
    return prefix + (re.split(r"[,-]", ranges)[0] if ranges else "")


def tpu_vm_metadata(key: str) -> str | None:
    """An attribute of this Cloud TPU VM from the metadata server; None off Cloud TPU VMs."""
    from jax._src import hardware_utils  # reads /sys only; JAX's own test for TPU chips

    if hardware_utils.num_available_tpu_chips_and_device_id()[0] == 0:
        return None
    request = urllib.request.Request(_METADATA + key, headers={"Metadata-Flavor": "Google"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.read().decode().strip()
    except OSError:
        return None


def expected_processes(
    environ: Mapping[str, str] | None = None,
    metadata: Callable[[str], str | None] = tpu_vm_metadata,
) -> Processes:
    """Who runs with this process (see the module docstring for the order of the sources)."""
    env = os.environ if environ is None else environ
    if "JUDGEJAX_NUM_PROCESSES" in env:
        source = "JUDGEJAX_NUM_PROCESSES"
        count = _int(env, "JUDGEJAX_NUM_PROCESSES")
        if count == 1:
            return Processes("", 1, 0, source)
        missing = [n for n in ("JUDGEJAX_COORDINATOR", "JUDGEJAX_PROCESS_ID") if not env.get(n)]
        if missing:
            raise DistributedInitError(f"JUDGEJAX_NUM_PROCESSES={count} needs {' and '.join(missing)} as well")
        return Processes(env["JUDGEJAX_COORDINATOR"], count, _int(env, "JUDGEJAX_PROCESS_ID"), source)
    if all(n in env for n in ("SLURM_NTASKS", "SLURM_PROCID", "SLURM_JOB_ID")) and _int(env, "SLURM_NTASKS") > 1:
        nodelist = env.get("SLURM_STEP_NODELIST") or env.get("SLURM_JOB_NODELIST", "")
        port = _int(env, "SLURM_JOB_ID") % 2**12 + (65535 - 2**12 + 1)  # the port JAX derives for SLURM
        return Processes(f"{first_slurm_host(nodelist)}:{port}", _int(env, "SLURM_NTASKS"),
                         _int(env, "SLURM_PROCID"), "SLURM")
    hosts = env.get("TPU_PROCESS_ADDRESSES") or env.get("TPU_WORKER_HOSTNAMES")
    if hosts:
        workers = [w.split(":")[0] for w in hosts.split(",")]
        worker = _int(env, "TPU_WORKER_ID") if len(workers) > 1 else 0
        return _tpu_processes(env, workers, worker, "TPU_WORKER_HOSTNAMES")
    endpoints = metadata("worker-network-endpoints")
    if endpoints:
        # Each entry is a hostname, or name:id:ip in the older format.
        workers = [w.split(":")[-1] for w in endpoints.split(",")]
        return _tpu_processes(env, workers, int(metadata("agent-worker-number") or 0), "Cloud TPU VM metadata")
    return Processes("", 1, 0, "single process")


def _tpu_processes(env: Mapping[str, str], workers: list[str], worker: int, source: str) -> Processes:
    """The processes of a TPU slice, or of several (multislice: MEGASCALE_NUM_SLICES, _SLICE_ID and
    _COORDINATOR_ADDRESS in the environment), numbered slice by slice as JAX does."""
    slices = _int(env, "MEGASCALE_NUM_SLICES") if "MEGASCALE_NUM_SLICES" in env else 1
    if slices == 1:
        return Processes(f"{workers[0]}:{TPU_COORDINATOR_PORT}", len(workers), worker, source)
    missing = [n for n in ("MEGASCALE_SLICE_ID", "MEGASCALE_COORDINATOR_ADDRESS") if n not in env]
    if missing:
        raise DistributedInitError(f"MEGASCALE_NUM_SLICES={slices} needs {' and '.join(missing)} as well")
    host = env["MEGASCALE_COORDINATOR_ADDRESS"].split(":")[0]
    return Processes(f"{host}:{TPU_COORDINATOR_PORT}", slices * len(workers),
                     _int(env, "MEGASCALE_SLICE_ID") * len(workers) + worker, f"{source} + MEGASCALE")


def roll_call(processes: Processes, timeout_s: float) -> None:
    """Return once every process has reported to process 0; raise DistributedInitError naming
    the ids that did not within `timeout_s`."""
    host, port = _split_address(processes.coordinator, processes.source)
    if processes.process_id == 0:
        _gather(processes, port, timeout_s)
    else:
        _report(processes, host, port, timeout_s)


def _what(processes: Processes, waited: float) -> str:
    return (f"{processes.num_processes} processes expected ({processes.source}); coordinator "
            f"{processes.coordinator}; waited {waited:.0f} s")


def _gather(processes: Processes, port: int, timeout_s: float) -> None:
    start = time.monotonic()
    family = socket.AF_INET6 if socket.has_dualstack_ipv6() else socket.AF_INET
    try:
        server = socket.create_server(("", port), family=family, dualstack_ipv6=family == socket.AF_INET6)
    except OSError as e:
        raise DistributedInitError(f"jax.distributed: process 0 cannot listen on port {port} of this host "
                                   f"({e}); is another run using coordinator {processes.coordinator}?") from None
    joined: dict[int, tuple[socket.socket, str]] = {}
    try:
        while len(joined) < processes.num_processes - 1:
            left = timeout_s - (time.monotonic() - start)
            if left <= 0:
                break
            server.settimeout(left)
            try:
                conn, _ = server.accept()
            except socket.timeout:
                break
            conn.settimeout(max(left, 1.0))
            try:
                hello = json.loads(conn.makefile().readline())
                pid, where = int(hello["process_id"]), str(hello["host"])
            except (OSError, ValueError, KeyError):
                conn.close()  # not one of ours (a port scan, a stale client)
                continue
            if pid in joined or pid == 0 or not 0 < pid < processes.num_processes:
                _send(conn, {"ok": False, "error": f"process id {pid} reported twice or out of range "
                                                   f"(from {where})"})
                conn.close()
                continue
            joined[pid] = (conn, where)
        missing = sorted(set(range(1, processes.num_processes)) - set(joined))
        if missing:
            message = (f"jax.distributed: process(es) {missing} never joined: "
                       f"{_what(processes, time.monotonic() - start)}; joined: "
                       f"{['0 (this host)'] + [f'{p} ({where})' for p, (_, where) in sorted(joined.items())]}. "
                       "Start the same command on every host, or raise JUDGEJAX_INIT_TIMEOUT.")
            for conn, _ in joined.values():
                _send(conn, {"ok": False, "error": message})
            raise DistributedInitError(message)
        for conn, _ in joined.values():
            _send(conn, {"ok": True})
        for conn, _ in joined.values():  # let each client close first, so this port is free for JAX
            try:
                conn.recv(1)
            except OSError:
                pass
    finally:
        for conn, _ in joined.values():
            conn.close()
        server.close()


def _send(conn: socket.socket, message: dict) -> None:
    try:
        conn.sendall((json.dumps(message) + "\n").encode())
    except OSError:
        pass


def _report(processes: Processes, host: str, port: int, timeout_s: float) -> None:
    start = time.monotonic()
    hello = json.dumps({"process_id": processes.process_id, "host": socket.gethostname()}) + "\n"
    last_error: OSError | None = None
    while (left := timeout_s - (time.monotonic() - start)) > 0:
        try:
            conn = socket.create_connection((host, port), timeout=min(left, 5.0))
        except OSError as e:  # process 0 is not listening yet
            last_error = e
            time.sleep(min(0.5, max(left, 0)))
            continue
        with conn:
            try:
                conn.sendall(hello.encode())
                # Process 0 answers when all have joined, or at its own timeout.
                conn.settimeout(left + 30.0)
                line = conn.makefile().readline()
            except OSError as e:
                last_error = e
                continue
            if not line:  # process 0 went away (or a previous run's listener closed)
                time.sleep(0.5)
                continue
            answer = json.loads(line)
            if answer.get("ok"):
                return
            raise DistributedInitError(f"process {processes.process_id}: {answer.get('error')}")
    raise DistributedInitError(
        f"jax.distributed: process 0 never answered at {host}:{port}: {_what(processes, time.monotonic() - start)}"
        f" (last error: {last_error}). Is process 0 running, and is the address reachable from this host?")


def initialize(timeout_s: float | None = None, environ: Mapping[str, str] | None = None) -> Processes:
    """Join the other processes of this run, if any: a roll call, then `jax.distributed.initialize`
    (with CPU collectives over gloo, so multi-process CPU runs work too). A no-op for one process.
    Call it before anything touches a JAX device."""
    env = os.environ if environ is None else environ
    processes = expected_processes(env)
    if processes.num_processes == 1:
        return processes
    if timeout_s is None:
        timeout_s = float(env.get("JUDGEJAX_INIT_TIMEOUT", DEFAULT_TIMEOUT_S))
    roll_call(processes, timeout_s)
    import jax

    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(
        coordinator_address=processes.coordinator,
        num_processes=processes.num_processes,
        process_id=processes.process_id,
        initialization_timeout=int(max(timeout_s, 1)),
    )
    return processes
