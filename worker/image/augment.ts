import { Rng } from '../../common/random.js';

/**
 * MoCo-style augmentation settings for small grayscale images. Each field switches one operation;
 * a zero (or `false`) turns it off, so all-zero options reproduce the input scaled to [0, 1].
 */
export interface AugmentOptions {
  /**
   * Random translation in pixels: the image is zero-padded by this many pixels on every side and a
   * crop of the original size is taken back, i.e. it is shifted by integers dx, dy drawn uniformly
   * from [-crop_pad, crop_pad]. 0 disables.
   */
  readonly crop_pad: number;
  /** Mirror the image left-right with probability 0.5. */
  readonly flip: boolean;
  /** Add one offset drawn uniformly from [-brightness, brightness] to every pixel of an image. 0 disables. */
  readonly brightness: number;
  /**
   * Scale every pixel's distance from the image mean by one factor drawn uniformly from
   * [1 - contrast, 1 + contrast]; at most 1, so the factor never goes negative. 0 disables.
   */
  readonly contrast: number;
  /** Standard deviation of independent Gaussian noise added to every pixel. 0 disables. */
  readonly noise: number;
  /**
   * Probability of random erasing (Zhong et al. 2017, torchvision `RandomErasing`): one rectangle
   * covering 1/16 to 1/4 of the image, aspect ratio log-uniform in [0.3, 3.3], is set to 0. 0 disables.
   */
  readonly erase: number;
}

/** The two views of one batch that MoCo compares: the query view and the key view. */
export interface TwoViews {
  /** Input of the query (gradient) encoder, B·rows·cols floats. */
  readonly query: Float32Array;
  /** Input of the momentum key encoder, augmented independently of `query`. */
  readonly key: Float32Array;
}

// Random-erasing area and aspect-ratio ranges, and how often to retry a rectangle that does not fit.
const ERASE_MIN_AREA = 1 / 16;
const ERASE_MAX_AREA = 1 / 4;
const ERASE_LOG_RATIO_MIN = Math.log(0.3);
const ERASE_LOG_RATIO_MAX = Math.log(3.3);
const ERASE_ATTEMPTS = 10;

/**
 * Augments the images `indices` of `images` (n uint8 images of rows×cols, row-major, back to back)
 * into one float32 batch (B·rows·cols values, pixel / 255). Order: translate and flip, contrast and
 * brightness (clamped to [0, 1] like torchvision's ColorJitter), Gaussian noise (not clamped, so values
 * may stray slightly outside [0, 1]), then erasing, so erased pixels are exactly 0.
 * Writes into `out` when given (length B·rows·cols), otherwise into one new array.
 */
export function augmentBatch(
  images: Uint8Array,
  indices: Int32Array | readonly number[],
  rows: number,
  cols: number,
  opts: AugmentOptions,
  rng: Rng,
  out?: Float32Array,
): Float32Array {
  const pix = rows * cols;
  validate(images, indices, rows, cols, opts);
  const batch = indices.length;
  if (out === undefined) out = new Float32Array(batch * pix);
  else if (out.length !== batch * pix) {
    throw new RangeError(`augmentBatch: out has ${out.length} values, expected ${batch}·${pix}`);
  }
  const p = opts.crop_pad;
  for (let b = 0; b < batch; b++) {
    const src = indices[b]! * pix;
    const o = b * pix;
    const dx = p > 0 ? rng.int(2 * p + 1) - p : 0;
    const dy = p > 0 ? rng.int(2 * p + 1) - p : 0;
    const mirror = opts.flip && rng.next() < 0.5;

    // Geometry: out(y, x) = in(y - dy, x' - dx), x' = mirrored x; outside the source is zero padding.
    let sum = 0;
    for (let y = 0; y < rows; y++) {
      const sy = y - dy;
      const row = o + y * cols;
      if (sy < 0 || sy >= rows) {
        out.fill(0, row, row + cols);
        continue;
      }
      const srow = src + sy * cols;
      for (let x = 0; x < cols; x++) {
        const sx = (mirror ? cols - 1 - x : x) - dx;
        const v = sx >= 0 && sx < cols ? images[srow + sx]! / 255 : 0;
        out[row + x] = v;
        sum += v;
      }
    }

    // Photometric jitter around the (translated) image's mean, as torchvision's adjust_contrast does.
    const scale = opts.contrast > 0 ? 1 - opts.contrast + 2 * opts.contrast * rng.next() : 1;
    const shift = opts.brightness > 0 ? (2 * rng.next() - 1) * opts.brightness : 0;
    if (scale !== 1 || shift !== 0) {
      const mean = sum / pix;
      const offset = mean - scale * mean + shift;
      for (let j = o; j < o + pix; j++) {
        const v = out[j]! * scale + offset;
        out[j] = v < 0 ? 0 : Math.min(v, 1);
      }
    }

    if (opts.noise > 0) addNoise(out, o, o + pix, opts.noise, rng);
    if (opts.erase > 0 && rng.next() < opts.erase) eraseRectangle(out, o, rows, cols, rng);
  }
  return out;
}

