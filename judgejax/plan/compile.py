"""Compile a run's programs for a TPU slice on this host and read XLA's memory per chip.

The per-chip bytes are XLA's buffer assignment for the compiled program (`memory_analysis()`):
arguments, outputs, temporaries, and the outputs that alias (reuse) a donated argument's buffer;
the program needs arguments + outputs - aliased + temporaries. They are the compiler's plan, not
a measurement on a chip. XLA's cost analysis counts a loop body once (the layer scan, the
micro-batch scan, the decode loop), so its FLOPs are not the step's and are not reported.
"""

from __future__ import annotations

import dataclasses
import re
import time

import jax
from jax.sharding import Mesh

from judgejax.plan.memory import GIB
from judgejax.plan.programs import Program

MOSAIC = 'custom_call_target="tpu_custom_call"'  # how a Pallas TPU kernel appears in the compiled HLO
# The TPU compiler refuses a program that cannot fit a chip's HBM, naming what its temporaries need.
OUT_OF_HBM = re.compile(r"Ran out of memory in memory space hbm|Ran out of memory on HBM")
TEMPORARIES = re.compile(r"HLO temporaries \(([\d.]+)([KMGT])\)")


@dataclasses.dataclass(frozen=True)
class CompiledProgram:
    name: str
    argument: int
    output: int
    alias: int
    temp: int
    planned: int
    seconds: float
    kernels: int  # Mosaic (Pallas TPU) kernel calls in the program
    refused: str = ""  # the compiler's message when it refused the program for want of HBM

    @property
    def total(self) -> int:
        return self.argument + self.output - self.alias + self.temp


def compile_program(program: Program, mesh: Mesh) -> CompiledProgram:
    """XLA's bytes per chip for `program` compiled for `mesh`'s devices. A program the compiler
    refuses as too large for HBM is returned with `refused` set and the temporaries it names."""
    began = time.perf_counter()
    with jax.set_mesh(mesh):
        lowered = program.lower()
        try:
            compiled = lowered.compile()
        except jax.errors.JaxRuntimeError as e:
            if not OUT_OF_HBM.search(str(e)):
                raise
            need = TEMPORARIES.search(str(e))
            temp = int(float(need.group(1)) * 1024 ** "KMGT".index(need.group(2)) * 1024) if need else 0
            return CompiledProgram(program.name, 0, 0, 0, temp, program.planned, time.perf_counter() - began, 0,
                                   " ".join(str(e).split())[:300])
    seconds = time.perf_counter() - began
    memory = compiled.memory_analysis()
    return CompiledProgram(program.name, memory.argument_size_in_bytes, memory.output_size_in_bytes,
                           memory.alias_size_in_bytes, memory.temp_size_in_bytes, program.planned, seconds,
                           compiled.as_text().count(MOSAIC))


def table(rows: list[CompiledProgram], hbm_gib: float, usable: int) -> list[str]:
    """A Markdown table: XLA's bytes per chip (GiB), the planner's beside them, compile time, fit."""
    lines = ["| program | arguments | outputs | aliased | temporaries | XLA total | % of HBM | planner | "
             "planner / XLA | Mosaic kernels | compile s | fits |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        if r.refused:
            lines.append(f"| {r.name} | – | – | – | {r.temp / GIB:.2f} | > HBM | > 100% | {r.planned / GIB:.2f} | – "
                         f"| – | {r.seconds:.0f} | NO: the compiler ran out of HBM |")
            continue
        cells = [r.argument, r.output, r.alias, r.temp, r.total]
        lines.append(
            f"| {r.name} | " + " | ".join(f"{c / GIB:.2f}" for c in cells)
            + f" | {100 * r.total / (hbm_gib * GIB):.0f}% | {r.planned / GIB:.2f} | {r.planned / max(r.total, 1):.2f} | "
            + f"{r.kernels} | {r.seconds:.0f} | {'yes' if r.total <= usable else 'NO'} |")
    return lines
