"""judgejax/host.py: the glibc tunables the `judgejax` command adds, and its one re-execution."""

import os
import subprocess
import sys

import pytest

from judgejax.host import MALLOC_TUNABLES, tuned

TUNABLES = ":".join(f"{k}={v}" for k, v in MALLOC_TUNABLES.items())

PROBE = ("import os; print('start', flush=True); from judgejax.host import tune_process; tune_process(); "
         "print(repr(os.environ.get('GLIBC_TUNABLES')))")


def test_tuned_adds_the_tunables_and_keeps_the_users():
    assert tuned({}) == {"GLIBC_TUNABLES": TUNABLES}
    env = tuned({"GLIBC_TUNABLES": "glibc.malloc.arena_max=4:glibc.cpu.x86_rep_movsb_threshold=2048", "HOME": "/h"})
    assert env == {"GLIBC_TUNABLES": "glibc.malloc.arena_max=4:glibc.cpu.x86_rep_movsb_threshold=2048:"
                                     f"glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold={1 << 40}", "HOME": "/h"}
    mine = {"GLIBC_TUNABLES": "glibc.malloc.arena_max=2:glibc.malloc.mmap_max=9:glibc.malloc.trim_threshold=1"}
    assert tuned(mine) == mine
    off = {"JUDGEJAX_HOST_TUNING": "0", "HOME": "/h"}
    assert tuned(off) == off


def _probe(**extra) -> list[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("GLIBC_TUNABLES", "JUDGEJAX_HOST_TUNING")}
    out = subprocess.run([sys.executable, "-c", PROBE], env={**env, **extra}, capture_output=True, text=True,
                         check=True)
    return out.stdout.splitlines()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc tunables: Linux only")
def test_tune_process_reexecutes_once_with_the_tunables():
    # glibc reads tunables only at start: the process runs again, once
    assert _probe() == ["start", "start", repr(TUNABLES)]
    assert _probe(JUDGEJAX_HOST_TUNING="0") == ["start", "None"]
    assert _probe(GLIBC_TUNABLES=TUNABLES) == ["start", repr(TUNABLES)]


def test_console_entry_runs_the_cli():
    out = subprocess.run([sys.executable, "-m", "judgejax", "--help"], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("usage: judgejax") and "pipeline" in out.stdout


RELEASE = ("import time; import numpy as np; from judgejax.host import PeakRSS, release_heap, rss\n"
           "with PeakRSS(0.01) as peak:\n"
           "    a = np.ones(2 ** 27); b = np.ones(2 ** 24); time.sleep(0.2); held = rss(); del a\n"
           "kept = rss(); release_heap(); after = rss()\n"
           "with PeakRSS(0.01) as later:\n"
           "    time.sleep(0.1)\n"
           "print(held, kept, after, peak.bytes, later.bytes)")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc and /proc: Linux only")
def test_release_heap_returns_what_the_tunables_keep_and_peaks_are_per_block():
    # a 1 GiB block freed below a live one: the tunables keep it, release_heap gives it back
    env = {k: v for k, v in os.environ.items() if k != "JUDGEJAX_HOST_TUNING"}
    out = subprocess.run([sys.executable, "-c", RELEASE], env={**env, "GLIBC_TUNABLES": TUNABLES},
                         capture_output=True, text=True, check=True)
    held, kept, after, peak, later = map(int, out.stdout.split())
    gib = 1 << 30
    assert held > gib and kept > held - gib / 8  # freed, but still resident
    assert after < held - gib * 7 / 8  # returned
    assert peak >= held and later < held - gib * 7 / 8  # each block's own peak
