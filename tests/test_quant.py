"""QLoRA's quantiser: the NF4 codebook is the published one (rebuilt here from its definition, the
normal quantiles of bitsandbytes' `create_normal_map`), values on a level round-trip exactly, and on
the real SmolLM2-135M-Instruct projections the error stays within half a level gap of each block's
absmax (NF4) or half an int8 step."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest
import torch
from safetensors import safe_open

from judgejax.model import quant


def test_nf4_levels_are_the_normal_quantiles_of_qlora():
    """bitsandbytes' create_normal_map(offset=0.9677083, use_extra_value=True): 8 positive and 7
    negative quantiles of N(0, 1), zero, normalised by the largest."""
    normal = torch.distributions.Normal(torch.tensor(0.0, dtype=torch.float64), torch.tensor(1.0, dtype=torch.float64))
    offset = 0.9677083
    positive = normal.icdf(torch.linspace(offset, 0.5, 9, dtype=torch.float64)[:-1])
    negative = -normal.icdf(torch.linspace(offset, 0.5, 8, dtype=torch.float64)[:-1])
    levels = torch.cat([positive, torch.zeros(1, dtype=torch.float64), negative]).sort().values
    np.testing.assert_allclose(quant.NF4, (levels / levels.max()).numpy(), atol=2e-7)


@pytest.mark.parametrize("kind", quant.KINDS)
def test_values_on_a_level_round_trip_exactly(kind):
    levels = np.asarray(quant.NF4) if kind == "nf4" else np.arange(-127, 128) / 127
    scale = 0.37
    w = jnp.asarray(np.resize(levels, 4 * 64) * scale, jnp.float32).reshape(4, 64)
    w = w.at[:, ::32].set(scale)  # each block's absmax is the scale
    codes, scales = quant.quantize(w, kind, 32)
    assert codes.dtype == jnp.uint8 and codes.shape == w.shape and scales.shape == (4, 2)
    np.testing.assert_allclose(quant.dequantize(codes, scales, kind, jnp.float32), w, atol=1e-7)


@pytest.mark.parametrize("kind, bound", [("nf4", 0.5 * float(np.diff(quant.NF4).max())), ("int8", 0.5 / 127)])
def test_error_on_real_smollm2_weights_is_bounded(kind, bound, smollm2_dir):
    with safe_open(str(next(smollm2_dir.glob("*.safetensors"))), framework="numpy") as f:
        w = f.get_tensor("model.layers.3.mlp.gate_proj.weight").astype(np.float32).T  # [in, out], as judgejax holds it
    codes, scales = quant.quantize(jnp.asarray(w), kind, 64)
    error = np.abs(np.asarray(quant.dequantize(codes, scales, kind, jnp.float32)) - w)
    absmax = np.repeat(np.asarray(scales), 64, axis=-1)
    assert (error <= bound * absmax + 1e-7).all()
    relative = np.linalg.norm(error) / np.linalg.norm(w)
    print(f"{kind}: relative Frobenius error {relative:.4f}")
    assert relative < (0.12 if kind == "nf4" else 0.01)
