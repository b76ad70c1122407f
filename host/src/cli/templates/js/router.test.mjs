// Unit tests, run natively: `npm test` (support/register.mjs stands in for the host).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setConfig } from '../support/host-stub.mjs';
import { router } from '../src/plugin.js';

const candidate = (name, price, tags = [], circuit = 'closed') => ({
  name, adapter: 'openai', tags, inputPricePerMtok: price, outputPricePerMtok: price, weight: 1,
  stats: { latencyEwmaMs: 100, ttftEwmaMs: 0, errorRate: 0, inFlight: 0, circuit, requests: 10n,
    rateLimitHeadroom: undefined },
});
const request = { model: 'demo', estimatedPromptTokens: 10, maxTokens: undefined, stream: false,
  hasTools: false, caller: { keyId: undefined, team: undefined, tags: [] }, requestSeed: 1n };

test('tagged first, then cheapest, open circuits last', () => {
  const cs = [candidate('dear-fast', 9, ['fast']), candidate('cheap', 1), candidate('cheap-fast', 2, ['fast'])];
  setConfig('{}');
  assert.deepEqual(router.route(request, cs).order, [1, 2, 0]);
  setConfig('{"prefer_tag": "fast"}');
  assert.deepEqual(router.route(request, cs).order, [2, 0, 1]);
  cs[2] = candidate('cheap-fast', 2, ['fast'], 'open');
  assert.deepEqual(router.route(request, cs).order, [0, 1, 2]);
});

test('a typo in the config is an error naming it', () => {
  setConfig('{"prefer": "x"}');
  assert.throws(() => router.route(request, [candidate('a', 1)]), (e) => e.message.includes('prefer'));
});
