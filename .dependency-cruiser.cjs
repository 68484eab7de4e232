/**
 * The gateway's architecture as rules `npm run lint` checks (dependency-cruiser): no import
 * circles, and the arrows docs/architecture.md says never exist.
 */
/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: "no-circular",
      severity: "error",
      comment: "An import circle: modules that cannot be understood or tested one at a time.",
      from: {},
      to: { circular: true },
    },
    {
      name: "generation-knows-no-protocol",
      severity: "error",
      comment: "engine/ and models/ never import the transport or the services.",
      from: { path: "^gateway/src/(engine|models)/" },
      to: { path: "^gateway/src/(server|http|rpc|services|openai)/" },
    },
    {
      name: "transport-does-not-reach-the-engine",
      severity: "error",
      comment:
        "http/, rpc/ and openai/ carry calls; only services/ (and the assembly) talk to the engine.",
      from: { path: "^gateway/src/(http|rpc|openai)/", pathNot: "\\.test\\.ts$" },
      to: { path: "^gateway/src/engine/" },
    },
    {
      name: "http-is-a-leaf-of-rpc",
      severity: "error",
      comment: "http/ (the port, CORS, files, /metrics) knows nothing of RPC dispatch.",
      from: { path: "^gateway/src/http/" },
      to: { path: "^gateway/src/(rpc|services|server|openai)/" },
    },
    {
      name: "fast-paths-behind-one-entry",
      severity: "error",
      comment:
        "Outside rpc/fast/, the fast paths are reached only through rpc/fast/index.ts (tests and their helpers may run one path alone).",
      from: {
        path: "^gateway/src/",
        pathNot: ["^gateway/src/rpc/fast/", "\\.test\\.ts$", "^gateway/src/testing/"],
      },
      to: { path: "^gateway/src/rpc/fast/", pathNot: "^gateway/src/rpc/fast/index\\.ts$" },
    },
    {
      name: "openai-is-a-transport",
      severity: "error",
      comment:
        "openai/ (the /v1 routes) adapts HTTP onto services/; the server assembles it, never the reverse.",
      from: { path: "^gateway/src/openai/", pathNot: "\\.test\\.ts$" },
      to: { path: "^gateway/src/server/" },
    },
    {
      name: "rpc-and-openai-are-siblings",
      severity: "error",
      comment: "rpc/ and services/ know nothing of the OpenAI routes built on them.",
      from: { path: "^gateway/src/(rpc|services)/" },
      to: { path: "^gateway/src/openai/" },
    },
    {
      name: "only-the-engine-runs-onnxruntime",
      severity: "error",
      comment:
        "Only engine/ imports onnxruntime-node (tests, their helpers and the bench may, to check it).",
      from: {
        path: "^gateway/src/",
        pathNot: ["^gateway/src/engine/", "\\.test\\.ts$", "^gateway/src/testing/"],
      },
      to: { path: "onnxruntime-node" },
    },
    {
      name: "product-code-imports-no-tests",
      severity: "error",
      comment: "Tests and test helpers stay out of the shipped product.",
      from: { path: "^gateway/src/", pathNot: ["\\.test\\.ts$", "^gateway/src/testing/"] },
      to: { path: ["\\.test\\.ts$", "^gateway/src/testing/"] },
    },
    {
      name: "bench-uses-only-gateway-exports",
      severity: "error",
      comment:
        "bench/ reaches the gateway only through the entry points gateway/package.json exports.",
      from: { path: "^bench/" },
      to: { path: "^gateway/src/" },
    },
    {
      name: "gateway-never-imports-the-bench",
      severity: "error",
      comment: "The bench measures the product and is never part of it.",
      from: { path: "^gateway/" },
      to: { path: "^bench/" },
    },
    {
      name: "product-never-runs-the-model-builder",
      severity: "error",
      comment:
        "The model builder is a build tool: the gateway's build runs it, tests and the bench use it; the product never imports it.",
      from: {
        path: "^gateway/src/",
        pathNot: ["\\.test\\.ts$", "^gateway/src/testing/"],
      },
      to: { path: ["^model-builder/", "@parley/model-builder"] },
    },
    {
      name: "model-builder-stands-alone",
      severity: "error",
      comment:
        "The model builder writes files; it imports nothing of the gateway or the web client.",
      from: { path: "^model-builder/" },
      to: { path: ["^gateway/", "^web-client/", "@parley/gateway"] },
    },
    {
      name: "connect-internals-in-one-module",
      severity: "error",
      comment:
        "connect-es's protocol* entry points do not follow semver: only gateway/src/rpc/connect-internals.ts imports them (README, dependency pins).",
      // Test helpers that speak raw protocol bytes may use them too: a change breaks a test, not the product.
      from: { pathNot: ["^gateway/src/rpc/connect-internals\\.ts$", "^gateway/src/testing/"] },
      to: { path: "@connectrpc/connect/dist/(esm|cjs)/protocol" },
    },
    {
      name: "web-client-never-imports-the-gateway",
      severity: "error",
      from: { path: "^web-client/" },
      to: { path: "^gateway/" },
    },
  ],
  options: {
    // The builder is seen as a dependency (for the rules above) but not cruised through its dist/.
    doNotFollow: { path: ["node_modules", "^model-builder/dist/"] },
    exclude: { path: ["^(gen|gateway|web-client)/dist/", "^gen/src/"] },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: "gateway/tsconfig.json" },
    enhancedResolveOptions: { exportsFields: ["exports"], conditionNames: ["import", "types"] },
  },
};
