/**
 * @module Where the benchmark finds the gateway it measures and puts what it writes. Every path
 * is derived from this file's place in `bench/dist/` (the gateway's from its package exports), so
 * the bench runs from any cwd.
 */
import { fileURLToPath } from "node:url";

/** The repository root. */
export const repoRoot = fileURLToPath(new URL("../../", import.meta.url));

/** The compiled gateway entry point: the system under test. */
export const gatewayMain = fileURLToPath(import.meta.resolve("@parley/gateway/main"));

/** Loaded into gateway children with `--import`: stats over IPC, token tracing, pacing. */
export const gatewayProbe = fileURLToPath(new URL("./gateway-probe.js", import.meta.url));

/** Child entry of the baseline servers. */
export const baselineServerMain = fileURLToPath(new URL("./baseline-server.js", import.meta.url));

/** Child entry of the Node load generator. */
export const loadClientMain = fileURLToPath(new URL("./load-client.js", import.meta.url));

/** Child entry of the in-process onnxruntime-node decode loop (the engine ceiling). */
export const ortLoopMain = fileURLToPath(new URL("./ort-decode-loop.js", import.meta.url));

/** Child entry of the transformers.js peer (SSE server or in-process). */
export const peerMain = fileURLToPath(new URL("./peer-transformers.js", import.meta.url));

/** The benchmark's entry point, for the smoke test. */
export const benchMain = fileURLToPath(new URL("./run.js", import.meta.url));

/** The Protobuf definition the grpc-js baseline loads with @grpc/proto-loader. */
export const inferenceProto = fileURLToPath(
  new URL("../../proto/inference/v1/inference.proto", import.meta.url),
);

/** The third-party fp16 test model beside the repository (absent on some machines). */
export const sharedModelDir = fileURLToPath(
  new URL("../../../shared/models/tiny-random-llama", import.meta.url),
);

/** Default output folder (gitignored): results.json, fixtures, generated models, profiles. */
export const defaultOutDir = fileURLToPath(new URL("../../test-output/bench", import.meta.url));

/** The Markdown report a full run regenerates. */
export const benchmarksDoc = fileURLToPath(new URL("../../docs/benchmarks.md", import.meta.url));
