import test from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { defaultConfig } from '../../common/config/mod.js';
import { writeSyntheticClickLog } from '../../common/synthetic-clicklog.js';
import { tempDir, useTestBackend } from '../../testing/test-helpers.js';
import { FASHION_MNIST_DIR } from '../data/idx-reader.js';
import { train } from './trainer.js';

test('no tensor leaks across many click-log steps, for every objective and a learnable temperature', async (t) => {
  await useTestBackend();
  const dir = tempDir(t);
  const data = join(dir, 'clicks.tsv');
  await writeSyntheticClickLog(data, { queries: 800, sites: 80, seed: 5 });
  for (const objective of ['infonce', 'nwj', 'dv', 'mine', 'jsd'] as const) {
    const config = defaultConfig();
    Object.assign(config, { data, run_dir: join(dir, objective) });
    Object.assign(config.train, { steps: 25, batch: 32, log_every: 5, objective });
    Object.assign(config.bank, { size: 300 });
    Object.assign(config.temperature, { learnable: objective === 'infonce' });
    Object.assign(config.clicklog, { hash_buckets: 1 << 12 });
    const before = tf.memory().numTensors;
    const summary = await train(config);
    assert.equal(tf.memory().numTensors, before, `${objective}: tensors leaked`);
    assert.equal(summary.steps, 25);
    for (const v of Object.values(summary.bounds)) assert.ok(Number.isFinite(v), `${objective}: ${JSON.stringify(summary.bounds)}`);
  }
});

test('image training: MoCo on IDX files, kNN beside the raw-pixel baseline, no leaks', async (t) => {
  await useTestBackend();
  const config = defaultConfig();
  Object.assign(config, { data: FASHION_MNIST_DIR, run_dir: join(tempDir(t), 'img') });
  Object.assign(config.train, { steps: 12, batch: 32, log_every: 4 });
  Object.assign(config.bank, { size: 200 });
  Object.assign(config.images, { max_train: 2000, hidden_dim: 64, channels: 8 });
  Object.assign(config.eval, { knn_train: 1000, knn_test: 200, knn_k: 20 });
  const before = tf.memory().numTensors;
  const summary = await train(config);
  assert.equal(tf.memory().numTensors, before, 'tensors leaked');
  assert.equal(summary.kind, 'images');
  assert.ok(summary.eval.knn_top1! > 0.1 && summary.eval.knn_top1! <= 1, `knn ${summary.eval.knn_top1}`);
  assert.ok(summary.eval.raw_pixel_knn_top1! > 0.5, `raw-pixel kNN on Fashion-MNIST is ~0.8, got ${summary.eval.raw_pixel_knn_top1}`);
  assert.ok(summary.bounds.infonce <= summary.ceiling);
});

test('K = 65,536 keys with a batch that does not divide it', async (t) => {
  await useTestBackend();
  const dir = tempDir(t);
  const data = join(dir, 'clicks.tsv');
  await writeSyntheticClickLog(data, { queries: 2000, sites: 200, seed: 6 });
  const config = defaultConfig();
  Object.assign(config, { data, run_dir: join(dir, 'run') });
  Object.assign(config.train, { steps: 3, batch: 100, log_every: 1 });
  Object.assign(config.bank, { size: 65536 });
  Object.assign(config.clicklog, { hash_buckets: 1 << 12 });
  Object.assign(config.eval, { enabled: false });
  const summary = await train(config);
  assert.ok(Math.abs(summary.ceiling - Math.log(201)) < 1e-9, 'ceiling follows the filled slots: 2 steps × 100 keys + 1');
});
