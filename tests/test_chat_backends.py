"""The two chat backends. HttpChat against local servers started here: sampling requests (n,
seed), greedy requests asked once, parallel requests in order, retries with exponential backoff
on 429/5xx and timeouts, clear errors. LocalChat on a tiny random Llama with SmolLM2's tokenizer:
greedy text equal to transformers' `generate`, n samples batched together, prompts too long
recorded, sampling defaults from generation_config as transformers applies them, lazy loading."""

from __future__ import annotations

import json
import shutil
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jax
import pytest
import torch
import transformers

from judgejax.sample import chat as chat_module
from judgejax.sample import http_chat
from judgejax.sample.chat import HF_SAMPLING_DEFAULTS, Generation, LocalChat
from judgejax.sample.http_chat import ChatError, HttpChat
from judgejax.sample.methods import Greedy, Sample
from judgejax.sharding import MeshConfig, make_mesh
from tiny_hf import make_tiny_hf

CONVERSATION = [{"role": "user", "content": "Which is better?"}]


class Server:
    """A chat-completions server on 127.0.0.1; `handle(body)` returns (status, reply dict) or
    sleeps first. Records bodies and the most requests ever in flight at once."""

    def __init__(self, handle):
        self.bodies: list[dict] = []
        self.in_flight = self.most_in_flight = 0
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with server.lock:
                    server.bodies.append(body)
                    server.in_flight += 1
                    server.most_in_flight = max(server.most_in_flight, server.in_flight)
                try:
                    status, reply = handle(body, len(server.bodies))
                    out = reply if isinstance(reply, bytes) else json.dumps(reply).encode()
                    self.send_response(status)
                    self.send_header("Content-Length", str(len(out)))
                    self.end_headers()
                    self.wfile.write(out)
                except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout)
                    pass
                finally:
                    with server.lock:
                        server.in_flight -= 1

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()


@pytest.fixture
def serve():
    made = []

    def make(handle):
        made.append(Server(handle))
        return made[-1]

    yield make
    for server in made:
        server.httpd.shutdown()
        server.httpd.server_close()


def choices(texts, tokens, reason="stop"):
    return {"choices": [{"index": i, "finish_reason": reason, "message": {"role": "assistant", "content": t}}
                        for i, t in enumerate(texts)], "usage": {"completion_tokens": tokens}}


def test_sampling_request_carries_n_and_seed(serve):
    server = serve(lambda body, k: (200, choices([f"sample {i}" for i in range(body["n"])], 12, "length")))
    chat = HttpChat(server.url, "teacher", max_new_tokens=40)
    [generations] = chat.complete([CONVERSATION], n=3, temperature=0.7, seed=5)
    assert server.bodies == [{"model": "teacher", "messages": CONVERSATION, "temperature": 0.7, "max_tokens": 40,
                              "n": 3, "seed": 5}]
    assert generations == [Generation(f"sample {i}", "length", 4) for i in range(3)]  # 12 tokens over 3 choices
    chat.complete([CONVERSATION], n=2, temperature=1.0, max_new_tokens=7)
    assert server.bodies[-1]["max_tokens"] == 7 and server.bodies[-1]["n"] == 2


def test_greedy_asks_once_and_repeats(serve):
    server = serve(lambda body, k: (200, choices(["[[A]]"], 3)))
    [generations] = HttpChat(server.url, "m").complete([CONVERSATION], n=3, temperature=5e-5)
    assert generations == [Generation("[[A]]", "stop", 3)] * 3
    assert server.bodies == [{"model": "m", "messages": CONVERSATION, "temperature": 0, "max_tokens": 512}]


def test_parallel_requests_keep_their_order(serve):
    def echo(body, k):
        time.sleep(0.05 * (k % 3))
        return 200, choices([body["messages"][-1]["content"].upper()], 1)

    server = serve(echo)
    conversations = [[{"role": "user", "content": f"q{i}"}] for i in range(10)]
    out = HttpChat(server.url, "m", parallel=4).complete(conversations)
    assert [g.text for [g] in out] == [f"Q{i}" for i in range(10)]
    assert 1 < server.most_in_flight <= 4


