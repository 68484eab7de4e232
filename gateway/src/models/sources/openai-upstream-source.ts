/**
 * @module `--model openai:<base-url>#<remote-model>`: a model that another server runs and
 * serves over the OpenAI API (vLLM, TGI, Ollama, llama.cpp's server, OpenAI itself). The base URL
 * is what the OpenAI SDKs call `base_url`, `/v1` included; the remote model is the name that
 * server lists under `/v1/models` and becomes the model's id in Parley. A bearer key may ride in
 * the URL's password (`https://:KEY@host/v1`) or come from `--upstream-api-key`; it is taken out
 * of the URL here, so nothing that logs or shows the URL can show the key.
 */
import type { UpstreamModelSource } from "../model-source.js";

/** The prefix of an upstream `--model` spec. */
export const openAiPrefix = "openai:";

/** A `--model openai:…` value that cannot be used; the message says why. */
export class UpstreamSpecError extends Error {
  override readonly name = "UpstreamSpecError";
}

/** Parses `openai:<base-url>#<remote-model>`; `apiKey` is used when the URL carries none. */
export function parseOpenAiUpstreamSpec(
  spec: string,
  apiKey: string | undefined,
): UpstreamModelSource {
  const rest = spec.slice(openAiPrefix.length);
  const hash = rest.indexOf("#");
  const remoteModel = hash < 0 ? "" : rest.slice(hash + 1);
  if (hash < 0 || remoteModel.trim() === "") {
    throw new UpstreamSpecError(
      `--model ${redactModelSpec(spec)} names no remote model: use openai:<base-url>#<remote-model>, e.g. openai:http://gpu-1:8000/v1#meta-llama/Llama-3.1-8B-Instruct`,
    );
  }
  let url: URL;
  try {
    url = new URL(rest.slice(0, hash));
  } catch {
    throw new UpstreamSpecError(
      `--model ${redactModelSpec(spec)}: "${redactUrl(rest.slice(0, hash))}" is not a URL (use http://host:port/v1)`,
    );
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new UpstreamSpecError(
      `--model ${redactModelSpec(spec)}: the base URL must be http:// or https://`,
    );
  }
  const key = url.password === "" ? apiKey : decodeURIComponent(url.password);
  url.username = "";
  url.password = "";
  const baseUrl = url.toString().replace(/\/+$/, "");
  return {
    upstream: "openai",
    id: remoteModel,
    baseUrl,
    remoteModel,
    apiKey: key === "" ? undefined : key,
    description: `Forwarded to ${remoteModel} at ${baseUrl} (OpenAI API)`,
  };
}

/** A `--model` value fit for a log line: an upstream URL's credentials replaced by `***`. */
export function redactModelSpec(spec: string): string {
  return spec.startsWith(openAiPrefix)
    ? `${openAiPrefix}${redactUrl(spec.slice(openAiPrefix.length))}`
    : spec;
}

function redactUrl(text: string): string {
  return text.replace(/^([a-z][a-z0-9+.-]*:\/\/)[^/@#?]*@/i, "$1***@");
}
