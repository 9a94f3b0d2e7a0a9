"""A vocabulary that no tensor axis divides (515) is padded to a multiple of 128 on load: the
padded entries never win (-inf logits, probability 0), sharded equals one device equals
transformers, and export writes the real vocabulary only."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
import transformers
from flax import nnx

from judgejax.model.hf_export import export_hf
from judgejax.model.hf_import import import_hf
from judgejax.model.build import params_of
from judgejax.model.logprobs import token_logprobs
from judgejax.sharding import MeshConfig, make_mesh, shard_batch
from tiny_hf import make_tiny_hf

VOCAB = 515
SHAPE = dict(num_attention_heads=8, num_key_value_heads=4, hidden_size=64, intermediate_size=128, vocab_size=VOCAB)


@pytest.fixture(scope="module")
def hf_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("hf")
    make_tiny_hf("qwen2-untied", path, **SHAPE)
    return path


def batch():
    tokens = np.random.default_rng(0).integers(0, VOCAB, size=(8, 12)).astype(np.int32)
    positions = np.broadcast_to(np.arange(12, dtype=np.int32), tokens.shape).copy()
    return {"tokens": tokens, "positions": positions, "segment_ids": np.ones_like(tokens)}


def forward(model, mesh, b):
    """(logits of __call__, padded logits, log p(next token)) on `mesh`."""
    graphdef, state = nnx.split(model)

    @jax.jit
    def run(state, b):
        m = nnx.merge(graphdef, state)
        hidden, _ = m.hidden_states(b["tokens"], b["positions"], b["segment_ids"])
        logps = token_logprobs(hidden[:, :-1], m.unembed_dv(), b["tokens"][:, 1:], chunk_size=5,
                               vocab_size=m.cfg.vocab_size)
        return m(b["tokens"], b["positions"], b["segment_ids"])[0], m.logits(hidden), logps

    with jax.set_mesh(mesh):
        return [np.asarray(x) for x in run(state, shard_batch(mesh, b))]


def test_odd_vocabulary_on_a_2x2x2_mesh_equals_one_device_and_transformers(hf_dir):
    b = batch()
    hf = transformers.AutoModelForCausalLM.from_pretrained(hf_dir, dtype=torch.float32).eval()
    with torch.no_grad():
        ref = hf(torch.from_numpy(b["tokens"]).long()).logits.numpy()
    ref_logps = np.take_along_axis(torch.log_softmax(torch.from_numpy(ref[:, :-1]), -1).numpy(),
                                   b["tokens"][:, 1:, None], axis=-1)[..., 0]
    results = {}
    for shape in [(1, 1, 1), (2, 2, 2)]:
        devices = jax.devices()[: int(np.prod(shape))]
        mesh = make_mesh(MeshConfig(*shape), devices=devices)
        model = import_hf(hf_dir, mesh)
        embed = model.outer.embed_vd[...]
        assert embed.shape == (640, 64)
        np.testing.assert_array_equal(np.asarray(embed)[VOCAB:], 0)
        logits, padded, logps = results[shape] = forward(model, mesh, b)
        assert logits.shape == ref.shape
        np.testing.assert_allclose(logits, ref, atol=2e-5)
        assert padded.shape[-1] == 640 and np.all(padded[..., VOCAB:] == -np.inf)
        np.testing.assert_allclose(padded[..., :VOCAB], ref, atol=2e-5)
        np.testing.assert_allclose(logps, ref_logps, atol=2e-5)
    for one, many in zip(results[(1, 1, 1)], results[(2, 2, 2)]):
        np.testing.assert_allclose(one, many, atol=1e-5)


def test_export_strips_the_padding(hf_dir, tmp_path):
    mesh = make_mesh(MeshConfig(2, 2, 2))
    model = import_hf(hf_dir, mesh)
    out = export_hf(params_of(model), model.cfg, hf_dir, tmp_path / "out")
    original = transformers.AutoModelForCausalLM.from_pretrained(hf_dir, dtype=torch.float32)
    exported = transformers.AutoModelForCausalLM.from_pretrained(out, dtype=torch.float32)
    for (name, a), (_, b) in zip(original.state_dict().items(), exported.state_dict().items()):
        assert a.shape == b.shape, name
        assert torch.equal(a, b), name


def test_sampling_never_picks_a_padded_token(hf_dir):
    mesh = make_mesh(MeshConfig(data=1), devices=jax.devices()[:1])
    model = import_hf(hf_dir, mesh)
    h = jnp.zeros((4, 1, 64)).at[:, :, 0].set(1.0)
    logits = model.logits(h)[:, 0]
    picks = jax.random.categorical(jax.random.key(0), logits, shape=(1000, 4))
    assert int(picks.max()) < VOCAB
