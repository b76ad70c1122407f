"""The official `openai` Python SDK against a running Switchyard gateway.

Run by the Rust test `e2e::openai_sdk`, which starts the mock upstream and the gateway
and passes their addresses in SWITCHYARD_BASE_URL and SWITCHYARD_KEY.
"""

import os

import openai
import pytest

BASE_URL = os.environ["SWITCHYARD_BASE_URL"]
KEY = os.environ["SWITCHYARD_KEY"]


def client(**kw):
    return openai.OpenAI(base_url=BASE_URL, api_key=kw.pop("api_key", KEY), **kw)


def test_non_streaming_completion():
    r = client().chat.completions.create(
        model="demo",
        messages=[{"role": "system", "content": "be brief"}, {"role": "user", "content": "hello sdk"}],
    )
    assert r.object == "chat.completion"
    assert r.choices[0].message.role == "assistant"
    assert r.choices[0].message.content == "echo: hello sdk"
    assert r.choices[0].finish_reason == "stop"
    assert r.usage.prompt_tokens > 0 and r.usage.completion_tokens > 0


def test_raw_response_names_the_deployment():
    raw = client().chat.completions.with_raw_response.create(
        model="demo", messages=[{"role": "user", "content": "hi"}]
    )
    assert raw.headers["x-switchyard-deployment"] == "good"
    assert raw.headers["x-request-id"].startswith("req_")
    assert int(raw.headers["x-switchyard-overhead-us"]) > 0


def test_streaming_with_usage():
    stream = client().chat.completions.create(
        model="demo",
        messages=[{"role": "user", "content": "stream me please"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "echo: stream me please"
    assert chunks[-1].choices == []
    assert chunks[-1].usage.completion_tokens > 0
    assert any(c.choices and c.choices[0].finish_reason == "stop" for c in chunks)


def test_tool_calls_round_trip():
    r = client().chat.completions.create(
        model="tools",
        messages=[{"role": "user", "content": "weather in Oslo"}],
        tools=[{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}],
    )
    call = r.choices[0].message.tool_calls[0]
    assert r.choices[0].finish_reason == "tool_calls"
    assert call.function.name == "get_weather"
    assert call.id


def test_models_lists_public_models():
    ids = sorted(m.id for m in client().models.list())
    assert ids == ["demo", "limited", "tools"]


def test_wrong_key_raises_authentication_error():
    with pytest.raises(openai.AuthenticationError) as e:
        client(api_key="sk-wrong").chat.completions.create(model="demo", messages=[{"role": "user", "content": "x"}])
    assert e.value.code == "invalid_api_key"


def test_unknown_model_raises_not_found():
    with pytest.raises(openai.NotFoundError) as e:
        client().chat.completions.create(model="no-such-model", messages=[{"role": "user", "content": "x"}])
    assert e.value.code == "model_not_found"
    assert e.value.param == "model"


def test_rate_limited_raises_rate_limit_error():
    with pytest.raises(openai.RateLimitError) as e:
        client(max_retries=0).chat.completions.create(model="limited", messages=[{"role": "user", "content": "x"}])
    assert e.value.response.headers.get("retry-after")


def test_bad_request_raises_bad_request_error():
    with pytest.raises(openai.BadRequestError) as e:
        client().chat.completions.create(model="demo", messages=[{"role": "robot", "content": "x"}])
    assert e.value.param == "messages[0].role"


def test_missing_content_raises_bad_request_error():
    with pytest.raises(openai.BadRequestError) as e:
        client().chat.completions.create(model="demo", messages=[{"role": "user"}])
    assert e.value.param == "messages[0].content"
    assert "messages[0].content" in e.value.message
