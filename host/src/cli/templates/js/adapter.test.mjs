// Unit tests, run natively: `npm test`.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { adapter } from '../src/plugin.js';

const enc = (s) => new TextEncoder().encode(s);
const deployment = { name: 'local', baseUrl: 'http://127.0.0.1:8000/v1', modelId: 'my-model', settings: '{}' };
const request = (text, stream = false) => ({
  model: 'demo', tools: [], toolChoice: undefined, parallelToolCalls: undefined, responseFormat: undefined,
  messages: [{ role: 'user', content: [{ tag: 'text', val: text }], name: undefined, toolCalls: [],
    toolCallId: undefined, reasoning: undefined }],
  sampling: { temperature: undefined, topP: undefined, maxTokens: 64, stop: [], presencePenalty: undefined,
    frequencyPenalty: undefined, seed: undefined, n: undefined, reasoningEffort: undefined },
  stream, user: undefined, extra: '',
});

test('builds an OpenAI-style request', () => {
  const r = adapter.buildRequest(deployment, request('hi'));
  assert.equal(r.path, '/chat/completions');
  const body = JSON.parse(new TextDecoder().decode(r.body));
  assert.equal(body.model, 'my-model');
  assert.deepEqual(body.messages, [{ role: 'user', content: 'hi' }]);
  assert.equal(body.max_tokens, 64);
});

test('reads an answer and an error', () => {
  const ok = { status: 200, headers: [], body: enc(JSON.stringify({ id: 'c1', model: 'm',
    choices: [{ message: { content: 'hello' }, finish_reason: 'stop' }],
    usage: { prompt_tokens: 3, completion_tokens: 1 } })) };
  const r = adapter.parseResponse(deployment, ok);
  assert.equal(r.choices[0].message.content[0].val, 'hello');
  assert.equal(r.usage.promptTokens, 3);
  assert.throws(() => adapter.parseResponse(deployment,
    { status: 429, headers: [], body: enc('{"error":{"message":"slow down"}}') }),
  (e) => e.kind === 'upstream-error' && e.message === 'slow down');
});

test('decodes a stream', () => {
  const d = new adapter.StreamDecoder(deployment, 200, []);
  const chunks = d.decode({ event: undefined, data: enc('{"id":"c","choices":[{"delta":{"content":"Hel"}}]}') });
  assert.equal(chunks[0].choices[0].content, 'Hel');
  assert.deepEqual(d.decode({ event: undefined, data: enc('[DONE]') }), []);
});
