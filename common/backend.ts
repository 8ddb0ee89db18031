import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-wasm';
import '@tensorflow/tfjs-backend-cpu';
// tfjs-core's Node bundle registers no gradients; the @tensorflow/tfjs bundle registers them all.
import '@tensorflow/tfjs';
import { UserError } from './user-error.js';

/** Compute backends a run can select; `tensorflow*` are optional packages loaded on demand. */
export const BACKENDS = ['wasm', 'cpu', 'tensorflow', 'tensorflow-gpu'] as const;
export type BackendName = (typeof BACKENDS)[number];

/** npm package that provides each optional backend. */
const OPTIONAL_PACKAGES: Partial<Record<BackendName, string>> = {
  tensorflow: '@tensorflow/tfjs-node',
  'tensorflow-gpu': '@tensorflow/tfjs-node-gpu',
};

/**
 * Selects and initialises a tfjs backend. The libtensorflow bindings are imported only when chosen,
 * because their install step downloads libtensorflow and so they are not in the default install.
 */
export async function initBackend(name: BackendName): Promise<void> {
  const pkg = OPTIONAL_PACKAGES[name];
  if (pkg !== undefined) {
    try {
      // A variable specifier keeps bundlers and tsc from resolving the optional package.
      const specifier: string = pkg;
      await import(specifier);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND') {
        throw new UserError(
          `backend "${name}" needs the package ${pkg}, which is not installed: ` +
            `run \`npm install ${pkg}@4.22.0\` (it downloads libtensorflow; the GPU image in deploy/ has it) or pick --backend wasm`,
        );
      }
      throw new UserError(`backend "${name}": ${pkg} failed to load: ${(err as Error).message}`);
    }
  }
  tf.enableProdMode();
  const tfBackend = pkg === undefined ? name : 'tensorflow';
  const ok = await tf.setBackend(tfBackend);
  if (!ok) throw new UserError(`backend "${name}" failed to initialise`);
  await tf.ready();
}
