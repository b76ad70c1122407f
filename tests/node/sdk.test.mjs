// The official `openai` Node SDK against a running Switchyard gateway. Run by the Rust
// test `e2e::openai_node`, which starts the mock upstream and the gateway and passes
// their address in SWITCHYARD_BASE_URL and the client key in SWITCHYARD_KEY.
import assert from "node:assert/strict";
import { test } from "node:test";
import OpenAI from "openai";

const baseURL = process.env.SWITCHYARD_BASE_URL;
const apiKey = process.env.SWITCHYARD_KEY;
const client = (opts = {}) => new OpenAI({ baseURL, apiKey, maxRetries: 0, ...opts });
const hi = [{ role: "user", content: "hello there" }];

test("non-streaming completion", async () => {
  const r = await client().chat.completions.create({ model: "demo", messages: hi });
  assert.equal(r.object, "chat.completion");
  assert.equal(r.choices[0].message.content, "echo: hello there");
  assert.ok(r.usage.total_tokens > 0);
});

test("streaming with usage", async () => {
  const stream = await client().chat.completions.create({
    model: "demo",
    messages: hi,
    stream: true,
    stream_options: { include_usage: true },
  });
  let text = "";
  let usage = null;
  for await (const chunk of stream) {
    text += chunk.choices[0]?.delta?.content ?? "";
    if (chunk.usage) usage = chunk.usage;
  }
  assert.equal(text, "echo: hello there");
  assert.ok(usage.completion_tokens > 0);
});

// Aborting a stream after its first chunk must settle the SDK's iteration. Through
// undici 6 (Node 20's fetch) a response head written alone, followed by a short body and
// its end in one packet, left the read pending forever (nodejs/undici#4089); the process
// then exited with code 13. Each round is bounded, so a hang fails instead of stalling.
test("aborting a stream settles, every time", async () => {
  for (let round = 0; round < 40; round++) {
    const controller = new AbortController();
    const consumed = (async () => {
      const stream = await client().chat.completions.create(
        { model: "demo", messages: hi, stream: true },
        { signal: controller.signal },
      );
      try {
        for await (const _ of stream) {
          controller.abort();
        }
      } catch (e) {
        if (!(e instanceof OpenAI.APIUserAbortError) && e.name !== "AbortError") throw e;
      }
      return "settled";
    })();
    let timer;
    const timeout = new Promise((resolve) => {
      timer = setTimeout(() => resolve("hung"), 5000);
    });
    const outcome = await Promise.race([consumed, timeout]);
    clearTimeout(timer);
    assert.equal(outcome, "settled", `round ${round}: the aborted stream never settled`);
  }
});

test("a request missing content raises BadRequestError naming the parameter", async () => {
  await assert.rejects(
    client().chat.completions.create({ model: "demo", messages: [{ role: "user" }] }),
    (e) => {
      assert.ok(e instanceof OpenAI.BadRequestError, String(e));
      assert.equal(e.param, "messages[0].content");
      return true;
    },
  );
});

test("a wrong key raises AuthenticationError", async () => {
  await assert.rejects(
    client({ apiKey: "sk-wrong" }).chat.completions.create({ model: "demo", messages: hi }),
    OpenAI.AuthenticationError,
  );
});

test("an unknown model raises NotFoundError", async () => {
  await assert.rejects(
    client().chat.completions.create({ model: "nope", messages: hi }),
    OpenAI.NotFoundError,
  );
});
