import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Rng } from '../common/random.js';

/** Sizes of a synthetic IDX image dataset. */
export interface IdxDatasetShape {
  train: number;
  test: number;
  rows: number;
  cols: number;
}

/**
 * Writes an IDX image dataset as Fashion-MNIST lays it out (train-/t10k- images and labels) with
 * random pixels and labels: for machines without the real one, and for datasets of odd sizes.
 */
export async function writeIdxDataset(dir: string, shape: IdxDatasetShape, rng: Rng): Promise<void> {
  const write = async (prefix: string, count: number) => {
    const images = Buffer.alloc(16 + count * shape.rows * shape.cols);
    images.writeUInt32BE(0x803, 0);
    images.writeUInt32BE(count, 4);
    images.writeUInt32BE(shape.rows, 8);
    images.writeUInt32BE(shape.cols, 12);
    for (let i = 16; i < images.length; i++) images[i] = Math.floor(rng.next() * 256);
    const labels = Buffer.alloc(8 + count);
    labels.writeUInt32BE(0x801, 0);
    labels.writeUInt32BE(count, 4);
    for (let i = 8; i < labels.length; i++) labels[i] = Math.floor(rng.next() * 10);
    await writeFile(join(dir, `${prefix}-images-idx3-ubyte`), images);
    await writeFile(join(dir, `${prefix}-labels-idx1-ubyte`), labels);
  };
  await write('train', shape.train);
  await write('t10k', shape.test);
}
