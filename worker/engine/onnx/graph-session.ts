import * as ort from 'onnxruntime-node';
import { UserError } from '../../../common/user-error.js';

// Failures come back as exceptions with their message; the runtime's own log (set once per process,
// before the first session) would repeat them on stderr, with source paths.
ort.env.logLevel = 'fatal';

/** Where ONNX Runtime runs a graph: its CPU engine (in the npm package), WebGPU (bundled; needs a GPU and Vulkan) or CUDA (installed by the package's install script). */
export const ONNX_DEVICES = ['cpu', 'webgpu', 'cuda'] as const;
export type OnnxDevice = (typeof ONNX_DEVICES)[number];

/** How a graph's session runs. */
export interface GraphSessionOptions {
  /** @default 'cpu' */
  device?: OnnxDevice;
  /** Threads of the CPU engine's operators (intra-op). @default 1 */
  threads?: number;
}

/** A tensor fed to a graph: float32, or int32 (ids). */
export interface GraphFeed {
  data: Float32Array | Int32Array;
  dims: readonly number[];
}

/**
 * One graph loaded into ONNX Runtime, run with float32 tensors by name. Built by
 * {@link openGraphSession}, whose failures are one-line {@link UserError}s: a device that is not
 * there names `--device cpu`, a graph the runtime rejects names the graph.
 */
export class GraphSession {
  private constructor(
    readonly name: string,
    private readonly session: ort.InferenceSession,
  ) {}

  static async open(model: Uint8Array, name: string, o: GraphSessionOptions = {}): Promise<GraphSession> {
    const device = o.device ?? 'cpu';
    if (device === 'webgpu') checkVulkanLoader();
    try {
      const session = await ort.InferenceSession.create(model, {
        executionProviders: [device],
        intraOpNumThreads: o.threads ?? 1,
        interOpNumThreads: 1,
        graphOptimizationLevel: 'all',
        // The memory pattern would keep a second copy of a run's buffers beside the arena's: at a bank
        // of a million keys that is gigabytes, and the arena alone reuses its blocks as fast.
        enableMemPattern: false,
        // Idle operator threads sleep instead of spinning: a spinning thread takes a core from the
        // step's JavaScript (sparse tables, optimisers) between runs; measured here, 48 → 32 ms a step.
        extra: { session: { intra_op: { allow_spinning: '0' }, inter_op: { allow_spinning: '0' } } },
        logSeverityLevel: 4,
      });
      return new GraphSession(name, session);
    } catch (err) {
      throw sessionError(err, device, name);
    }
  }

  /** Runs the graph; resolves with every (float32) output by name. */
  async run(feeds: Readonly<Record<string, GraphFeed>>): Promise<Record<string, Float32Array>> {
    const inputs = Object.fromEntries(
      Object.entries(feeds).map(([n, t]) => [
        n,
        t.data instanceof Int32Array ? new ort.Tensor('int32', t.data, [...t.dims]) : new ort.Tensor('float32', t.data, [...t.dims]),
      ]),
    );
    let out: ort.InferenceSession.ReturnType;
    try {
      out = await this.session.run(inputs);
    } catch (err) {
      throw new UserError(`graph ${this.name}: ONNX Runtime could not run it: ${firstLine(err)}`);
    }
    return Object.fromEntries(Object.entries(out).map(([n, t]) => [n, t.data as Float32Array]));
  }

  release(): Promise<void> {
    return this.session.release();
  }
}

/**
 * WebGPU on Linux runs on Vulkan (Dawn). Without the Vulkan loader Dawn fails after printing its own
 * warning with a native source location; asking the dynamic loader first gives one line instead.
 */
function checkVulkanLoader(): void {
  if (process.platform !== 'linux') return;
  try {
    // The loader is no Node add-on: it loads, then "did not self-register" is the expected failure.
    process.dlopen({ exports: {} }, 'libvulkan.so.1');
  } catch (err) {
    if (/cannot open shared object/.test((err as Error).message)) {
      throw new UserError(
        '--device webgpu: no Vulkan loader on this machine (libvulkan.so.1; Debian: apt-get install libvulkan1) and so no WebGPU adapter; use --device cpu',
      );
    }
  }
}

/** A session failure as the user should read it: what is missing, and what to do instead. */
function sessionError(err: unknown, device: OnnxDevice, graph: string): UserError {
  const why = firstLine(err);
  if (device === 'webgpu' && /adapter|vulkan|webgpu/i.test(why)) {
    return new UserError(
      `--device webgpu: no WebGPU adapter on this machine (a GPU with its Vulkan driver and libvulkan1 is needed; ONNX Runtime said: ${why}); use --device cpu`,
    );
  }
  if (device === 'cuda' && /shared library|cuda|providers_shared/i.test(why)) {
    return new UserError(
      `--device cuda: ONNX Runtime's CUDA provider is not installed here (onnxruntime-node's install script fetches it, as the GPU image does; ONNX Runtime said: ${why}); use --device cpu`,
    );
  }
  return new UserError(`graph ${graph}: ONNX Runtime rejected it on ${device}: ${why}`);
}

function firstLine(err: unknown): string {
  return String(err instanceof Error ? err.message : err)
    .split('\n')[0]!
    .slice(0, 300);
}
