"""An OpenAI-compatible chat-completions endpoint as a chat backend (standard library only)."""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request

from tqdm import tqdm

from judgejax.sample.chat import Generation


class HttpChat:
    def __init__(self, url: str, model: str, *, api_key: str | None = None, timeout: float = 600.0):
        self.url = url.rstrip("/") + "/chat/completions"
        self.model = model
        self.name = f"{model}@{url}"
        self.api_key = api_key if api_key is not None else os.environ.get("OPENAI_API_KEY")
        self.timeout = timeout

    def _post(self, body: dict) -> dict:
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        request = urllib.request.Request(self.url, json.dumps(body).encode(), headers)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as e:
            raise RuntimeError(f"{self.url}: HTTP {e.code}: {e.read()[:500]!r}") from e
        except urllib.error.URLError as e:
            raise RuntimeError(f"{self.url}: cannot connect ({e.reason})") from e

    def complete(self, conversations, *, n=1, temperature=0.0, max_new_tokens=512, seed=0, desc=""):
        out = []
        for conversation in tqdm(conversations, desc=desc or self.name, unit="prompt"):
            reply = self._post({"model": self.model, "messages": conversation, "n": n, "seed": seed,
                                "temperature": temperature, "max_tokens": max_new_tokens})
            choices = reply.get("choices") or []
            if len(choices) != n:
                raise RuntimeError(f"{self.url}: asked for n={n} choices, got {len(choices)}")
            tokens = (reply.get("usage") or {}).get("completion_tokens", 0) // max(n, 1)
            out.append([Generation(text=c["message"]["content"] or "", num_tokens=tokens,
                                   finish_reason={"length": "length"}.get(c.get("finish_reason"), "stop"))
                        for c in choices])
        return out
