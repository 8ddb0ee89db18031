import * as tf from '@tensorflow/tfjs-core';
import type { Rng } from '../../common/random.js';

/** Name and shape of one dense parameter. */
export interface ParamSpec {
  name: string;
  shape: number[];
}

/**
 * Dense parameters kept in one flat Float32Array (Horovod's fusion buffer, permanently): the optimizer,
 * the momentum update, all-reduce, checkpoints and digests all work on the flat array, identically on
 * every backend; tensors are views made for one step.
 */
export class ParamSet {
  readonly offsets: number[];
  readonly values: Float32Array;

  constructor(
    readonly specs: readonly ParamSpec[],
    values?: Float32Array,
  ) {
    this.offsets = [];
    let n = 0;
    for (const s of specs) {
      this.offsets.push(n);
      n += s.shape.reduce((a, b) => a * b, 1);
    }
    if (values !== undefined && values.length !== n) throw new RangeError(`expected ${n} values, got ${values.length}`);
    this.values = values ?? new Float32Array(n);
  }

  get size(): number {
    return this.values.length;
  }

  /** A copy with its own storage (the momentum encoder starts as a copy of the online one). */
  clone(): ParamSet {
    return new ParamSet(this.specs, this.values.slice());
  }

  /** Fresh tensors holding the current values, keyed by name; the caller disposes them. */
  tensors(): Map<string, tf.Tensor> {
    const out = new Map<string, tf.Tensor>();
    this.specs.forEach((s, i) => {
      const off = this.offsets[i]!;
      const n = s.shape.reduce((a, b) => a * b, 1);
      out.set(s.name, tf.tensor(this.values.subarray(off, off + n), s.shape));
    });
    return out;
  }

  /** Copies each parameter's gradient into one flat array laid out like `values`. */
  flattenGrads(grads: ReadonlyMap<string, tf.Tensor>, out = new Float32Array(this.size)): Float32Array {
    this.specs.forEach((s, i) => {
      const g = grads.get(s.name);
      if (g === undefined) throw new Error(`no gradient for ${s.name}`);
      out.set(g.dataSync() as Float32Array, this.offsets[i]!);
    });
    return out;
  }

  /**
   * Glorot-uniform weights for every 2-D parameter, zeros for biases; deterministic from the seed so
   * that every worker starts identical without shipping weights.
   */
  static glorot(specs: readonly ParamSpec[], rng: Rng): ParamSet {
    const p = new ParamSet(specs);
    specs.forEach((s, i) => {
      if (s.shape.length !== 2) return;
      const [fanIn, fanOut] = s.shape as [number, number];
      const limit = Math.sqrt(6 / (fanIn + fanOut));
      const off = p.offsets[i]!;
      for (let j = 0; j < fanIn * fanOut; j++) p.values[off + j] = (rng.next() * 2 - 1) * limit;
    });
    return p;
  }
}
