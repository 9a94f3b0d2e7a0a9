"""Sizing a run before it starts: accelerator slices (chips.py), model shapes (shapes.py) and the
per-chip memory of training and sampling (memory.py), behind `judgejax plan`."""
