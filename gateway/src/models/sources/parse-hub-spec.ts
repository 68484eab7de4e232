/**
 * @module Parses the `hf:org/name[@revision]` model spec a user types after `--model`, and the
 * repo ids and revisions the hub source accepts, so a typo fails before any request is made.
 */
import { HubModelError } from "./hub-model-error.js";

/** A model repository on the hub and the revision (branch, tag or commit) to use. */
export interface HubSpec {
  readonly repo: string;
  readonly revision: string;
}

const specPrefix = "hf:";

// The hub's own naming rules: letters, digits, `-`, `_`, `.`, no `--` or `..` (the cache uses
// `--` as its separator), at most 96 characters per part.
const repoPart = /^(?!.*(?:--|\.\.))[A-Za-z0-9](?:[A-Za-z0-9._-]{0,94}[A-Za-z0-9])?$/;
// Branches and tags may contain `/` (e.g. `refs/pr/1`); the revision becomes a path under
// `refs/` in the cache, so `..` segments and leading or trailing slashes are refused.
const revisionPattern = /^(?!\/)(?!.*\/$)(?!.*(?:^|\/)\.\.?(?:\/|$))[A-Za-z0-9._\-/]{1,255}$/;

/** Throws `HubModelError("invalid")` unless `repo` is a hub model id such as `org/name`. */
export function checkRepoId(repo: string): void {
  const parts = repo.split("/");
  if (parts.length !== 2 || !parts.every((part) => repoPart.test(part))) {
    throw new HubModelError(
      "invalid",
      `invalid Hugging Face repo id "${repo}": expected "org/name" (letters, digits, "-", "_", ".")`,
    );
  }
}

/** Throws `HubModelError("invalid")` unless `revision` is a usable branch, tag or commit. */
export function checkRevision(revision: string): void {
  if (!revisionPattern.test(revision)) {
    throw new HubModelError(
      "invalid",
      `invalid revision "${revision}": expected a branch, tag or commit hash such as "main"`,
    );
  }
}

/**
 * Parses `hf:org/name` or `hf:org/name@revision`; the revision defaults to `main`.
 * @example parseHubSpec("hf:onnx-community/Qwen2.5-0.5B-Instruct@main")
 */
export function parseHubSpec(spec: string): HubSpec {
  if (!spec.startsWith(specPrefix)) {
    throw new HubModelError(
      "invalid",
      `invalid model spec "${spec}": a hub model is written "hf:org/name" or "hf:org/name@revision"`,
    );
  }
  const body = spec.slice(specPrefix.length);
  const at = body.indexOf("@");
  const repo = at === -1 ? body : body.slice(0, at);
  const revision = at === -1 ? "main" : body.slice(at + 1);
  checkRepoId(repo);
  checkRevision(revision);
  return { repo, revision };
}
