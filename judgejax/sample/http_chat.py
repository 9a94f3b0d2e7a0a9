"""An OpenAI-compatible chat-completions endpoint as a chat backend (standard library only)."""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from typing import Sequence

from tqdm import tqdm

from judgejax.sample.chat import Generation, Message, distinct_samples, is_greedy

API_KEY_ENV = "OPENAI_API_KEY"


class ChatError(RuntimeError):
    """The endpoint gave no usable reply, even after the retries."""


def retryable(status: int) -> bool:
    """Timeouts, conflicts, rate limits and server errors may pass; other client errors will not."""
    return status in (408, 409, 429) or status >= 500


class HttpChat:
    """POSTs `{url}/chat/completions` with model, messages, temperature and max_tokens, plus n and
    seed when sampling; sends `Authorization: Bearer $OPENAI_API_KEY` when that variable is set.
    One request per conversation, `parallel` in flight at once. A request failing on the network
    or with a retryable status is retried `retries` times, waiting `backoff_s` doubled each time;
    then, as on any other failure, ChatError names the endpoint, model and problem. The token
    count of a generation is the reply's `usage.completion_tokens` shared evenly by its choices."""

    def __init__(self, url: str, model: str, *, max_new_tokens: int = 512, parallel: int = 8, retries: int = 3,
                 timeout_s: float = 600.0, backoff_s: float = 2.0) -> None:
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"endpoint {url!r}: expected http://host[:port]/v1 or https://...")
        if parallel < 1 or max_new_tokens < 1 or retries < 0:
            raise ValueError(f"parallel={parallel}, max_new_tokens={max_new_tokens} must be >= 1 "
                             f"and retries={retries} >= 0")
        self.endpoint = url.rstrip("/") + "/chat/completions"
        self.model = model
        self.name = f"{model}@{url}"
        self.max_new_tokens = max_new_tokens
        self.batch_size = parallel
        self.retries = retries
        self.timeout_s = timeout_s
        self.backoff_s = backoff_s
        self.api_key = os.environ.get(API_KEY_ENV)

    def complete(self, conversations: Sequence[list[Message]], *, n: int = 1, temperature: float = 0.0,
                 max_new_tokens: int | None = None, seed: int = 0, desc: str = "") -> list[list[Generation]]:
        copies = distinct_samples(n, temperature)
        sampling = not is_greedy(temperature)
        common = {"model": self.model, "temperature": temperature if sampling else 0,
                  "max_tokens": self.max_new_tokens if max_new_tokens is None else max_new_tokens}
        if sampling:
            common.update(n=n, seed=seed)

        def one(messages: list[Message]) -> list[Generation]:
            return self._post({**common, "messages": messages}, copies) * (n // copies)

        pool = ThreadPoolExecutor(max_workers=self.batch_size)
        try:
            return list(tqdm(pool.map(one, conversations), total=len(conversations), desc=desc or self.name,
                             unit="conversation", disable=len(conversations) <= self.batch_size))
        finally:  # after a failure, requests not yet sent are dropped
            pool.shutdown(cancel_futures=True)

    def _post(self, body: dict, choices: int) -> list[Generation]:
        data = json.dumps(body).encode()
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        problem = ""
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(self.backoff_s * 2 ** (attempt - 1))
            request = urllib.request.Request(self.endpoint, data=data, headers=headers, method="POST")
            try:
                with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                    return self._parse(response.read(), choices)
            except urllib.error.HTTPError as error:
                problem = f"HTTP {error.code}: {error.read()[:300]!r}"
                if not retryable(error.code):
                    break
            except (urllib.error.URLError, TimeoutError, ConnectionError) as error:
                problem = f"{type(error).__name__}: {error}"
        raise ChatError(f"model {self.model!r} at {self.endpoint}: {problem} (after {attempt + 1} attempts)")

    def _parse(self, raw: bytes, expected: int) -> list[Generation]:
        try:
            response = json.loads(raw)
            choices = response["choices"]
            texts = [c["message"]["content"] or "" for c in choices]
        except (ValueError, KeyError, IndexError, TypeError) as error:
            raise ChatError(f"{self.endpoint}: unexpected response {raw[:300]!r} ({error!r})") from error
        if len(texts) != expected:
            raise ChatError(f"{self.endpoint}: asked for {expected} choices, got {len(texts)}")
        if not all(isinstance(text, str) for text in texts):
            raise ChatError(f"{self.endpoint}: a message content is not a string: {raw[:300]!r}")
        tokens = int((response.get("usage") or {}).get("completion_tokens") or 0) // expected
        return [Generation(text, str(c.get("finish_reason") or "stop"), tokens) for c, text in zip(choices, texts)]
