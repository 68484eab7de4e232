/**
 * `--worker-nice`: a model worker takes its nice value before its onnxruntime session exists, so
 * the session's pool threads start with it too, and the main thread keeps its own. Linux only:
 * elsewhere threads have no nice values of their own.
 */
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { test } from "node:test";
import { builtinSource, greedy, startTestEngine } from "../testing/model-fixtures.js";

/** Every thread of this process: its name and nice value, from /proc/self/task/<id>/stat. */
function threads(): { id: number; name: string; nice: number }[] {
  return readdirSync("/proc/self/task").map((entry) => {
    const stat = readFileSync(`/proc/self/task/${entry}/stat`, "utf8");
    // "id (name) state ppid ...": the name may hold spaces, so fields count from its ")".
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return {
      id: Number(entry),
      name: stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")")),
      nice: Number(fields[16]),
    };
  });
}

test("a model worker and its onnxruntime threads run at --worker-nice; the main thread does not", async (t) => {
  if (process.platform !== "linux") return t.skip("thread nice values are Linux's");
  const before = new Set(threads().map((thread) => thread.id));
  const mainNice = threads().find((thread) => thread.id === process.pid)?.nice;
  const { engine } = await startTestEngine([builtinSource()], {
    workerNice: 7,
    intraOpThreads: 2,
  });
  try {
    const generation = engine.generate(greedy("Hello", 8), AbortSignal.timeout(30_000));
    for await (const _ of generation) {
      // Drained: a decode step has run on the session's threads.
    }
    // The threads the engine started: the worker and what it created (Node 22 names them all
    // "node", later versions after the worker), besides libuv's pool, which the main thread
    // starts on its first file read.
    const started = threads().filter(
      (thread) => !before.has(thread.id) && thread.name !== "libuv-worker",
    );
    assert.ok(started.length >= 2, `the worker and its pool thread: ${JSON.stringify(started)}`);
    assert.deepEqual(
      started.map((thread) => thread.nice),
      started.map(() => 7),
      JSON.stringify(started),
    );
    assert.equal(threads().find((thread) => thread.id === process.pid)?.nice, mainNice);
  } finally {
    await engine.close();
  }
});
