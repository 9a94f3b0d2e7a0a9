"""Launchers: Cloud TPU slices through queued resources (tpu.py) and SLURM GPU clusters (slurm.py),
run as `python launch/tpu.py` and `python launch/gpu.py`. They need only the standard library and
gcloud / SLURM, not JAX."""
