"""The real-LLM fixture itself: the server answers an OpenAI-style chat completion."""

from __future__ import annotations

import httpx
from llama_server import LlamaServer


def test_server_answers_a_chat_completion(llama_server: LlamaServer) -> None:
    before = llama_server.requests_served()
    response = httpx.post(
        llama_server.base_url + "/chat/completions",
        json={
            "model": llama_server.model,
            "messages": [{"role": "user", "content": "Reply with OK"}],
            "max_tokens": 4,
            "temperature": 0,
        },
        timeout=60,
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["choices"][0]["message"]["content"] is not None
    assert body["usage"]["prompt_tokens"] > 0
    assert llama_server.requests_served() == before + 1
