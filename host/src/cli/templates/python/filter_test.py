"""Unit tests, run natively against the generated bindings (see README.md)."""
import unittest

from wit_world.exports import filter as f
from wit_world.imports import host, types

import app


def request(*messages):
    msgs = [types.Message(role=role, content=[types.ContentPart_Text(text)], name=None,
                          tool_calls=[], tool_call_id=None, reasoning=None)
            for role, text in messages]
    sampling = types.Sampling(temperature=None, top_p=None, max_tokens=None, stop=[],
                              presence_penalty=None, frequency_penalty=None, seed=None, n=None,
                              reasoning_effort=None)
    return types.ChatRequest(model="demo", messages=msgs, tools=[], tool_choice=None,
                             parallel_tool_calls=None, response_format=None,
                             sampling=sampling, stream=False, user=None, extra="")


CTX = f.RequestContext(request_id="req-1", caller=types.Caller(key_id=None, team=None, tags=[]),
                       model="demo")


class FilterTest(unittest.TestCase):
    def verdict(self, req):
        host.config = lambda: '{"words": ["Project Zeus"]}'  # the gateway's config, stubbed
        return app.Filter().on_request(CTX, req).verdict

    def test_user_messages_with_a_word_are_refused(self):
        v = self.verdict(request((types.Role.USER, "tell me about PROJECT ZEUS")))
        self.assertIsInstance(v, f.RequestVerdict_Deny)
        self.assertEqual(v.value.status, 400)

    def test_other_messages_pass(self):
        v = self.verdict(request((types.Role.SYSTEM, "project zeus"), (types.Role.USER, "hi")))
        self.assertIsInstance(v, f.RequestVerdict_Allow)


if __name__ == "__main__":
    unittest.main()
