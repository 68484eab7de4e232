/**
 * @module Test support: a throwaway self-signed certificate for localhost and 127.0.0.1, made by
 * openssl at test time so that no key is ever committed.
 */
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { runCommand } from "./run-command.js";

/** PEM files of a certificate and its key. */
export interface CertificateFiles {
  readonly certFile: string;
  readonly keyFile: string;
}

/** Creates the certificate in a new temporary folder. */
export async function createSelfSignedCert(): Promise<CertificateFiles> {
  const dir = await mkdtemp(join(tmpdir(), "parley-tls-"));
  const certFile = join(dir, "cert.pem");
  const keyFile = join(dir, "key.pem");
  const result = await runCommand("openssl", [
    "req",
    "-x509",
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:prime256v1",
    "-nodes",
    "-keyout",
    keyFile,
    "-out",
    certFile,
    "-days",
    "1",
    "-subj",
    "/CN=localhost",
    "-addext",
    "subjectAltName=DNS:localhost,IP:127.0.0.1",
  ]);
  if (result.code !== 0) {
    throw new Error(`openssl failed: ${result.stderr}`);
  }
  return { certFile, keyFile };
}
