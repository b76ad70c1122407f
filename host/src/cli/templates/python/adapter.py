"""{{name}}: a Switchyard adapter for a server speaking OpenAI's Chat Completions
(`POST {base_url}/chat/completions`: vLLM, llama.cpp's server, Ollama, LM Studio), text
only, streamed or not. The host does the HTTP call and adds the credential; this code only
writes the request and reads the answer. Start here for your own model's API.

Deployment settings (`[deployments.NAME.settings]`), optional: `path = "/chat/completions"`.
"""
import json

from componentize_py_types import Err
from wit_world import exports
from wit_world.exports import adapter as a
from wit_world.imports import types

ROLES = {
    types.Role.SYSTEM: "system",
    types.Role.DEVELOPER: "system",
    types.Role.USER: "user",
    types.Role.ASSISTANT: "assistant",
    types.Role.TOOL: "tool",
}
FINISH = {
    "stop": types.FinishReason.STOP,
    "length": types.FinishReason.LENGTH,
    "tool_calls": types.FinishReason.TOOL_CALLS,
    "content_filter": types.FinishReason.CONTENT_FILTER,
}


def fail(kind: types.ErrorKind, message: str) -> Err:
    return Err(types.PluginError(kind=kind, message=message))


def read_object(data: bytes, what: str) -> dict:
    try:
        v = json.loads(data)
    except ValueError:
        raise fail(types.ErrorKind.BAD_UPSTREAM_RESPONSE, f"the {what} is not JSON")
    if not isinstance(v, dict):
        raise fail(types.ErrorKind.BAD_UPSTREAM_RESPONSE, f"the {what} is not a JSON object")
    return v


def usage(v) -> types.Usage | None:
    # Counts must be whole numbers in range: anything else would trap when handed over.
    counts = [v.get(k) if isinstance(v, dict) else None for k in ("prompt_tokens", "completion_tokens")]
    if not all(isinstance(n, int) and not isinstance(n, bool) and 0 <= n < 2**32 for n in counts):
        return None
    return types.Usage(prompt_tokens=v["prompt_tokens"], completion_tokens=v["completion_tokens"],
                       cached_tokens=0, cache_creation_tokens=0, reasoning_tokens=0)


class Adapter(exports.Adapter):
    def build_request(self, deployment: a.Deployment, request: types.ChatRequest) -> a.UpstreamRequest:
        settings = json.loads(deployment.settings or "{}")
        unknown = set(settings) - {"path"}
        if unknown:
            raise fail(types.ErrorKind.INTERNAL, f"{{name}}: unknown setting `{sorted(unknown)[0]}`")
        if request.tools:
            raise fail(types.ErrorKind.UNSUPPORTED, "this adapter does not support tools")
        messages = []
        for i, m in enumerate(request.messages):
            text = ""
            for part in m.content:
                if not isinstance(part, types.ContentPart_Text):
                    raise fail(types.ErrorKind.INVALID_REQUEST, f"messages[{i}]: only text is supported")
                text += part.value
            messages.append({"role": ROLES[m.role], "content": text})
        body = {"model": deployment.model_id, "messages": messages, "stream": request.stream}
        s = request.sampling
        if s.max_tokens is not None:
            body["max_tokens"] = s.max_tokens
        if s.temperature is not None:
            body["temperature"] = s.temperature
        if s.stop:
            body["stop"] = s.stop
        if request.stream:
            # Usage in the last chunk, so the gateway bills what the server counted.
            body["stream_options"] = {"include_usage": True}
        return a.UpstreamRequest(
            method="POST",
            path=settings.get("path", "/chat/completions"),
            headers=[types.Header(name="content-type", value=b"application/json")],
            body=json.dumps(body).encode(),
            credential=a.CredentialPlacement_Bearer(),
            streaming=a.StreamFraming.SSE if request.stream else None,
        )

    def parse_response(self, deployment: a.Deployment, response: a.UpstreamResponse) -> types.ChatResponse:
        if not 200 <= response.status < 300:
            try:
                message = json.loads(response.body)["error"]["message"]
            except (ValueError, KeyError, TypeError):
                message = f"the upstream answered with HTTP status {response.status}"
            raise fail(types.ErrorKind.UPSTREAM_ERROR, str(message))
        v = read_object(response.body, "response")
        if not isinstance(v.get("choices"), list):
            raise fail(types.ErrorKind.BAD_UPSTREAM_RESPONSE, "no `choices`")
        choices = []
        for i, c in enumerate(v["choices"]):
            text = ((c.get("message") or {}).get("content")) or ""
            message = types.Message(role=types.Role.ASSISTANT, content=[types.ContentPart_Text(text)],
                                    name=None, tool_calls=[], tool_call_id=None, reasoning=None)
            choices.append(types.Choice(index=i, message=message,
                                        finish_reason=FINISH.get(c.get("finish_reason"))))
        created = v.get("created")
        created = created if isinstance(created, int) and 0 <= created < 2**64 else 0
        return types.ChatResponse(id=str(v.get("id") or ""), model=str(v.get("model") or ""),
                                  created=created, choices=choices,
                                  usage=usage(v.get("usage")), extra="")
