"""Memory budgets on CPU, where every device is this host's memory: XLA's plan of a compiled program
(what one call holds beside the one before it) against a budget in GB, or by default a share of
the memory available when a stage starts. The training steps size their micro-batches with it
(`judgejax.train.memory`), the sampler its batches (`judgejax.sample.sampler`)."""

from __future__ import annotations

import pathlib

import jax

GB = 1e9
AVAILABLE_SHARE = 0.6  # of the memory available when a stage starts, when no budget is set
MEMINFO = pathlib.Path("/proc/meminfo")


class MemoryBudgetError(ValueError):
    """Even the smallest batch's compiled program does not fit the memory budget."""


def available_bytes() -> int:
    """The kernel's estimate of the memory that can be used without swapping (MemAvailable)."""
    for line in MEMINFO.read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) * 1024
    raise OSError(f"{MEMINFO} has no MemAvailable line; set a memory budget")


def budget_bytes(memory_budget_gb: float, setting: str = "train.memory_budget") -> tuple[int, str]:
    """The budget in bytes and where it comes from: `memory_budget_gb` (the value of `setting`),
    or AVAILABLE_SHARE of the memory available now."""
    if memory_budget_gb > 0:
        return int(memory_budget_gb * GB), f"{setting}={memory_budget_gb:g} GB"
    available = available_bytes()
    return int(AVAILABLE_SHARE * available), f"{AVAILABLE_SHARE:.0%} of the {available / GB:.1f} GB available"


def sampler_budget(memory_budget_gb: float, setting: str) -> int | None:
    """The bytes a sampler batch may plan on CPU (`budget_bytes`); None elsewhere, where the devices
    are not this host's memory."""
    return budget_bytes(memory_budget_gb, setting)[0] if jax.default_backend() == "cpu" else None


def planned_bytes(compiled: jax.stages.Compiled) -> tuple[int, int]:
    """The bytes a call of `compiled` after another holds on this host by XLA's plan (arguments,
    outputs that do not reuse a donated argument, twice the temporaries; per device times this
    process's devices), and of them the temporaries'."""
    m = compiled.memory_analysis()
    devices = jax.local_device_count()
    temp = 2 * m.temp_size_in_bytes
    total = m.argument_size_in_bytes + m.output_size_in_bytes - m.alias_size_in_bytes + temp
    return total * devices, temp * devices


def gb(count: float) -> str:
    return f"{count / GB:.3g} GB"
