import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Rng } from '../../common/random.js';
import { augmentBatch, twoViews, type AugmentOptions } from './augment.js';

/** Settings that suit 28×28 Fashion-MNIST: small shifts, flips, mild photometric jitter, erasing. */
const DEFAULT_AUGMENT: AugmentOptions = {
  crop_pad: 2,
  flip: true,
  brightness: 0.2,
  contrast: 0.3,
  noise: 0.02,
  erase: 0.5,
};

const ROWS = 28;
const COLS = 28;
const PIX = ROWS * COLS;
const OFF: AugmentOptions = { crop_pad: 0, flip: false, brightness: 0, contrast: 0, noise: 0, erase: 0 };

/** n random images with pixel values in [lo, hi]. */
function randomImages(n: number, seed: number, lo = 0, hi = 255): Uint8Array {
  const rng = new Rng(seed);
  const images = new Uint8Array(n * PIX);
  for (let i = 0; i < images.length; i++) images[i] = lo + rng.int(hi - lo + 1);
  return images;
}

/** Source pixel (y, x) of image i as a float in [0, 1], zero outside the image. */
function pixel(images: Uint8Array, i: number, y: number, x: number): number {
  return y < 0 || y >= ROWS || x < 0 || x >= COLS ? 0 : images[i * PIX + y * COLS + x]! / 255;
}

/** The view image i shifted by (dx, dy), optionally mirrored, as augmentBatch documents it. */
function transformed(images: Uint8Array, i: number, dx: number, dy: number, mirror: boolean): Float32Array {
  const img = new Float32Array(PIX);
  for (let y = 0; y < ROWS; y++) {
    for (let x = 0; x < COLS; x++) img[y * COLS + x] = pixel(images, i, y - dy, (mirror ? COLS - 1 - x : x) - dx);
  }
  return img;
}

function sameImage(a: Float32Array, b: Float32Array): boolean {
  return a.every((v, j) => v === b[j]);
}

test('all operations off reproduces the chosen images scaled to [0, 1]', () => {
  const images = randomImages(5, 1);
  const out = augmentBatch(images, [3, 0, 3], ROWS, COLS, OFF, new Rng(2));
  assert.equal(out.length, 3 * PIX);
  [3, 0, 3].forEach((i, b) => {
    for (let j = 0; j < PIX; j++) assert.equal(out[b * PIX + j], Math.fround(images[i * PIX + j]! / 255));
  });
});

test('crop_pad shifts each image by some dx, dy in [-p, p], covering all shifts', () => {
  const images = randomImages(4, 3);
  const p = 2;
  const indices = Array.from({ length: 200 }, (_, b) => b % 4);
  const out = augmentBatch(images, indices, ROWS, COLS, { ...OFF, crop_pad: p }, new Rng(4));
  const seen = new Set<string>();
  indices.forEach((i, b) => {
    const view = out.subarray(b * PIX, (b + 1) * PIX);
    let match: string | undefined;
    for (let dy = -p; dy <= p && match === undefined; dy++) {
      for (let dx = -p; dx <= p; dx++) {
        if (sameImage(view, transformed(images, i, dx, dy, false))) {
          match = `${dx},${dy}`;
          break;
        }
      }
    }
    assert.ok(match !== undefined, `view ${b} is not a shift of image ${i}`);
    seen.add(match);
  });
  assert.equal(seen.size, (2 * p + 1) ** 2);
});

test('flip mirrors about half of the images and leaves the rest', () => {
  const images = randomImages(1, 5);
  const n = 400;
  const out = augmentBatch(images, new Int32Array(n), ROWS, COLS, { ...OFF, flip: true }, new Rng(6));
  const plain = transformed(images, 0, 0, 0, false);
  const mirrored = transformed(images, 0, 0, 0, true);
  let flipped = 0;
  for (let b = 0; b < n; b++) {
    const view = out.subarray(b * PIX, (b + 1) * PIX);
    if (sameImage(view, mirrored)) flipped++;
    else assert.ok(sameImage(view, plain), `view ${b} is neither the image nor its mirror`);
  }
  // Binomial(400, 0.5): mean 200, sd 10.
  assert.ok(flipped > 150 && flipped < 250, `flipped ${flipped} of ${n}`);
});

