/**
 * Readers that stop reading must not hold the batch (issue 13): a generation paused for credit
 * past --park-after-ms gives its slot to a waiting one (it is parked, its KV cache kept), resumes
 * exactly where it stopped once its reader reads again, and fails with resource_exhausted when
 * too many are parked or its reader stays away too long. Nothing is parked while nobody waits.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import type { Registry } from "prom-client";
import {
  builtinSource,
  collect,
  greedy,
  metricValue,
  startTestEngine,
} from "../testing/model-fixtures.js";
import type { Engine, GenerationEvent, GenerationRequest } from "./engine.js";
import { EngineError } from "./engine-error.js";

const model = { model: "parley-tiny" };

/** A generation whose reader took its first event and then stopped reading. */
interface Held {
  readonly iterator: AsyncIterator<GenerationEvent>;
  readonly tokenIds: number[];
}

async function hold(engine: Engine, request: GenerationRequest): Promise<Held> {
  const iterator = engine.generate(request, new AbortController().signal)[Symbol.asyncIterator]();
  const first = await iterator.next();
  assert.equal(first.done, false);
  return { iterator, tokenIds: [...first.value.tokenIds] };
}

/** Reads a held generation to its `finished` event and returns every token id it produced. */
async function readRest(held: Held): Promise<number[]> {
  for (
    let next = await held.iterator.next();
    next.done !== true;
    next = await held.iterator.next()
  ) {
    held.tokenIds.push(...next.value.tokenIds);
  }
  return held.tokenIds;
}

