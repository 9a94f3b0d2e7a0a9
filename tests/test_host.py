"""judgejax/host.py: the process settings the `judgejax` command adds, and its one re-execution."""

import os
import subprocess
import sys

from judgejax.host import TUNABLE, XLA_CPU_FLAG, tuned

PROBE = ("import os; print('start', flush=True); from judgejax.host import tune_process; tune_process(); "
         "print(repr(os.environ.get('GLIBC_TUNABLES')), repr(os.environ.get('XLA_FLAGS')))")


def test_tuned_adds_the_settings_and_keeps_the_users():
    assert tuned({}) == {"GLIBC_TUNABLES": TUNABLE, "XLA_FLAGS": XLA_CPU_FLAG}
    env = tuned({"GLIBC_TUNABLES": "glibc.malloc.arena_max=2", "XLA_FLAGS": "--xla_force_host_platform_device_count=8",
                 "HOME": "/h"})
    assert env == {"GLIBC_TUNABLES": f"glibc.malloc.arena_max=2:{TUNABLE}",
                   "XLA_FLAGS": f"--xla_force_host_platform_device_count=8 {XLA_CPU_FLAG}", "HOME": "/h"}
    mine = {"GLIBC_TUNABLES": "glibc.malloc.hugetlb=0", "XLA_FLAGS": "--xla_cpu_ftz=false"}
    assert tuned(mine) == mine
    off = {"JUDGEJAX_HOST_TUNING": "0", "XLA_FLAGS": "--foo"}
    assert tuned(off) == off


def _probe(**extra) -> list[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("GLIBC_TUNABLES", "XLA_FLAGS", "JUDGEJAX_HOST_TUNING")}
    out = subprocess.run([sys.executable, "-c", PROBE], env={**env, **extra}, capture_output=True, text=True,
                         check=True)
    return out.stdout.splitlines()


def test_tune_process_reexecutes_once_with_the_settings():
    lines = _probe()
    if sys.platform.startswith("linux"):  # glibc reads tunables at start: the process runs again
        assert lines == ["start", "start", f"{TUNABLE!r} {XLA_CPU_FLAG!r}"]
    else:
        assert lines == ["start", f"{TUNABLE!r} {XLA_CPU_FLAG!r}"]
    assert _probe(JUDGEJAX_HOST_TUNING="0") == ["start", "None None"]
    assert _probe(GLIBC_TUNABLES=TUNABLE) == ["start", f"{TUNABLE!r} {XLA_CPU_FLAG!r}"]  # only XLA_FLAGS to add


def test_console_entry_runs_the_cli():
    out = subprocess.run([sys.executable, "-m", "judgejax", "--help"], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("usage: judgejax") and "pipeline" in out.stdout
