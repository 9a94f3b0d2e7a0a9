"""Bad model folders fail with an error that names the file or tensor."""

from __future__ import annotations

import json

import jax
import numpy as np
import pytest
from safetensors.numpy import load_file, save_file

from judgejax.model.config import ConfigError
from judgejax.model.hf_import import CheckpointError, import_hf
from judgejax.sharding import MeshConfig, make_mesh
from tiny_hf import make_tiny_hf


@pytest.fixture
def mesh():
    return make_mesh(MeshConfig(data=1), devices=jax.devices()[:1])


@pytest.fixture
def hf_dir(tmp_path):
    make_tiny_hf("llama", tmp_path)
    return tmp_path


def rewrite(path, fn):
    tensors = load_file(str(path))
    fn(tensors)
    save_file(tensors, str(path), metadata={"format": "pt"})


def test_corrupted_safetensors(hf_dir, mesh):
    path = hf_dir / "model.safetensors"
    data = path.read_bytes()
    path.write_bytes(data[:8] + b"\x00garbage" + data[16 : len(data) // 2])
    with pytest.raises(CheckpointError, match="model.safetensors: cannot read safetensors"):
        import_hf(hf_dir, mesh)


def test_truncated_tensor_data(hf_dir, mesh):
    path = hf_dir / "model.safetensors"
    path.write_bytes(path.read_bytes()[:-64])
    with pytest.raises(CheckpointError, match="model.safetensors"):
        import_hf(hf_dir, mesh)


def test_unsupported_architecture(hf_dir, mesh):
    config = json.loads((hf_dir / "config.json").read_text())
    config["architectures"] = ["MistralForCausalLM"]
    config["model_type"] = "mistral"
    (hf_dir / "config.json").write_text(json.dumps(config))
    with pytest.raises(ConfigError, match="unsupported architecture 'MistralForCausalLM'"):
        import_hf(hf_dir, mesh)


def test_shape_mismatch_names_tensor(hf_dir, mesh):
    name = "model.layers.1.mlp.up_proj.weight"
    rewrite(hf_dir / "model.safetensors", lambda t: t.__setitem__(name, np.zeros((47, 32), np.float32)))
    with pytest.raises(CheckpointError, match=rf"tensor {name} has shape \(47, 32\), expected \(48, 32\)"):
        import_hf(hf_dir, mesh)


def test_missing_tensor_named(hf_dir, mesh):
    name = "model.layers.0.self_attn.k_proj.weight"
    rewrite(hf_dir / "model.safetensors", lambda t: t.pop(name))
    with pytest.raises(CheckpointError, match=f"missing tensor {name}"):
        import_hf(hf_dir, mesh)


def test_extra_tensor_named(hf_dir, mesh):
    rewrite(hf_dir / "model.safetensors", lambda t: t.__setitem__("model.layers.0.adapter.weight", np.zeros(3, np.float32)))
    with pytest.raises(CheckpointError, match="unexpected tensor model.layers.0.adapter.weight"):
        import_hf(hf_dir, mesh)


def test_no_weights(tmp_path, mesh):
    make_tiny_hf("llama", tmp_path)
    (tmp_path / "model.safetensors").unlink()
    with pytest.raises(CheckpointError, match="no model.safetensors"):
        import_hf(tmp_path, mesh)