/** Rejects with `message` if `promise` has not settled after `ms`: how a test shows a hang. */
async function within<T>(promise: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(message)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

const parkedTotal = (metrics: Registry) =>
  metricValue(metrics, "parley_generations_parked_total", model);

function isUnread(error: unknown): boolean {
  return (
    error instanceof EngineError &&
    error.code === "resource_exhausted" &&
    /read nothing from this stream/.test(error.message)
  );
}

const long = (prompt: string) => greedy(prompt, 300);

test("max-batch generations whose readers never read leave room for another request", async () => {
  const { engine, metrics } = await startTestEngine([builtinSource()], {
    maxBatchSize: 2,
    creditWindow: 4,
    parkAfterMs: 50,
  });
  try {
    const held = await Promise.all([hold(engine, long("One")), hold(engine, long("Two"))]);
    const extra = await within(
      collect(engine, greedy("Hi", 4)),
      20_000,
      "the request waited behind generations whose readers never read",
    );
    assert.equal(extra.finished.usage.completionTokens, 4);
    // It was served while the others, still unread, were parked to make room for it.
    assert.ok((await parkedTotal(metrics)) >= 1);
    assert.ok((await metricValue(metrics, "parley_generations_parked", model)) >= 1);
    // Their readers come back: both run to their end.
    for (const generation of held) await readRest(generation);
    assert.equal(await metricValue(metrics, "parley_generations_parked", model), 0);
  } finally {
    await engine.close();
  }
});

test("a parked generation resumes with exactly the tokens it generates unparked", async () => {
  const resumed: GenerationRequest[] = [
    greedy("Once upon a time there was a small gateway that", 48),
    { ...greedy("Streaming tokens over HTTP/2 is", 48), sampling: { temperature: 1, seed: 11n } },
  ];
  const others = ["Hi", "Parley", "The batch"].map((p, i) => greedy(p, 5 + i * 3));
  const alone = await startTestEngine([builtinSource()], { maxBatchSize: 1 });
  const expected = new Map<GenerationRequest, number[]>();
  try {
    for (const request of [...resumed, ...others]) {
      expected.set(request, (await collect(alone.engine, request)).tokenIds);
    }
  } finally {
    await alone.engine.close();
  }

  // One slot: every other request can run only while the unread one is parked.
  const { engine, metrics } = await startTestEngine([builtinSource()], {
    maxBatchSize: 1,
    creditWindow: 2,
    parkAfterMs: 0,
  });
  try {
    for (const request of resumed) {
      const parkedBefore = await parkedTotal(metrics);
      const held = await hold(engine, request);
      for (const other of others) {
        const done = await within(collect(engine, other), 20_000, "the unread one was not parked");
        assert.deepEqual(done.tokenIds, expected.get(other));
        // Its reader reads one event (the cue to resume), then stops again.
        const next = await held.iterator.next();
        assert.equal(next.done, false);
        held.tokenIds.push(...next.value.tokenIds);
      }
      assert.deepEqual(await readRest(held), expected.get(request));
      assert.ok((await parkedTotal(metrics)) - parkedBefore >= others.length);
    }
  } finally {
    await engine.close();
  }
});

test("beyond --max-parked, the generation unread longest fails with resource_exhausted", async () => {
  const { engine, metrics } = await startTestEngine([builtinSource()], {
    maxBatchSize: 1,
    maxParked: 1,
    creditWindow: 2,
    parkAfterMs: 0,
  });
  try {
    const first = await hold(engine, long("One"));
    // The second runs only once the first is parked; then the third parks the second too.
    const second = await within(hold(engine, long("Two")), 20_000, "the first was not parked");
    const third = await within(collect(engine, greedy("Hi", 4)), 20_000, "the third waited");
    assert.equal(third.finished.usage.completionTokens, 4);
    await assert.rejects(readRest(first), isUnread);
    await readRest(second); // the one parked within the bound resumes and ends normally
    assert.equal(
      await metricValue(metrics, "parley_generations_total", { ...model, finish_reason: "unread" }),
      1,
    );
  } finally {
    await engine.close();
  }
});

test("with --max-parked 0 a reader-less generation fails instead of parking", async () => {
  const { engine } = await startTestEngine([builtinSource()], {
    maxBatchSize: 1,
    maxParked: 0,
    creditWindow: 2,
    parkAfterMs: 0,
  });
  try {
    const held = await hold(engine, long("One"));
    const other = await within(collect(engine, greedy("Hi", 4)), 20_000, "the other waited");
    assert.equal(other.finished.usage.completionTokens, 4);
    await assert.rejects(readRest(held), isUnread);
  } finally {
    await engine.close();
  }
});

test("a parked generation whose reader reads nothing for --park-timeout-ms fails", async () => {
  const { engine, metrics } = await startTestEngine([builtinSource()], {
    maxBatchSize: 1,
    creditWindow: 2,
    parkAfterMs: 0,
    parkTimeoutMs: 100,
  });
  try {
    const held = await hold(engine, long("One"));
    await within(collect(engine, greedy("Hi", 4)), 20_000, "the other waited");
    const unread = () =>
      metricValue(metrics, "parley_generations_total", { ...model, finish_reason: "unread" });
    await within(
      (async () => {
        while ((await unread()) === 0) await sleep(10);
      })(),
      20_000,
      "the parked generation was never stopped",
    );
    assert.equal(await metricValue(metrics, "parley_generations_parked", model), 0);
    // What the reader had not taken is still delivered, then the reason.
    const taken = held.tokenIds.length;
    await assert.rejects(readRest(held), isUnread);
    assert.ok(held.tokenIds.length > taken);
  } finally {
    await engine.close();
  }
});

test("a paused generation keeps its slot while nobody waits, and until --park-after-ms", async () => {
  const request = greedy("Once upon a time there was a small gateway that", 40);
  const { engine, metrics } = await startTestEngine([builtinSource()], {
    maxBatchSize: 1,
    creditWindow: 2,
    parkAfterMs: 0,
  });
  let expected: number[];
  try {
    expected = (await collect(engine, request)).tokenIds;
    const held = await hold(engine, request);
    await sleep(300);
    assert.equal(await parkedTotal(metrics), 0, "nobody waits: nothing to park for");
    assert.equal(await metricValue(metrics, "parley_generations_in_flight", model), 1);
    assert.deepEqual(await readRest(held), expected);
  } finally {
    await engine.close();
  }

  const patient = await startTestEngine([builtinSource()], {
    maxBatchSize: 1,
    creditWindow: 2,
    parkAfterMs: 600_000,
  });
  try {
    const held = await hold(patient.engine, request);
    let waitedDone = false;
    const waiter = collect(patient.engine, greedy("Hi", 4)).finally(() => {
      waitedDone = true;
    });
    await sleep(300);
    assert.equal(waitedDone, false, "the unread one keeps its slot until --park-after-ms");
    assert.equal(await metricValue(patient.metrics, "parley_queue_depth", model), 1);
    assert.deepEqual(await readRest(held), expected);
    assert.equal((await waiter).finished.usage.completionTokens, 4);
    assert.equal(await parkedTotal(patient.metrics), 0);
  } finally {
    await patient.engine.close();
  }
});