test('brightness adds one offset in [-b, b] per image', () => {
  const images = randomImages(3, 7, 64, 192); // far enough from 0 and 255 that nothing clamps
  const b = 0.2;
  const out = augmentBatch(images, [0, 1, 2, 0, 1, 2], ROWS, COLS, { ...OFF, brightness: b }, new Rng(8));
  const offsets = new Set<number>();
  [0, 1, 2, 0, 1, 2].forEach((i, v) => {
    const offset = out[v * PIX]! - pixel(images, i, 0, 0);
    assert.ok(Math.abs(offset) <= b + 1e-6);
    for (let j = 0; j < PIX; j++) {
      assert.ok(Math.abs(out[v * PIX + j]! - images[i * PIX + j]! / 255 - offset) < 1e-5);
    }
    offsets.add(Math.round(offset * 1e4));
  });
  assert.equal(offsets.size, 6, 'each view draws its own offset');
});

test('contrast scales deviations from the image mean by a factor in [1-c, 1+c]', () => {
  const images = randomImages(2, 9, 100, 156);
  const c = 0.4;
  const out = augmentBatch(images, [0, 1, 0, 1], ROWS, COLS, { ...OFF, contrast: c }, new Rng(10));
  [0, 1, 0, 1].forEach((i, v) => {
    let mean = 0;
    for (let j = 0; j < PIX; j++) mean += images[i * PIX + j]! / 255 / PIX;
    // The factor from one well-separated pixel, then every pixel must follow it.
    let ref = 0;
    for (let j = 1; j < PIX; j++) if (Math.abs(images[i * PIX + j]! / 255 - mean) > Math.abs(images[i * PIX + ref]! / 255 - mean)) ref = j;
    const factor = (out[v * PIX + ref]! - mean) / (images[i * PIX + ref]! / 255 - mean);
    assert.ok(factor >= 1 - c - 1e-4 && factor <= 1 + c + 1e-4, `factor ${factor}`);
    for (let j = 0; j < PIX; j++) {
      assert.ok(Math.abs(out[v * PIX + j]! - (mean + factor * (images[i * PIX + j]! / 255 - mean))) < 1e-4);
    }
  });
});

test('contrast and brightness results are clamped to [0, 1]', () => {
  const images = randomImages(8, 11);
  const out = augmentBatch(images, [0, 1, 2, 3, 4, 5, 6, 7], ROWS, COLS, { ...OFF, brightness: 0.9, contrast: 1 }, new Rng(12));
  assert.ok(out.every((v) => v >= 0 && v <= 1));
  assert.ok(out.some((v) => v === 0) && out.some((v) => v === 1));
});

test('noise adds zero-mean Gaussian noise with the requested standard deviation', () => {
  const images = randomImages(2, 13);
  const std = 0.05;
  const indices = Array.from({ length: 64 }, (_, b) => b % 2);
  const out = augmentBatch(images, indices, ROWS, COLS, { ...OFF, noise: std }, new Rng(14));
  let s = 0;
  let s2 = 0;
  let s4 = 0;
  indices.forEach((i, b) => {
    for (let j = 0; j < PIX; j++) {
      const e = out[b * PIX + j]! - images[i * PIX + j]! / 255;
      s += e;
      s2 += e * e;
      s4 += e ** 4;
    }
  });
  const n = indices.length * PIX;
  const variance = s2 / n;
  assert.ok(Math.abs(s / n) < 0.002, `mean ${s / n}`);
  assert.ok(Math.abs(Math.sqrt(variance) - std) < 0.002, `std ${Math.sqrt(variance)}`);
  // Kurtosis 3 tells Gaussian apart from, say, uniform noise (1.8).
  assert.ok(Math.abs(s4 / n / variance ** 2 - 3) < 0.1);
});

test('erase zeroes exactly one rectangle of 1/16 to 1/4 of the area', () => {
  const images = randomImages(3, 15, 1, 255); // no zero pixels, so zeros mark the erased region
  const indices = Array.from({ length: 100 }, (_, b) => b % 3);
  const out = augmentBatch(images, indices, ROWS, COLS, { ...OFF, erase: 1 }, new Rng(16));
  const areas: number[] = [];
  indices.forEach((i, b) => {
    let top = ROWS,
      bottom = -1,
      left = COLS,
      right = -1,
      zeros = 0;
    for (let y = 0; y < ROWS; y++) {
      for (let x = 0; x < COLS; x++) {
        const v = out[b * PIX + y * COLS + x]!;
        if (v === 0) {
          zeros++;
          top = Math.min(top, y);
          bottom = Math.max(bottom, y);
          left = Math.min(left, x);
          right = Math.max(right, x);
        } else {
          assert.equal(v, Math.fround(pixel(images, i, y, x)));
        }
      }
    }
    assert.equal(zeros, (bottom - top + 1) * (right - left + 1), `view ${b}: zeros are not one rectangle`);
    areas.push(zeros / PIX);
  });
  // Rounding h and w moves the area a little beyond the sampled [1/16, 1/4].
  assert.ok(Math.min(...areas) >= 0.05 && Math.max(...areas) <= 0.3, `areas ${Math.min(...areas)}..${Math.max(...areas)}`);
  assert.ok(Math.min(...areas) < 0.1 && Math.max(...areas) > 0.2, 'areas span the range');
});

