"""Sizing a run before it starts: accelerator slices (chips.py), model shapes (shapes.py) and the
per-chip memory of training and sampling (memory.py), behind `judgejax plan`; with `--compile`,
every program of the run compiled for a TPU slice by the TPU compiler on this host (topology.py,
programs.py, compile.py, search.py)."""
