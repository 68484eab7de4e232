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
      to: { path: "^gateway/src/(server|http|rpc|services)/" },
    },
    {
      name: "transport-does-not-reach-the-engine",
      severity: "error",
      comment: "http/ and rpc/ carry calls; only services/ (and the assembly) talk to the engine.",
      from: { path: "^gateway/src/(http|rpc)/", pathNot: "\\.test\\.ts$" },
      to: { path: "^gateway/src/engine/" },
    },
    {
      name: "http-is-a-leaf-of-rpc",
      severity: "error",
      comment: "http/ (the port, CORS, files, /metrics) knows nothing of RPC dispatch.",
      from: { path: "^gateway/src/http/" },
      to: { path: "^gateway/src/(rpc|services|server)/" },
    },
    {
      name: "only-the-engine-runs-onnxruntime",
      severity: "error",
      comment: "Only engine/ imports onnxruntime-node (tests may, to check it).",
      from: { path: "^gateway/src/", pathNot: ["^gateway/src/engine/", "\\.test\\.ts$"] },
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
      name: "web-client-never-imports-the-gateway",
      severity: "error",
      from: { path: "^web-client/" },
      to: { path: "^gateway/" },
    },
  ],
  options: {
    doNotFollow: { path: "node_modules" },
    exclude: { path: ["/dist/", "^gen/src/"] },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: "gateway/tsconfig.json" },
    enhancedResolveOptions: { exportsFields: ["exports"], conditionNames: ["import", "types"] },
  },
};
