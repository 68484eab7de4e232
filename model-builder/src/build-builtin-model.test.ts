/**
 * @module The generator's command line, run as the build runs it: a real child process.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";

const cli = fileURLToPath(new URL("./build-builtin-model.js", import.meta.url));

function runCli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [cli, ...args], (error, stdout, stderr) => {
      resolve({ code: error === null ? 0 : Number(error.code), stdout, stderr });
    });
  });
}

describe("build-builtin-model command", () => {
  let root: string;
  before(async () => {
    root = await mkdtemp(join(tmpdir(), "parley-cli-"));
  });
  after(async () => {
    await rm(root, { recursive: true, force: true });
  });

  test("writes a model of the requested size, then reports it up to date", async () => {
    const out = join(root, "custom");
    const args = ["--out", out, "--hidden", "32", "--layers", "1", "--vocab", "300", "--seed", "5"];
    const first = await runCli(args);
    assert.equal(first.code, 0, first.stderr);
    assert.match(first.stdout, /^wrote .*hidden 32, 1 layers, 4\/2 heads, vocab 300/);
    const config = JSON.parse(await readFile(join(out, "config.json"), "utf8"));
    assert.deepEqual(
      [config.hidden_size, config.num_hidden_layers, config.vocab_size],
      [32, 1, 300],
    );
    const second = await runCli(args);
    assert.equal(second.code, 0, second.stderr);
    assert.match(second.stdout, /is up to date/);
  });

  test("writes the built-in model, corpus weights and all, when given only --out", async () => {
    const out = join(root, "builtin");
    const result = await runCli(["--out", out]);
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /^wrote .*hidden 64, 2 layers, 4\/2 heads, vocab 2048/);
    const config = JSON.parse(await readFile(join(out, "config.json"), "utf8"));
    assert.match(config.parley, /bigram model of a public-domain English text/);
    assert.match(config.parley, /not a real language model/);
  });

  test("refuses bad options with exit code 2 and a message", async () => {
    const cases: [string[], RegExp][] = [
      [["--hidden", "128"], /--out is required/],
      [[], /--out is required/],
      [["--out", join(root, "bad"), "--hidden", "12.5"], /--hidden must be a non-negative integer/],
      [["--out", join(root, "bad"), "--vocab", "10"], /vocabSize must be at least 261/],
      [["--unknown"], /Unknown option/],
    ];
    for (const [args, message] of cases) {
      const result = await runCli(args);
      assert.equal(result.code, 2, args.join(" "));
      assert.match(result.stderr, message);
    }
  });
});
