"""Judge backends: a local model through the jitted sampler (greedy), or an OpenAI-compatible
chat-completions endpoint over HTTP (temperature 0). Both answer a list of conversations with one
`Reply` each; `chunk_size` is how many the caller hands over between saves."""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from typing import Protocol, Sequence

from judgejax.general.chat_model import LocalChat, Message, Reply

API_KEY_ENV = "OPENAI_API_KEY"
RETRY_STATUS = frozenset({408, 409, 429, 500, 502, 503, 504})


class Judge(Protocol):
    name: str
    chunk_size: int

    def complete(self, conversations: Sequence[list[Message]]) -> list[Reply]:
        ...


class JudgeError(RuntimeError):
    """The judge could not produce a reply (not a rating failure: nothing is recorded)."""


def safe_name(name: str) -> str:
    """A model or judge name usable as one path component."""
    cleaned = name.strip().replace("/", "_").replace("\\", "_")
    if not cleaned or cleaned in (".", ".."):
        raise ValueError(f"name {name!r} cannot name a file")
    return cleaned


class LocalJudge:
    def __init__(self, chat: LocalChat, name: str) -> None:
        self.chat = chat
        self.name = safe_name(name)
        self.chunk_size = chat.batch_size

    def complete(self, conversations: Sequence[list[Message]]) -> list[Reply]:
        return self.chat.reply(conversations, temperature=0.0)


class HttpJudge:
    """POSTs `{url}/chat/completions` with model, messages, temperature 0 and max_tokens; sends
    `Authorization: Bearer $OPENAI_API_KEY` when that variable is set. Requests run `parallel`
    at a time; a failed request is retried (`retries` times, on network errors and on status
    408/409/429/5xx) and then raises JudgeError."""

    def __init__(self, url: str, model: str, *, max_tokens: int, parallel: int = 8, retries: int = 3,
                 timeout_s: float = 600.0, backoff_s: float = 2.0) -> None:
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"--judge-url {url!r}: expected http://host[:port]/v1 or https://...")
        self.endpoint = url.rstrip("/") + "/chat/completions"
        self.model = model
        self.name = safe_name(model)
        self.max_tokens = max_tokens
        self.chunk_size = parallel
        self.retries = retries
        self.timeout_s = timeout_s
        self.backoff_s = backoff_s

    def complete(self, conversations: Sequence[list[Message]]) -> list[Reply]:
        with ThreadPoolExecutor(max_workers=self.chunk_size) as pool:
            return list(pool.map(self._one, conversations))

    def _one(self, messages: list[Message]) -> Reply:
        body = json.dumps({"model": self.model, "messages": messages, "temperature": 0,
                           "max_tokens": self.max_tokens}).encode()
        headers = {"Content-Type": "application/json"}
        if os.environ.get(API_KEY_ENV):
            headers["Authorization"] = f"Bearer {os.environ[API_KEY_ENV]}"
        problem = ""
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(self.backoff_s * 2 ** (attempt - 1))
            request = urllib.request.Request(self.endpoint, data=body, headers=headers, method="POST")
            try:
                with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                    return self._parse(response.read())
            except urllib.error.HTTPError as error:
                problem = f"HTTP {error.code}: {error.read()[:300]!r}"
                if error.code not in RETRY_STATUS:
                    break
            except (urllib.error.URLError, TimeoutError, ConnectionError) as error:
                problem = f"{type(error).__name__}: {error}"
        raise JudgeError(f"judge {self.model!r} at {self.endpoint}: {problem}")

    def _parse(self, raw: bytes) -> Reply:
        try:
            response = json.loads(raw)
            choice = response["choices"][0]
            text = choice["message"]["content"]
        except (ValueError, KeyError, IndexError, TypeError) as error:
            raise JudgeError(f"{self.endpoint}: unexpected response {raw[:300]!r} ({error!r})") from error
        if not isinstance(text, str):
            raise JudgeError(f"{self.endpoint}: message content is {type(text).__name__}, not a string")
        usage = response.get("usage") or {}
        return Reply(text, str(choice.get("finish_reason") or "stop"), int(usage.get("completion_tokens") or 0))
