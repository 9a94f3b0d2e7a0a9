"""Which JAX platforms a judgejax process starts, decided before JAX starts.

With libtpu installed (the `tpu` extra, for compiling TPU programs on any host) JAX looks for TPU
chips whenever it starts: seconds spent and warnings printed on a host that has none. A host with
TPU chips shows them as /dev/accel* (v4, v5p) or /dev/vfio/N (v5e, v6e); where there are none and
no GPU plugin is installed, the process runs on the CPU (JAX_PLATFORMS=cpu). Compiling for a TPU
slice needs no TPU backend (judgejax.plan.topology). A JAX_PLATFORMS the user set is kept.
"""

from __future__ import annotations

import glob
import importlib.util
import os
from collections.abc import Callable, MutableMapping

TPU_DEVICE_FILES = ("/dev/accel*", "/dev/vfio/[0-9]*")
GPU_PLUGINS = ("jax_cuda12_plugin", "jax_cuda13_plugin", "jax_rocm60_plugin", "jax_rocm7_plugin")


def _installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def skip_absent_tpu(environ: MutableMapping[str, str] = os.environ, *, installed: Callable[[str], bool] = _installed,
                    device_files: Callable[[str], list[str]] = glob.glob) -> None:
    """Set JAX_PLATFORMS=cpu when libtpu is installed but this host has no TPU and JAX has no GPU
    plugin; otherwise leave JAX to choose."""
    if "JAX_PLATFORMS" in environ or not installed("libtpu"):
        return
    if any(device_files(pattern) for pattern in TPU_DEVICE_FILES) or any(map(installed, GPU_PLUGINS)):
        return
    environ["JAX_PLATFORMS"] = "cpu"
