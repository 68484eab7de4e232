/**
 * @module The repository's Dockerfile, checked without a container runtime: this machine and CI
 * reach no image registry, so no base image can be pulled and no OCI build can run. Instead the
 * Dockerfile is parsed (dockerfile-ast, the parser of VS Code's Docker language server) and its
 * stages are carried out in temporary folders, one per stage, from a `git archive` of HEAD
 * filtered by `.dockerignore` (@balena/dockerignore, Docker's own matching rules): each COPY
 * copies, each RUN runs in its WORKDIR with its ENV (npm offline: tests never use the network),
 * and the last stage's ENTRYPOINT is started from the last stage's files alone and answers the
 * README's quickstart curl and the image's own HEALTHCHECK command. What this cannot check is
 * the base image itself (its Node and npm, its `node` user) and file ownership.
 */

import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { cp, mkdir, mkdtemp, readdir, readFile, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join, relative } from "node:path";
import { describe, it } from "node:test";
import dockerignoreModule from "@balena/dockerignore";
import {
  type Copy,
  DockerfileParser,
  type Env,
  type From,
  type Healthcheck,
  type Instruction,
  type JSONInstruction,
} from "dockerfile-ast";
import { repoRoot } from "../testing/model-fixtures.js";
import { runCommand } from "../testing/run-command.js";
import { spawnParley } from "../testing/spawn-parley.js";

const dockerfilePath = join(repoRoot, "Dockerfile");

// The package is CommonJS (`module.exports` is the factory) typed with an ES `export default`.
const dockerignore = dockerignoreModule as unknown as typeof dockerignoreModule.default;

interface Stage {
  readonly name: string | undefined;
  readonly image: string;
  /** The folder that stands for the stage's `/`. */
  readonly root: string;
  workdir: string;
  readonly env: Record<string, string>;
  user: string | undefined;
  entrypoint: string[] | undefined;
  healthcheck: { flags: Record<string, string>; command: string[] } | undefined;
}

/** The Dockerfile's instructions, parsed. */
async function parseDockerfile(): Promise<Instruction[]> {
  return DockerfileParser.parse(await readFile(dockerfilePath, "utf8")).getInstructions();
}

/** `${NAME}` and `$NAME` from build arguments. */
function expand(text: string, args: Readonly<Record<string, string>>): string {
  return text.replaceAll(/\$\{(\w+)\}|\$(\w+)/g, (whole, braced?: string, bare?: string) => {
    const value = args[braced ?? bare ?? ""];
    return value ?? whole;
  });
}

/** Runs `command` through sh in `cwd`; fails the test with its output if it fails. */
async function run(command: string, cwd: string, env: Record<string, string>): Promise<void> {
  const child = spawn("sh", ["-c", command], { cwd, env, stdio: ["ignore", "pipe", "pipe"] });
  const output: Buffer[] = [];
  child.stdout.on("data", (chunk: Buffer) => output.push(chunk));
  child.stderr.on("data", (chunk: Buffer) => output.push(chunk));
  const code = await new Promise<number | null>((resolve) => child.on("exit", resolve));
  assert.equal(code, 0, `RUN ${command} failed:\n${Buffer.concat(output).toString().slice(-4000)}`);
}

/** Every file and folder under `dir`, relative to it, with "/" separators. */
async function listTree(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true });
  return entries.map((entry) => entry.split("\\").join("/"));
}

/**
 * Docker's COPY: a folder's contents go into the destination; files go into it when it ends
 * with "/" (or there are several), else become it. Symbolic links (npm's workspace links) are
 * kept as links.
 */
async function copyInto(
  sources: readonly string[],
  destination: string,
  into: boolean,
  keep: (source: string) => boolean,
): Promise<void> {
  for (const source of sources) {
    const isDir = (await stat(source)).isDirectory();
    const target = isDir || !into ? destination : join(destination, source.split("/").at(-1) ?? "");
    await mkdir(isDir ? target : dirname(target), { recursive: true });
    await cp(source, target, { recursive: true, verbatimSymlinks: true, filter: keep });
  }
}