@pytest.mark.parametrize("status", [429, 500, 503])
def test_retries_back_off_exponentially(serve, monkeypatch, status):
    waits = []
    monkeypatch.setattr(http_chat.time, "sleep", waits.append)
    server = serve(lambda body, k: (status, {"error": "busy"}) if k <= 2 else (200, choices(["ok"], 1)))
    [[generation]] = HttpChat(server.url, "m", backoff_s=1.5).complete([CONVERSATION])
    assert generation.text == "ok" and len(server.bodies) == 3 and waits == [1.5, 3.0]

    server = serve(lambda body, k: (status, {"error": "still busy"}))
    with pytest.raises(ChatError, match=rf"'m' at {server.url}/chat/completions: HTTP {status}.*after 3 attempts"):
        HttpChat(server.url, "m", retries=2).complete([CONVERSATION])
    assert len(server.bodies) == 3


def test_timeout_is_retried(serve):
    server = serve(lambda body, k: (time.sleep(1.0) if k == 1 else None) or (200, choices(["late"], 1)))
    [[generation]] = HttpChat(server.url, "m", timeout_s=0.3, backoff_s=0.0).complete([CONVERSATION])
    assert generation.text == "late" and len(server.bodies) == 2


def test_errors_name_the_problem(serve, monkeypatch):
    monkeypatch.setattr(http_chat.time, "sleep", lambda s: None)
    with pytest.raises(ValueError, match="expected http://"):
        HttpChat("localhost:8000/v1", "m")
    server = serve(lambda body, k: (404, {"error": "no such model"}))
    with pytest.raises(ChatError, match="HTTP 404.*no such model.*after 1 attempts"):
        HttpChat(server.url, "m").complete([CONVERSATION])
    server = serve(lambda body, k: (200, b"<html>proxy error</html>"))
    with pytest.raises(ChatError, match="unexpected response b'<html>proxy error"):
        HttpChat(server.url, "m").complete([CONVERSATION])
    server = serve(lambda body, k: (200, choices(["one"], 1)))
    with pytest.raises(ChatError, match="asked for 2 choices, got 1"):
        HttpChat(server.url, "m").complete([CONVERSATION], n=2, temperature=0.5)
    server = serve(lambda body, k: (200, choices([["not", "text"]], 1)))
    with pytest.raises(ChatError, match="not a string"):
        HttpChat(server.url, "m").complete([CONVERSATION])
    closed = server.url  # nothing listens there once the server is shut down
    server.httpd.shutdown()
    server.httpd.server_close()
    with pytest.raises(ChatError, match="URLError.*after 2 attempts"):
        HttpChat(closed, "m", retries=1).complete([CONVERSATION])


@pytest.fixture(scope="module")
def tiny_chat_dir(tmp_path_factory, smollm2_dir):
    """A tiny random Llama sharing SmolLM2's vocabulary, with SmolLM2's tokenizer and chat template,
    and a generation config setting top_k and top_p."""
    folder = tmp_path_factory.mktemp("tiny-chat")
    make_tiny_hf("llama", folder, vocab_size=49152, max_position_embeddings=256)
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(smollm2_dir / name, folder / name)
    (folder / "generation_config.json").write_text(json.dumps({"eos_token_id": 2, "top_k": 7, "top_p": 0.9}))
    return folder


@pytest.fixture
def generate_calls(monkeypatch):
    """The prompts and method of every sampler call LocalChat makes."""
    calls = []

    def recording(model, prompts, **kwargs):
        calls.append((list(prompts), kwargs["method"]))
        return generate(model, prompts, **kwargs)

    generate = chat_module.generate
    monkeypatch.setattr(chat_module, "generate", recording)
    return calls


