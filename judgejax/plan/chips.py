"""Accelerators judgejax plans for and launches on, and how a slice name such as `v5p-64` maps to
chips and hosts.

Google names TPU v4 and v5p slices by TensorCores (2 per chip: `v5p-64` is 32 chips on 8 hosts)
and v5e/v6e slices by chips (`v6e-16` is 16 chips on 4 hosts). JAX shows one device per chip
on all four (v4 and v5p run their two cores as one "megacore" device). GPU types count GPUs:
`h100-16` is 16 GPUs, 8 per host. Memory is HBM per chip in GiB, as given for each product.
"""

from __future__ import annotations

import dataclasses
import re


@dataclasses.dataclass(frozen=True)
class Chip:
    name: str
    hbm_gib: float
    cores_per_chip: int  # how many units the slice name counts per chip
    chips_per_host: int  # on multi-host slices
    single_host_max_chips: int  # slices up to this many chips are one host
    gcloud_prefix: str | None  # accelerator type prefix for gcloud; None for GPUs
    runtime_version: str | None  # TPU VM software version for JAX


CHIPS: dict[str, Chip] = {
    c.name: c for c in (
        Chip("v4", 32, 2, 4, 4, "v4", "tpu-ubuntu2204-base"),
        Chip("v5e", 16, 1, 4, 8, "v5litepod", "v2-alpha-tpuv5-lite"),
        Chip("v5p", 95, 2, 4, 4, "v5p", "v2-alpha-tpuv5"),
        Chip("v6e", 32, 1, 4, 8, "v6e", "v2-alpha-tpuv6e"),
        Chip("h100", 80, 1, 8, 8, None, None),
        Chip("h200", 141, 1, 8, 8, None, None),
    )
}
ALIASES = {"v5litepod": "v5e"}


class SliceError(ValueError):
    pass


@dataclasses.dataclass(frozen=True)
class Slice:
    """One slice (or GPU allocation) such as v5p-64."""

    chip: Chip
    size: int  # the number in the name

    @property
    def name(self) -> str:
        return f"{self.chip.name}-{self.size}"

    @property
    def chips(self) -> int:
        return self.size // self.chip.cores_per_chip

    @property
    def hosts(self) -> int:
        if self.chips <= self.chip.single_host_max_chips:
            return 1
        return self.chips // self.chip.chips_per_host

    @property
    def is_tpu(self) -> bool:
        return self.chip.gcloud_prefix is not None

    @property
    def gcloud_type(self) -> str:
        """The --accelerator-type gcloud takes (v5e is spelled v5litepod there)."""
        if not self.is_tpu:
            raise SliceError(f"{self.name} is not a Cloud TPU type")
        return f"{self.chip.gcloud_prefix}-{self.size}"

    def describe(self) -> str:
        if self.chip.cores_per_chip == 2:
            count = f"{self.size} TensorCores = {self.chips} chips"
        else:
            count = f"{self.chips} {'chips' if self.is_tpu else 'GPUs'}"
        return (f"{self.name}: {count} x {self.chip.hbm_gib:g} GiB HBM, "
                f"{self.hosts} host{'s' if self.hosts > 1 else ''}")


def parse_slice(text: str) -> Slice:
    """`v5p-64`, `v5litepod-16`, `v6e-8`, `v4-32`, `h100-16`."""
    match = re.fullmatch(r"([a-z0-9]+?)-(\d+)", text.strip().lower())
    if not match:
        raise SliceError(f"accelerator type {text!r}: expected NAME-COUNT such as v5p-64 "
                         f"(known: {', '.join(CHIPS)})")
    name, count = ALIASES.get(match.group(1), match.group(1)), int(match.group(2))
    if name not in CHIPS:
        raise SliceError(f"accelerator type {text!r}: unknown chip {name!r} (known: {', '.join(CHIPS)})")
    chip = CHIPS[name]
    if count < chip.cores_per_chip or count % chip.cores_per_chip:
        raise SliceError(f"{text}: {name} slices count {chip.cores_per_chip} TensorCores per chip; "
                         f"{count} is not a whole number of chips")
    slice_ = Slice(chip, count)
    if slice_.chips > chip.single_host_max_chips and slice_.chips % chip.chips_per_host:
        raise SliceError(f"{text}: {slice_.chips} chips do not fill hosts of {chip.chips_per_host}")
    return slice_


def slice_arg(text: str) -> Slice:
    """parse_slice for argparse, keeping its message."""
    import argparse

    try:
        return parse_slice(text)
    except SliceError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