/** Carries out the Dockerfile; returns its stages, the last one being the image. */
async function build(instructions: readonly Instruction[], context: string): Promise<Stage[]> {
  const ignore = dockerignore().add(
    (await readFile(join(context, ".dockerignore"), "utf8")).split("\n"),
  );
  const fromContext = (path: string) => {
    const rel = relative(context, path);
    return rel === "" || !ignore.ignores(rel);
  };
  const args: Record<string, string> = {};
  const stages: Stage[] = [];
  const toolPath = `${dirname(process.execPath)}:${process.env.PATH ?? ""}`;
  for (const instruction of instructions) {
    const keyword = instruction.getKeyword();
    const stage = stages.at(-1);
    const inStage = (path: string) =>
      join((stage as Stage).root, path.startsWith("/") ? path : join(stage?.workdir ?? "/", path));
    if (keyword === "ARG") {
      for (const argument of instruction.getArguments()) {
        const [name, value = ""] = argument.getValue().split("=", 2) as [string, string?];
        args[name] = value;
      }
    } else if (keyword === "FROM") {
      const from = instruction as From;
      stages.push({
        name: from.getBuildStage() ?? undefined,
        image: expand(from.getImage() ?? "", args),
        root: await mkdtemp(join(tmpdir(), `parley-image-stage${stages.length}-`)),
        workdir: "/",
        env: {},
        user: undefined,
        entrypoint: undefined,
        healthcheck: undefined,
      });
    } else if (stage === undefined) {
      assert.fail(`${keyword} before FROM`);
    } else if (keyword === "WORKDIR") {
      stage.workdir = instruction.getArgumentsContent() ?? "/";
      await mkdir(inStage("."), { recursive: true });
    } else if (keyword === "ENV") {
      for (const property of (instruction as Env).getProperties()) {
        stage.env[property.getName()] = property.getValue() ?? "";
      }
    } else if (keyword === "COPY") {
      const copy = instruction as Copy;
      const paths = copy.getArguments().map((argument) => argument.getValue());
      const destination = paths.pop() ?? assert.fail("COPY without a destination");
      const from = copy.getFromFlag()?.getValue() ?? undefined;
      const source =
        from === undefined
          ? (path: string) => join(context, path)
          : (path: string) =>
              join(stages.find((s) => s.name === from)?.root ?? assert.fail(from), path);
      await copyInto(
        paths.map(source),
        inStage(destination),
        destination.endsWith("/") || paths.length > 1,
        from === undefined ? fromContext : () => true,
      );
    } else if (keyword === "RUN") {
      await run(instruction.getArgumentsContent() ?? "", inStage("."), {
        HOME: process.env.HOME ?? tmpdir(),
        ...stage.env,
        PATH: toolPath,
        // Tests never use the network: npm installs from the cache that `.ci/run`'s (or a
        // developer's) `npm install` of this lock file filled; ENOTCACHED means it did not.
        npm_config_offline: "true",
      });
    } else if (keyword === "USER") {
      stage.user = instruction.getArgumentsContent() ?? undefined;
    } else if (keyword === "ENTRYPOINT") {
      stage.entrypoint = (instruction as JSONInstruction)
        .getJSONStrings()
        .map((s) => s.getJSONValue());
    } else if (keyword === "HEALTHCHECK") {
      const healthcheck = instruction as Healthcheck;
      assert.equal(healthcheck.getSubcommand()?.getValue(), "CMD");
      const raw = healthcheck.getArgumentsContent() ?? "";
      const json = raw.slice(raw.indexOf("CMD") + 3).trim();
      stage.healthcheck = {
        flags: Object.fromEntries(
          healthcheck.getFlags().map((flag) => [flag.getName(), flag.getValue() ?? ""]),
        ),
        command: JSON.parse(json) as string[],
      };
    } else if (keyword !== "EXPOSE") {
      assert.fail(`the test does not know ${keyword}: teach it, or keep to what it knows`);
    }
  }
  return stages;
}