def mesh_of(devices: int):
    return make_mesh(MeshConfig(data=devices), devices=jax.devices()[:devices])


def test_greedy_text_matches_transformers(tiny_chat_dir, generate_calls):
    chat = LocalChat(tiny_chat_dir, mesh_of(1), max_new_tokens=6)
    conversations = [CONVERSATION, [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]]
    out = chat.complete(conversations, n=2)
    assert len(generate_calls) == 1 and len(generate_calls[0][0]) == 2  # greedy: each conversation once
    tokenizer = transformers.AutoTokenizer.from_pretrained(tiny_chat_dir)
    hf = transformers.AutoModelForCausalLM.from_pretrained(tiny_chat_dir, dtype=torch.float32).eval()
    for conversation, generations in zip(conversations, out):
        text = tokenizer.apply_chat_template(conversation, add_generation_prompt=True, tokenize=False)
        ids = tokenizer(text, add_special_tokens=False, return_tensors="pt")["input_ids"]
        with torch.no_grad():
            new = hf.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=6, do_sample=False,
                              pad_token_id=2)[0, ids.shape[1]:]
        expected = Generation(tokenizer.decode(new, skip_special_tokens=True).strip(), "length", 6)
        assert generations == [expected, expected]


def test_samples_are_batched_together_and_long_prompts_recorded(tiny_chat_dir, generate_calls):
    chat = LocalChat(tiny_chat_dir, mesh_of(2), max_new_tokens=5, batch_size=3, buckets=(32, 64))
    assert chat.batch_size == 4  # rounded up to the 2 data shards
    conversations = [CONVERSATION, [{"role": "user", "content": "word " * 80}], [{"role": "user", "content": "Hi"}]]
    out = chat.complete(conversations, n=3, temperature=1.0, seed=3)
    assert out[1] == [Generation("", "prompt_too_long", 0)] * 3
    assert [len(prompts) for prompts, _ in generate_calls] == [4, 2]  # 2 conversations x 3 samples
    assert {method for _, method in generate_calls} == {Sample(temperature=1.0, top_k=7, top_p=0.9)}
    for i in (0, 2):
        assert len(out[i]) == 3 and all(g.tokens == 5 and g.finish_reason == "length" for g in out[i])
        assert len({g.text for g in out[i]}) > 1  # independent samples
    assert chat.complete(conversations, n=3, temperature=1.0, seed=3) == out  # seeded
    assert chat.complete(conversations, n=3, temperature=1.0, seed=4) != out


def test_sampling_defaults_lazy_load_and_bad_arguments(tiny_chat_dir, tmp_path):
    # transformers samples with these unless the generation config says otherwise
    assert HF_SAMPLING_DEFAULTS == {k: transformers.GenerationConfig._get_default_generation_params()[k]
                                    for k in ("top_k", "top_p")}
    chat = LocalChat(tiny_chat_dir, mesh_of(1))
    assert chat.method(0.7) == Sample(temperature=0.7, top_k=7, top_p=0.9)
    assert chat.method(0.0) == chat.method(5e-5) == Greedy()
    bare = tmp_path / "bare"
    shutil.copytree(tiny_chat_dir, bare)
    (bare / "generation_config.json").unlink()
    assert LocalChat(bare, mesh_of(1)).method(0.7) == Sample(temperature=0.7, top_k=50, top_p=1.0)
    with pytest.raises(ValueError, match="temperature=-0.1"):
        chat.complete([CONVERSATION], temperature=-0.1)
    with pytest.raises(ValueError, match="n=0"):
        chat.complete([CONVERSATION], n=0, temperature=0.7)
    with pytest.raises(ValueError, match="batch_size=0"):
        LocalChat(tiny_chat_dir, mesh_of(1), batch_size=0)
    assert chat._model is None  # nothing generated, nothing loaded
    chat.complete([CONVERSATION], max_new_tokens=1)
    assert chat._model is not None
    chat.release()
    assert chat._model is None
