// Unit tests, run natively: `npm test` (support/register.mjs stands in for the host).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setConfig } from '../support/host-stub.mjs';
import { filter } from '../src/plugin.js';

const message = (role, text) => ({ role, content: [{ tag: 'text', val: text }], toolCalls: [] });
const request = (...messages) => ({ model: 'demo', messages, tools: [], stream: false });
const ctx = { requestId: 'req-1', caller: { tags: [] }, model: 'demo' };

test('user messages with a word are refused', () => {
  setConfig('{"words": ["Project Zeus"]}');
  const v = filter.onRequest(ctx, request(message('user', 'tell me about PROJECT ZEUS'))).verdict;
  assert.equal(v.tag, 'deny');
  assert.equal(v.val.status, 400);
});

test('other messages pass', () => {
  setConfig('{"words": ["Project Zeus"]}');
  const v = filter.onRequest(ctx, request(message('system', 'project zeus'), message('user', 'hi'))).verdict;
  assert.equal(v.tag, 'allow');
});