describe("the Dockerfile", () => {
  it("is multi-stage on a Node LTS slim base, non-root, with a HEALTHCHECK on /readyz or /healthz", async () => {
    const instructions = await parseDockerfile();
    const froms = instructions.filter((i) => i.getKeyword() === "FROM") as From[];
    assert.ok(froms.length >= 2, "a build stage and a runtime stage");
    const args = Object.fromEntries(
      instructions
        .filter((i) => i.getKeyword() === "ARG")
        .map((i) => (i.getArgumentsContent() ?? "").split("=", 2)),
    ) as Record<string, string>;
    const supported = (await readFile(join(repoRoot, ".ci/node-versions"), "utf8"))
      .split("\n")
      .filter((line) => /^\d/.test(line))
      .map((line) => Number(line.split(".")[0]));
    for (const from of froms) {
      const image = expand(from.getImage() ?? "", args);
      const match = /^node:(\d+)(?:\.[\d.]+)?-[a-z]+-slim$/.exec(image);
      assert.ok(match, `${image} is node:<major>-<debian>-slim`);
      const major = Number(match[1]);
      assert.equal(major % 2, 0, `${image}: even Node majors are the LTS lines`);
      assert.ok(supported.includes(major), `${image}: CI runs Node ${major} (.ci/node-versions)`);
    }
    const last = instructions.slice(instructions.indexOf(froms.at(-1) as Instruction));
    const user = last.findLast((i) => i.getKeyword() === "USER")?.getArgumentsContent() ?? "root";
    assert.ok(user !== "root" && !/^0(:|$)/.test(user), "runs as non-root");
    const healthcheck = last.find((i) => i.getKeyword() === "HEALTHCHECK");
    assert.match(healthcheck?.getArgumentsContent() ?? "", /\/(readyz|healthz)/);
  });

  it("builds from a clean checkout, and its image serves the quickstart and passes its HEALTHCHECK", {
    timeout: 600_000,
  }, async () => {
    const context = await mkdtemp(join(tmpdir(), "parley-image-context-"));
    let stages: Stage[] = [];
    let parley: ReturnType<typeof spawnParley> | undefined;
    try {
      const archived = await runCommand(
        "sh",
        ["-c", `git -C "$0" archive --format=tar HEAD | tar -x -C "$1"`, repoRoot, context],
        { timeoutMs: 60_000 },
      );
      assert.equal(archived.code, 0, archived.stderr);
      stages = await build(await parseDockerfile(), context);
      const image = stages.at(-1) as Stage;
      const files = (await listTree(image.root)).filter((f) => !f.includes("node_modules/"));
      assert.ok(!files.some((f) => f.includes("/src/") && f.endsWith(".ts")), "no Parley sources");
      assert.ok(!files.some((f) => f.includes("test-build/")), "no compiled tests");
      const [program, script, ...rest] = image.entrypoint ?? assert.fail("no ENTRYPOINT");
      assert.equal(program, "node");
      const cwd = join(image.root, image.workdir);
      // The image's flags, then the test's: a free loopback port instead of 0.0.0.0:8080.
      parley = spawnParley([...rest, "--port", "0", "--host", "127.0.0.1"], {
        script: join(cwd, script ?? ""),
        cwd,
        env: image.env,
      });
      const url = await parley.ready;
      const generate = await runCommand("curl", [
        "-s",
        `${url}/inference.v1.InferenceService/Generate`,
        "-H",
        "content-type: application/json",
        "-d",
        '{"prompt": "Hello", "maxTokens": 16, "temperature": 0}',
      ]);
      const reply = JSON.parse(generate.stdout) as {
        model: string;
        text: string;
        usage: { completionTokens: number };
      };
      assert.ok(reply.model.length > 0 && reply.text.length > 0, generate.stdout);
      assert.equal(reply.usage.completionTokens, 16);
      const page = await runCommand("curl", [
        "-s",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        `${url}/`,
      ]);
      assert.equal(page.stdout, "200", "the web client is in the image");

      const check = image.healthcheck ?? assert.fail("no HEALTHCHECK");
      const [checkProgram, ...checkArgs] = check.command;
      assert.equal(checkProgram, "node", "the image has Node, and no curl");
      const port = new URL(url).port;
      const healthy = await runCommand("sh", [
        "-c",
        `PORT=${port} "$0" "$@"`,
        process.execPath,
        ...checkArgs,
      ]);
      assert.equal(healthy.code, 0, `HEALTHCHECK failed: ${healthy.stderr}`);
      parley.child.kill("SIGTERM");
      assert.equal(await parley.exited, 0);
    } finally {
      parley?.child.kill("SIGKILL");
      await rm(context, { recursive: true, force: true });
      for (const stage of stages) await rm(stage.root, { recursive: true, force: true });
    }
  });
});
