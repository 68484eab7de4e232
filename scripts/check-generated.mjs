#!/usr/bin/env node
/**
 * Fails when gen/src differs from what `buf generate` produces from proto/ now, so generated
 * code can never drift from the contract. Generates into a temp dir; the work tree is untouched.
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";

const root = new URL("..", import.meta.url).pathname;
const out = mkdtempSync(join(tmpdir(), "parley-gen-"));

function files(dir) {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? files(path) : [path];
  });
}

try {
  execFileSync("npx", ["buf", "generate", "--output", out], { cwd: root, stdio: "inherit" });
  const fresh = join(out, "gen/src");
  const committed = join(root, "gen/src");
  const a = new Set(files(fresh).map((f) => relative(fresh, f)));
  const b = new Set(files(committed).map((f) => relative(committed, f)));
  const problems = [];
  for (const f of a) {
    if (!b.has(f)) problems.push(`missing from gen/src: ${f}`);
    else if (!readFileSync(join(fresh, f)).equals(readFileSync(join(committed, f)))) {
      problems.push(`out of date: gen/src/${f}`);
    }
  }
  for (const f of b) if (!a.has(f)) problems.push(`not generated from proto/: gen/src/${f}`);
  if (problems.length > 0) {
    console.error(`${problems.join("\n")}\nRun \`npm run generate\` and commit gen/.`);
    process.exit(1);
  }
  console.log(`gen/src matches buf generate (${a.size} files)`);
} finally {
  rmSync(out, { recursive: true, force: true });
}
