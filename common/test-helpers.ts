import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from './backend.js';

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
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}
