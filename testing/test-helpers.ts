import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../common/backend.js';

/** Initialises the default test backend (wasm) once per test file. */
export async function useTestBackend(): Promise<void> {
  if (tf.getBackend() !== 'wasm') await initBackend('wasm');
}

/** Asserts two numeric arrays are elementwise close: |a-b| <= atol + rtol*|b|. */
export function expectArraysClose(
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  { atol = 1e-5, rtol = 1e-4 }: { atol?: number; rtol?: number } = {},
): void {
  assert.equal(actual.length, expected.length, `length ${actual.length} != ${expected.length}`);
  for (let i = 0; i < actual.length; i++) {
    const a = actual[i]!;
    const e = expected[i]!;
    if (!(Math.abs(a - e) <= atol + rtol * Math.abs(e))) {
      assert.fail(`element ${i}: ${a} != ${e} (atol ${atol}, rtol ${rtol})`);
    }
  }
}

/** Asserts a tensor's values are close to the expected ones. */
export function expectTensorsClose(actual: tf.Tensor, expected: tf.Tensor | ArrayLike<number>, tol?: { atol?: number; rtol?: number }): void {
  const e = expected instanceof tf.Tensor ? expected.dataSync() : expected;
  if (expected instanceof tf.Tensor) assert.deepEqual(actual.shape, expected.shape);
  expectArraysClose(actual.dataSync() as Float32Array, e, tol);
}

/** A fresh temporary directory removed when the test ends. */
export function tempDir(t: { after: (fn: () => void) => void }, prefix = 'infobound-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  // Retries: a child process the test stopped may still be closing files in it.
  t.after(() => rmSync(dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 100 }));
  return dir;
}

/** A CA and a certificate it signed for 127.0.0.1 and localhost (server and client use), made with openssl. */
export function makeTestPki(dir: string, name: string): { ca: string; cert: string; key: string } {
  const p = (f: string) => join(dir, `${name}-${f}`);
  const ossl = (...args: string[]) => execFileSync('openssl', args, { stdio: 'ignore' });
  // A new P-256 key without a passphrase, written to `keyFile`.
  const newKey = (keyFile: string) => ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', keyFile];
  ossl('req', '-x509', ...newKey(p('ca.key')), '-out', p('ca.pem'), '-days', '1', '-subj', `/CN=${name}-ca`);
  ossl('req', ...newKey(p('node.key')), '-out', p('node.csr'), '-subj', `/CN=${name}-node`);
  writeFileSync(p('ext.cnf'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\n');
  const signedBy = ['-CA', p('ca.pem'), '-CAkey', p('ca.key'), '-CAcreateserial'];
  ossl('x509', '-req', '-in', p('node.csr'), ...signedBy, '-out', p('node.pem'), '-days', '1', '-extfile', p('ext.cnf'));
  return { ca: p('ca.pem'), cert: p('node.pem'), key: p('node.key') };
}

/**
 * A client certificate for `name` (its CN and only DNS name) signed by the CA of `makeTestPki(dir, pki)`:
 * what a worker with its own identity presents under mutual TLS.
 */
export function issueTestClientCertificate(dir: string, pki: string, name: string): { cert: string; key: string } {
  const p = (f: string) => join(dir, `${pki}-${name}-${f}`);
  const ca = (f: string) => join(dir, `${pki}-${f}`);
  const ossl = (...args: string[]) => execFileSync('openssl', args, { stdio: 'ignore' });
  ossl('req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', p('key'), '-out', p('csr'), '-subj', `/CN=${name}`);
  writeFileSync(p('ext.cnf'), `subjectAltName=DNS:${name}\nextendedKeyUsage=clientAuth\n`);
  ossl(
    'x509',
    '-req',
    '-in',
    p('csr'),
    '-CA',
    ca('ca.pem'),
    '-CAkey',
    ca('ca.key'),
    '-CAcreateserial',
    '-out',
    p('pem'),
    '-days',
    '1',
    '-extfile',
    p('ext.cnf'),
  );
  return { cert: p('pem'), key: p('key') };
}

/** n×d rows of uniform values in [−1, 1), each scaled to unit L2 norm (embeddings, bank keys). */
export function unitRows(rng: { next(): number }, n: number, d: number): Float32Array {
  const x = Float32Array.from({ length: n * d }, () => rng.next() * 2 - 1);
  for (let i = 0; i < n; i++) {
    const row = x.subarray(i * d, (i + 1) * d);
    const norm = Math.hypot(...row);
    row.forEach((v, j) => (row[j] = v / norm));
  }
  return x;
}