test('erase probability is respected', () => {
  const images = randomImages(1, 17, 1, 255);
  const n = 400;
  const out = augmentBatch(images, new Int32Array(n), ROWS, COLS, { ...OFF, erase: 0.25 }, new Rng(18));
  let erased = 0;
  for (let b = 0; b < n; b++) if (out.subarray(b * PIX, (b + 1) * PIX).includes(0)) erased++;
  // Binomial(400, 0.25): mean 100, sd ≈ 8.7.
  assert.ok(erased > 65 && erased < 135, `erased ${erased} of ${n}`);
});

test('same seed gives the same batch; out buffer is filled in place', () => {
  const images = randomImages(10, 19);
  const indices = new Int32Array([9, 2, 5, 5]);
  const a = augmentBatch(images, indices, ROWS, COLS, DEFAULT_AUGMENT, new Rng(20));
  const buffer = new Float32Array(4 * PIX).fill(7);
  const b = augmentBatch(images, indices, ROWS, COLS, DEFAULT_AUGMENT, new Rng(20), buffer);
  assert.equal(b, buffer);
  assert.deepEqual(a, b);
  assert.throws(() => augmentBatch(images, indices, ROWS, COLS, DEFAULT_AUGMENT, new Rng(20), new Float32Array(3)), /out has 3 values/);
});

test('twoViews augments the same images independently', () => {
  const images = randomImages(6, 21);
  const indices = [0, 1, 2, 3, 4, 5];
  const { query, key } = twoViews(images, indices, ROWS, COLS, DEFAULT_AUGMENT, new Rng(22));
  assert.equal(query.length, 6 * PIX);
  assert.equal(key.length, 6 * PIX);
  assert.notDeepEqual(query, key);
  const again = twoViews(images, indices, ROWS, COLS, DEFAULT_AUGMENT, new Rng(22));
  assert.deepEqual(again.query, query);
  assert.deepEqual(again.key, key);
  // With every operation off both views are the source images, row for row.
  const plain = twoViews(images, indices, ROWS, COLS, OFF, new Rng(22));
  assert.deepEqual(plain.query, plain.key);
  assert.equal(plain.query[5 * PIX + 17], Math.fround(images[5 * PIX + 17]! / 255));
});

test('bad input is rejected with a clear error', () => {
  const images = randomImages(2, 23);
  const rng = new Rng(24);
  assert.throws(() => augmentBatch(images, [2], ROWS, COLS, OFF, rng), /index 2 at position 0 is outside \[0, 2\)/);
  assert.throws(() => augmentBatch(images, [-1], ROWS, COLS, OFF, rng), /outside/);
  assert.throws(() => augmentBatch(images.subarray(1), [0], ROWS, COLS, OFF, rng), /whole number/);
  assert.throws(() => augmentBatch(images, [0], ROWS, COLS, { ...OFF, crop_pad: 1.5 }, rng), /crop_pad/);
  assert.throws(() => augmentBatch(images, [0], ROWS, COLS, { ...OFF, contrast: 1.5 }, rng), /contrast/);
  assert.throws(() => augmentBatch(images, [0], ROWS, COLS, { ...OFF, erase: Number.NaN }, rng), /erase/);
  assert.throws(() => augmentBatch(images, [0], ROWS, COLS, { ...OFF, noise: -1 }, rng), /noise/);
});

test('a batch of 256 with every operation on takes a couple of milliseconds', () => {
  const images = randomImages(1000, 25);
  const rng = new Rng(26);
  const indices = Int32Array.from({ length: 256 }, () => rng.int(1000));
  const out = new Float32Array(256 * PIX);
  for (let i = 0; i < 20; i++) augmentBatch(images, indices, ROWS, COLS, DEFAULT_AUGMENT, rng, out); // warm up the JIT
  const reps = 100;
  const t0 = performance.now();
  for (let i = 0; i < reps; i++) augmentBatch(images, indices, ROWS, COLS, DEFAULT_AUGMENT, rng, out);
  const ms = (performance.now() - t0) / reps;
  console.log(`augmentBatch B=256 28×28, all ops: ${ms.toFixed(2)} ms`);
  // Generous bound for a loaded CI machine; measured well under this.
  assert.ok(ms < 15, `${ms} ms per batch`);
});
