"""Micro-batches sized to a memory budget, from XLA's plan of the compiled step.

A step's memory is what XLA plans for its compiled program (`memory_analysis()`: the arguments,
the outputs not aliased to donated arguments, and the temporaries: activations, gradients, the
optimizer update), which grows with the rows of one micro-batch. XLA:CPU frees a call's
temporaries only after its outputs are ready, so the next call's are allocated beside them: the
temporaries count twice. And each call queued behind a running one holds its own (measured on
SmolLM2 at 2 x 768 tokens: a 4.8 GB step grew the process by 2.3 GB per step queued ahead, to
11.6 GB with 4), so on CPU the training loop waits for each step before it dispatches the next.
Steps of different lengths (buckets) have temporaries of different sizes, which the process's
heap (kept, for speed: judgejax/host.py) cannot always fit into the holes earlier ones left: it
grows. So when after a step the process holds more than XLA's plan of the step plus what it held
beside the state before the first step, the loop hands the freed memory back (`release_heap`).

On CPU, where every device is this host's memory, a stage takes the fewest micro-batches
(gradient accumulation: the same update) whose compiled step fits its budget; if not even the
smallest micro-batch fits, it stops before the first step with one line that says what to change.
The loop calls the chosen probe's compiled program for batches of its shapes (jit would compile it
again; `train.setup.reusing`)."""

from __future__ import annotations

from typing import Callable

import jax

from judgejax.budget import MemoryBudgetError, gb, planned_bytes


def accum_options(rows: int, min_accum: int, ways: int) -> list[int]:
    """Micro-batch counts from `min_accum` up whose micro-batches split `rows` evenly over `ways`
    data-parallel devices: largest micro-batch first."""
    return [a for a in range(min_accum, rows + 1) if rows % a == 0 and (rows // a) % ways == 0]


def choose_accum(compile_for: Callable[[int], jax.stages.Compiled], rows: int, options: list[int],
                 budget: int, source: str, what: str, log: Callable[[str], None]) -> tuple[int, int]:
    """The first of `options` (micro-batch counts of `rows` rows) whose compiled step fits
    `budget`, and the bytes planned for it. When the first misses, an option is compiled only if
    the first's temporaries scaled to its rows would fit (they shrink no faster than the rows: the
    estimate never skips one that fits), and the last always, so a choice costs few compiles.
    Logs the choice; MemoryBudgetError when the smallest micro-batch does not fit."""
    first, temp = planned_bytes(compile_for(options[0]))
    planned = {options[0]: first}
    for accum in options[1:]:
        if planned[max(planned)] <= budget:  # the latest compiled fits
            break
        if accum == options[-1] or first - temp + temp * options[0] / accum <= budget:
            planned[accum] = planned_bytes(compile_for(accum))[0]
    fitting = [a for a in options if a in planned and planned[a] <= budget]
    tried = ", ".join(f"{rows // a} rows: {gb(b)}" for a, b in sorted(planned.items()))
    if not fitting:
        smallest = options[-1]
        raise MemoryBudgetError(
            f"{what}: one micro-batch of {rows // smallest} row(s) needs {gb(planned[smallest])} (XLA's plan of the "
            f"compiled step; tried {tried}), more than the budget of {gb(budget)} ({source}); lower "
            "data.max_length, set model.remat=full, or raise train.memory_budget")
    accum = fitting[0]
    log(f"{what}: {accum} micro-batch(es) of {rows // accum} row(s), XLA's plan needs {gb(planned[accum])} of the "
        f"{gb(budget)} budget ({source}); tried {tried}")
    return accum, planned[accum]