/**
 * Two independently augmented batches of the same images: MoCo's query and key views (query drawn
 * first, so a seed fixes both).
 */
export function twoViews(images: Uint8Array, indices: Int32Array | readonly number[], rows: number, cols: number, opts: AugmentOptions, rng: Rng): TwoViews {
  const query = augmentBatch(images, indices, rows, cols, opts, rng);
  const key = augmentBatch(images, indices, rows, cols, opts, rng);
  return { query, key };
}

/**
 * Standard normals drawn once (Box-Muller, fixed seed); noise picks entries uniformly at random.
 * Exact Box-Muller per pixel (log, sqrt, cos) took 4 of 5 ms for a 256-image batch; a lookup is iid
 * from a 65,536-point empirical Gaussian, plenty for augmentation.
 */
let gaussTable: Float32Array | undefined;
const GAUSS_BITS = 16;

function standardNormals(): Float32Array {
  if (gaussTable === undefined) {
    const rng = new Rng(0x6a09e667);
    gaussTable = new Float32Array(1 << GAUSS_BITS);
    for (let j = 0; j < gaussTable.length; j++) gaussTable[j] = rng.normal();
  }
  return gaussTable;
}

/** Adds N(0, std²) to out[from, to); one 32-bit draw yields two 16-bit table indices. */
function addNoise(out: Float32Array, from: number, to: number, std: number, rng: Rng): void {
  const table = standardNormals();
  const mask = (1 << GAUSS_BITS) - 1;
  for (let j = from; j < to; j += 2) {
    const bits = (rng.next() * 4294967296) >>> 0;
    out[j] = out[j]! + std * table[bits & mask]!;
    if (j + 1 < to) out[j + 1] = out[j + 1]! + std * table[bits >>> GAUSS_BITS]!;
  }
}

/** Zeroes one random rectangle of the image at out[o...], retrying shapes that do not fit like torchvision. */
function eraseRectangle(out: Float32Array, o: number, rows: number, cols: number, rng: Rng): void {
  const area = rows * cols;
  for (let attempt = 0; attempt < ERASE_ATTEMPTS; attempt++) {
    const target = area * (ERASE_MIN_AREA + (ERASE_MAX_AREA - ERASE_MIN_AREA) * rng.next());
    const ratio = Math.exp(ERASE_LOG_RATIO_MIN + (ERASE_LOG_RATIO_MAX - ERASE_LOG_RATIO_MIN) * rng.next());
    const h = Math.round(Math.sqrt(target * ratio));
    const w = Math.round(Math.sqrt(target / ratio));
    if (h < 1 || w < 1 || h > rows || w > cols) continue;
    const top = rng.int(rows - h + 1);
    const left = rng.int(cols - w + 1);
    for (let y = top; y < top + h; y++) {
      const row = o + y * cols + left;
      out.fill(0, row, row + w);
    }
    return;
  }
}

/** Rejects inputs that would read out of bounds or silently do something other than asked. */
function validate(images: Uint8Array, indices: Int32Array | readonly number[], rows: number, cols: number, opts: AugmentOptions): void {
  if (!Number.isInteger(rows) || !Number.isInteger(cols) || rows < 1 || cols < 1) {
    throw new RangeError(`augmentBatch: bad image size ${rows}×${cols}`);
  }
  const pix = rows * cols;
  if (images.length % pix !== 0) {
    throw new RangeError(`augmentBatch: ${images.length} bytes is not a whole number of ${rows}×${cols} images`);
  }
  const n = images.length / pix;
  for (let b = 0; b < indices.length; b++) {
    const i = indices[b]!;
    if (!Number.isInteger(i) || i < 0 || i >= n) {
      throw new RangeError(`augmentBatch: index ${i} at position ${b} is outside [0, ${n})`);
    }
  }
  const { crop_pad, brightness, contrast, noise, erase } = opts;
  if (!Number.isInteger(crop_pad) || crop_pad < 0) throw new RangeError(`augment: crop_pad must be a non-negative integer, got ${crop_pad}`);
  if (!(brightness >= 0 && Number.isFinite(brightness))) throw new RangeError(`augment: brightness must be finite and >= 0, got ${brightness}`);
  if (!(contrast >= 0 && contrast <= 1)) throw new RangeError(`augment: contrast must be in [0, 1], got ${contrast}`);
  if (!(noise >= 0 && Number.isFinite(noise))) throw new RangeError(`augment: noise must be finite and >= 0, got ${noise}`);
  if (!(erase >= 0 && erase <= 1)) throw new RangeError(`augment: erase must be a probability in [0, 1], got ${erase}`);
}
