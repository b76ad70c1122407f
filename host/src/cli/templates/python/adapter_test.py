"""Unit tests, run natively against the generated bindings (see README.md)."""
import json
import unittest

from componentize_py_types import Err
from wit_world.exports import adapter as a
from wit_world.imports import types

import app
from adapter import StreamDecoder


def request(*messages, stream=False):
    msgs = [types.Message(role=role, content=[types.ContentPart_Text(text)], name=None,
                          tool_calls=[], tool_call_id=None, reasoning=None)
            for role, text in messages]
    sampling = types.Sampling(temperature=None, top_p=None, max_tokens=64, stop=[],
                              presence_penalty=None, frequency_penalty=None, seed=None, n=None,
                              reasoning_effort=None)
    return types.ChatRequest(model="demo", messages=msgs, tools=[], tool_choice=None,
                             parallel_tool_calls=None, response_format=None,
                             sampling=sampling, stream=stream, user=None, extra="")


DEPLOYMENT = a.Deployment(name="local", base_url="http://127.0.0.1:8000/v1", model_id="my-model",
                          settings="{}")


class AdapterTest(unittest.TestCase):
    def test_builds_an_openai_style_request(self):
        r = app.Adapter().build_request(DEPLOYMENT, request((types.Role.USER, "hi")))
        self.assertEqual((r.method, r.path), ("POST", "/chat/completions"))
        body = json.loads(r.body)
        self.assertEqual(body["model"], "my-model")
        self.assertEqual(body["messages"], [{"role": "user", "content": "hi"}])
        self.assertEqual(body["max_tokens"], 64)

    def test_reads_an_answer_and_an_error(self):
        ok = a.UpstreamResponse(status=200, headers=[], body=json.dumps({
            "id": "c1", "model": "m", "choices": [{"message": {"content": "hello"}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 3, "completion_tokens": 1}}).encode())
        r = app.Adapter().parse_response(DEPLOYMENT, ok)
        self.assertEqual(r.choices[0].message.content[0].value, "hello")
        self.assertEqual(r.usage.prompt_tokens, 3)
        err = a.UpstreamResponse(status=429, headers=[], body=b'{"error":{"message":"slow down"}}')
        with self.assertRaises(Err) as e:
            app.Adapter().parse_response(DEPLOYMENT, err)
        self.assertEqual(e.exception.value.message, "slow down")

    def test_decodes_a_stream(self):
        d = StreamDecoder(DEPLOYMENT, 200, [])
        chunks = d.decode(a.StreamEvent(event=None, data=b'{"id":"c","choices":[{"delta":{"content":"Hel"}}]}'))
        self.assertEqual(chunks[0].choices[0].content, "Hel")
        self.assertEqual(d.decode(a.StreamEvent(event=None, data=b"[DONE]")), [])


if __name__ == "__main__":
    unittest.main()
