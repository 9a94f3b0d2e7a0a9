"""The parameter table: every spec's initialiser and layout are known ones, its HF tensor is the one
of its projection, and the seven projections say which axes they map from and to."""

from __future__ import annotations

from judgejax.model.params import INITS, LAYOUTS, PROJECTIONS, SPECS


def test_specs_are_well_formed():
    for name, spec in SPECS.items():
        assert spec.init in INITS and spec.layout in LAYOUTS, name
        if spec.scales:  # QLoRA's block scales are no Hugging Face tensor
            assert spec.hf_name == "" and spec.axes == SPECS[spec.scales].axes, name
        else:
            assert ("{l}" in spec.hf_name) == spec.stacked, name
        if spec.bias:
            bias = SPECS[spec.bias]
            assert bias.hf_name == spec.hf_name.replace(".weight", ".bias") and len(bias.axes) == 1 + len(spec.out_axes), name


def test_projections_name_their_input_and_output_axes():
    got = {SPECS[name].hf_name.split(".")[-2]: (SPECS[name].in_axes, SPECS[name].out_axes) for name in PROJECTIONS}
    assert got == {
        "q_proj": (("embed",), ("heads", "head_dim")),
        "k_proj": (("embed",), ("kv_heads", "head_dim")),
        "v_proj": (("embed",), ("kv_heads", "head_dim")),
        "o_proj": (("heads", "head_dim"), ("embed",)),
        "gate_proj": (("embed",), ("mlp",)),
        "up_proj": (("embed",), ("mlp",)),
        "down_proj": (("mlp",), ("embed",)),
    }
