/** A patch matrix and the spatial size of the convolution output it stands for. */
export interface Im2col {
  /**
   * (n·outRows·outCols) × (kernel·kernel) row-major: row (image, oy, ox), column ky·kernel + kx,
   * the same order as a tf conv filter [kernel, kernel, 1, filters] reshaped to [kernel², filters].
   */
  readonly data: Float32Array;
  /** Output height: floor((rows + 2·pad − kernel) / stride) + 1. */
  readonly outRows: number;
  /** Output width: floor((cols + 2·pad − kernel) / stride) + 1. */
  readonly outCols: number;
}

/**
 * Unfolds a batch of single-channel images (n·rows·cols floats, row-major) into convolution patches,
 * zero padding `pad` pixels on every side. `patches · W` (W = filters reshaped to [kernel², filters])
 * is then the convolution, and its weight gradient `patchesᵀ · dY` is a plain matMul too: the wasm
 * backend has no Conv2DBackpropFilter, and input images need no gradient.
 * Writes into `out` when given (length n·outRows·outCols·kernel²), so a training loop can reuse one buffer.
 */
export function im2col(batch: Float32Array, n: number, rows: number, cols: number, kernel: number, stride: number, pad: number, out?: Float32Array): Im2col {
  for (const [name, v, min] of [
    ['n', n, 0],
    ['rows', rows, 1],
    ['cols', cols, 1],
    ['kernel', kernel, 1],
    ['stride', stride, 1],
    ['pad', pad, 0],
  ] as const) {
    if (!Number.isInteger(v) || v < min) throw new RangeError(`im2col: ${name} must be an integer >= ${min}, got ${v}`);
  }
  if (batch.length !== n * rows * cols) {
    throw new RangeError(`im2col: batch has ${batch.length} values, expected ${n}·${rows}·${cols}`);
  }
  const outRows = Math.floor((rows + 2 * pad - kernel) / stride) + 1;
  const outCols = Math.floor((cols + 2 * pad - kernel) / stride) + 1;
  if (outRows < 1 || outCols < 1) {
    throw new RangeError(`im2col: kernel ${kernel} does not fit a ${rows}×${cols} image padded by ${pad}`);
  }
  const k2 = kernel * kernel;
  const size = n * outRows * outCols * k2;
  if (out === undefined) out = new Float32Array(size);
  else if (out.length !== size) throw new RangeError(`im2col: out has ${out.length} values, expected ${size}`);

  let r = 0; // write position: start of the current patch row
  for (let img = 0; img < n; img++) {
    const base = img * rows * cols;
    for (let oy = 0; oy < outRows; oy++) {
      const y0 = oy * stride - pad;
      for (let ox = 0; ox < outCols; ox++) {
        const x0 = ox * stride - pad;
        // Interior patches skip the per-pixel bounds checks: most patches of a padded image are interior.
        const interior = x0 >= 0 && x0 + kernel <= cols;
        for (let ky = 0; ky < kernel; ky++) {
          const y = y0 + ky;
          const w = r + ky * kernel;
          if (y < 0 || y >= rows) {
            out.fill(0, w, w + kernel);
            continue;
          }
          const src = base + y * cols + x0;
          if (interior) {
            for (let kx = 0; kx < kernel; kx++) out[w + kx] = batch[src + kx]!;
          } else {
            for (let kx = 0; kx < kernel; kx++) {
              const x = x0 + kx;
              out[w + kx] = x >= 0 && x < cols ? batch[src + kx]! : 0;
            }
          }
        }
        r += k2;
      }
    }
  }
  return { data: out, outRows, outCols };
}
