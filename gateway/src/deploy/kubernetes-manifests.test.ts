/**
 * @module deploy/kubernetes/, checked against the gateway it deploys: the manifests parse (the
 * `yaml` package), fit together (selectors, names, ports), pass flags the gateway accepts, probe
 * what the gateway answers, and give a drain more time than the gateway takes. No cluster runs
 * here; `kubectl apply --dry-run=server` would need one.
 */

import assert from "node:assert/strict";
import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, it } from "node:test";
import { Registry } from "prom-client";
import { parseAllDocuments, parse as parseYaml } from "yaml";
import { parseConfig } from "../config.js";
import { createEngineMetrics } from "../engine/engine-metrics.js";
import { createRpcMetrics } from "../observability/rpc-metrics.js";
import { livenessServiceName } from "../server/create-gateway-server.js";
import { repoRoot } from "../testing/model-fixtures.js";

const dir = join(repoRoot, "deploy", "kubernetes");

// The shapes the test reads; anything else in the manifests is Kubernetes' business.
interface Probe {
  grpc?: { port: number; service?: string };
  httpGet?: { path: string; port: number | string };
  periodSeconds?: number;
  failureThreshold?: number;
}
interface Container {
  name: string;
  image: string;
  args?: string[];
  env?: { name: string; value: string }[];
  ports: { name: string; containerPort: number }[];
  lifecycle?: { preStop?: { exec?: { command: string[] }; sleep?: { seconds: number } } };
  startupProbe?: Probe;
  readinessProbe?: Probe;
  livenessProbe?: Probe;
  resources?: { requests?: Record<string, string>; limits?: Record<string, string> };
}
interface Manifest {
  apiVersion: string;
  kind: string;
  metadata: { name: string; labels?: Record<string, string> };
  spec: Record<string, unknown>;
}

async function loadManifests(): Promise<Map<string, Manifest>> {
  const byKind = new Map<string, Manifest>();
  for (const file of await readdir(dir)) {
    if (!file.endsWith(".yaml") || file === "kustomization.yaml") continue;
    if (file === "prometheus-adapter-rules.yaml") continue; // not a Kubernetes object
    for (const document of parseAllDocuments(await readFile(join(dir, file), "utf8"))) {
      assert.deepEqual(document.errors, [], `${file} parses`);
      const manifest = document.toJS() as Manifest;
      assert.ok(manifest.apiVersion && manifest.kind && manifest.metadata?.name, file);
      byKind.set(manifest.kind, manifest);
    }
  }
  return byKind;
}

function deploymentParts(manifests: Map<string, Manifest>) {
  const deployment = manifests.get("Deployment") ?? assert.fail("a Deployment");
  const spec = deployment.spec as {
    selector: { matchLabels: Record<string, string> };
    template: {
      metadata: { labels: Record<string, string> };
      spec: { terminationGracePeriodSeconds: number; containers: Container[] };
    };
  };
  const container = spec.template.spec.containers[0] ?? assert.fail("a container");
  return { deployment, spec, container };
}

/** The gateway's configuration from the container's args and env, through the real parser. */
function containerConfig(container: Container) {
  const env = Object.fromEntries((container.env ?? []).map((e) => [e.name, e.value]));
  const parsed = parseConfig(container.args ?? [], env);
  assert.equal(parsed.kind, "run");
  return parsed.config;
}

/** A label selector selects labels when each of its pairs is among them. */
function selects(selector: Record<string, string>, labels: Record<string, string>): boolean {
  return Object.entries(selector).every(([key, value]) => labels[key] === value);
}

