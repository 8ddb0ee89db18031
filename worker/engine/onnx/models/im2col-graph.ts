import type { GraphBuilder, Value } from '../graph-builder.js';
import { concat } from '../ops/concat.js';
import { pad } from '../ops/pad.js';
import { reshape } from '../ops/reshape.js';

/** A single-channel convolution's geometry. */
export interface ConvGeometry {
  rows: number;
  cols: number;
  kernel: number;
  stride: number;
  pad: number;
}

/**
 * worker/image/im2col.ts as graph nodes: B images (B × rows·cols) zero-padded, then for each kernel
 * offset (ky, kx) the strided slice of every patch's pixel there, the kernel² slices side by side:
 * (B·outRows·outCols) × kernel² in the same row and column order. Strided slices copy runs of
 * pixels, where a gather by index list copied them one by one (about as slow as im2col in JS).
 */
export function im2colGraph(g: GraphBuilder, images: Value, c: ConvGeometry): Value {
  const b = images.shape[0]!;
  const outRows = Math.floor((c.rows + 2 * c.pad - c.kernel) / c.stride) + 1;
  const outCols = Math.floor((c.cols + 2 * c.pad - c.kernel) / c.stride) + 1;
  const padded = pad(g, reshape(g, images, [b, c.rows, c.cols]), [0, c.pad, c.pad], [0, c.pad, c.pad]);
  const axes = g.int64s([1, 2]);
  const steps = g.int64s([c.stride, c.stride]);
  const slices: Value[] = [];
  for (let ky = 0; ky < c.kernel; ky++) {
    for (let kx = 0; kx < c.kernel; kx++) {
      const ends = [ky + c.stride * (outRows - 1) + 1, kx + c.stride * (outCols - 1) + 1];
      const slice = g.node('Slice', [padded, g.int64s([ky, kx]), g.int64s(ends), axes, steps], [b, outRows, outCols]);
      slices.push(reshape(g, slice, [b, outRows, outCols, 1]));
    }
  }
  return reshape(g, concat(g, slices, 3), [b * outRows * outCols, c.kernel * c.kernel]);
}