describe("deploy/kubernetes", () => {
  it("lists every manifest in kustomization.yaml, and each is a Kubernetes object", async () => {
    const kustomization = parseYaml(await readFile(join(dir, "kustomization.yaml"), "utf8")) as {
      resources: string[];
    };
    const manifests = await loadManifests();
    assert.deepEqual([...manifests.keys()].sort(), [
      "Deployment",
      "HorizontalPodAutoscaler",
      "PodDisruptionBudget",
      "Service",
    ]);
    const files = (await readdir(dir)).filter(
      (f) => f.endsWith(".yaml") && f !== "kustomization.yaml" && !f.startsWith("prometheus-"),
    );
    assert.deepEqual([...kustomization.resources].sort(), files.sort());
  });

  it('probes the gateway\'s own port over grpc.health.v1: startup and readiness on "", liveness on the service that stays SERVING', async () => {
    const { container } = deploymentParts(await loadManifests());
    const config = containerConfig(container);
    assert.equal(config.host, "0.0.0.0", "reachable from outside the pod");
    const port = container.ports.find((p) => p.containerPort === config.port);
    assert.ok(port, `the container declares the gateway's port ${config.port}`);
    for (const probe of ["startupProbe", "readinessProbe"] as const) {
      assert.equal(container[probe]?.grpc?.port, config.port, probe);
      assert.equal(container[probe]?.grpc?.service ?? "", "", `${probe} asks the server's health`);
    }
    assert.equal(container.livenessProbe?.grpc?.port, config.port);
    assert.equal(container.livenessProbe?.grpc?.service, livenessServiceName);
    assert.ok(container.resources?.requests?.cpu && container.resources?.requests?.memory);
    assert.ok(container.resources?.limits?.memory);
  });

  it("offers the HTTP probes as a commented alternative on /readyz and /healthz", async () => {
    const text = await readFile(join(dir, "deployment.yaml"), "utf8");
    const block = /# BEGIN HTTP PROBES\n([\s\S]*?)\n\s*# END HTTP PROBES/.exec(text)?.[1];
    assert.ok(block, "the commented block is there");
    const uncommented = block
      .split("\n")
      .map((line) => line.replace(/^\s*# ?/, ""))
      .join("\n");
    const probes = parseYaml(uncommented) as Record<string, Probe>;
    const { container } = deploymentParts(await loadManifests());
    const { port } = containerConfig(container);
    assert.deepEqual(
      Object.fromEntries(Object.entries(probes).map(([name, p]) => [name, p.httpGet])),
      {
        startupProbe: { path: "/readyz", port },
        readinessProbe: { path: "/readyz", port },
        livenessProbe: { path: "/healthz", port },
      },
    );
  });

  it("gives a drain more time than preStop plus --shutdown-grace-ms", async () => {
    const { spec, container } = deploymentParts(await loadManifests());
    const { shutdownGraceMs } = containerConfig(container);
    const preStop = container.lifecycle?.preStop;
    const sleepSeconds =
      preStop?.sleep?.seconds ??
      (preStop?.exec?.command[0] === "sleep" ? Number(preStop.exec.command[1]) : 0);
    const graceSeconds = spec.template.spec.terminationGracePeriodSeconds;
    assert.ok(
      graceSeconds * 1000 > sleepSeconds * 1000 + shutdownGraceMs,
      `terminationGracePeriodSeconds ${graceSeconds} > ${sleepSeconds} s + ${shutdownGraceMs} ms`,
    );
    // Also above the gateway's default, should the flag be dropped from the args.
    const defaults = parseConfig([], {});
    assert.equal(defaults.kind, "run");
    assert.ok(graceSeconds * 1000 > sleepSeconds * 1000 + defaults.config.shutdownGraceMs);
  });

  it("wires the Service (h2c), the PodDisruptionBudget and the autoscaler to the Deployment's pods", async () => {
    const manifests = await loadManifests();
    const { deployment, spec, container } = deploymentParts(manifests);
    const podLabels = spec.template.metadata.labels;
    assert.ok(selects(spec.selector.matchLabels, podLabels));

    const service = (manifests.get("Service") as Manifest).spec as {
      selector: Record<string, string>;
      ports: { port: number; targetPort: string | number; appProtocol: string }[];
    };
    assert.ok(selects(service.selector, podLabels), "the Service selects the pods");
    for (const port of service.ports) {
      assert.equal(port.appProtocol, "kubernetes.io/h2c");
      assert.ok(
        container.ports.some(
          (p) => p.name === port.targetPort || p.containerPort === port.targetPort,
        ),
        `targetPort ${port.targetPort} is a container port`,
      );
    }

    const pdb = (manifests.get("PodDisruptionBudget") as Manifest).spec as {
      selector: { matchLabels: Record<string, string> };
    };
    assert.ok(selects(pdb.selector.matchLabels, podLabels), "the PDB selects the pods");

    const hpa = (manifests.get("HorizontalPodAutoscaler") as Manifest).spec as {
      scaleTargetRef: { kind: string; name: string };
      minReplicas: number;
      metrics: { type: string; pods?: { metric: { name: string } } }[];
    };
    assert.deepEqual(
      { kind: hpa.scaleTargetRef.kind, name: hpa.scaleTargetRef.name },
      { kind: "Deployment", name: deployment.metadata.name },
    );
    assert.ok(hpa.minReplicas >= 2, "the PDB's one disruption leaves a replica serving");
  });

  it("scales on a metric Parley exports, through the prometheus-adapter rule beside it", async () => {
    const hpa = (await loadManifests()).get("HorizontalPodAutoscaler") as Manifest;
    const metricNames = (hpa.spec as { metrics: { pods?: { metric: { name: string } } }[] }).metrics
      .map((m) => m.pods?.metric.name)
      .filter((name) => name !== undefined);
    assert.ok(metricNames.length > 0, "the HPA uses a per-pod custom metric");
    const adapter = parseYaml(
      await readFile(join(dir, "prometheus-adapter-rules.yaml"), "utf8"),
    ) as { rules: { seriesQuery: string; name: { as: string } }[] };
    const registry = new Registry();
    createEngineMetrics(registry);
    createRpcMetrics(registry);
    const exported = new Set(registry.getMetricsAsArray().map((m) => m.name));
    for (const name of metricNames) {
      const rule = adapter.rules.find((r) => r.name.as === name);
      assert.ok(rule, `a prometheus-adapter rule exposes ${name}`);
      const series = /^(\w+)/.exec(rule.seriesQuery)?.[1] ?? "";
      assert.ok(exported.has(series), `Parley exports ${series}`);
    }
  });
});
