import { existsSync, readdirSync } from 'node:fs';
import { mkdir, rename, rm, rmdir, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { initBackend } from '../../common/backend.js';
import { readCheckpoint } from '../../common/checkpoint-file.js';
import { resolveKind, type Config } from '../../common/config/mod.js';
import { UserError } from '../../common/user-error.js';
import { towerInferenceGraph, type TowerWeights } from '../engine/onnx/models/tower-inference-graph.js';
import type { ParamSet } from '../model/param-set.js';
import { loadClickLogTask } from '../train/load-task.js';
import { restoreModelState } from '../train/training-state-file.js';
import { featurizerSpec } from './featurizer-spec.js';
import { idRange } from '../../common/id-range.js';

/** The files an export writes into its directory. */
export const EXPORT_FILES = {
  queryTower: 'query_tower.onnx',
  siteTower: 'site_tower.onnx',
  featurizer: 'featurizer.json',
  sites: 'sites.jsonl',
  siteEmbeddings: 'site_embeddings.f32',
  manifest: 'export.json',
} as const;

/** What {@link exportTowers} is asked to do. */
export interface ExportRequest {
  /** The checkpoint (a run's checkpoint.ibck). */
  checkpoint: string;
  /** The directory to create; it must not exist or be empty. */
  out: string;
  /** The run's config: the model's shapes and the data whose vocabulary is embedded. */
  config: Config;
  /** Progress lines. */
  say?: (message: string) => void;
}

/** What an export wrote. */
export interface ExportSummary {
  out: string;
  step: number;
  sites: number;
  dim: number;
  files: string[];
}

const LAYERS = 2;

/**
 * Turns a click-log checkpoint into inference models other tools can run: the query tower (online)
 * and the site tower (the momentum encoder, which is what the bank and evaluation score sites with)
 * as ONNX graphs from featurised ids to unit embeddings, the featuriser's spec, and the site
 * embeddings of the training vocabulary (float32 rows, with their names in order). Written into a
 * sibling directory and renamed into place, so a failed export leaves nothing behind.
 */
export async function exportTowers(r: ExportRequest): Promise<ExportSummary> {
  const say = r.say ?? (() => {});
  if (resolveKind(r.config) !== 'clicklog') throw new UserError('export: only click-log towers can be exported so far; this config trains images');
  const out = resolve(r.out);
  if (existsSync(out) && readdirSync(out).length > 0) throw new UserError(`export: ${r.out} is not empty; name a new or empty directory`);
  if (!existsSync(r.checkpoint)) throw new UserError(`${r.checkpoint}: no such checkpoint`);
  const where = `checkpoint ${r.checkpoint}`;
  const ck = await readCheckpoint(r.checkpoint);
  const step = (ck.meta as { step?: unknown }).step;
  if (typeof step !== 'number') throw new UserError(`${where}: no step in its header`);
  // The trainer's own embedding of the vocabulary runs on its tfjs backend.
  await initBackend(r.config.backend);
  say(`loading ${r.config.data} for the vocabulary`);
  const task = await loadClickLogTask(r.config);
  restoreModelState(ck, where, task);
  const m = task.model;
  m.keyTable.settleAll(step);
  m.siteIds?.key.settleAll(step);
  const { buckets, embeddingDim, outputDim } = m.options;
  const doc = `Infobound ${EXPORT_FILES.manifest}: step ${step}`;
  const tower = (table: Float32Array, params: ParamSet, prefix: string): TowerWeights => ({
    table,
    rows: buckets,
    embeddingDim,
    params: towerParams(params, prefix),
    prefix,
    layers: LAYERS,
  });
  const sites = await task.siteNames();
  say(`embedding ${sites.length} sites`);
  const embeddings = await m.embedSites(idRange(0, sites.length), step);

  const partial = join(dirname(out), `.${out.split(/[\\/]/).at(-1)}.partial-${process.pid}`);
  await rm(partial, { recursive: true, force: true });
  await mkdir(partial, { recursive: true });
  try {
    await writeFile(join(partial, EXPORT_FILES.queryTower), towerInferenceGraph('infobound-query-tower', tower(m.queryTable.table, m.online, 'q'), doc));
    const siteTower = { ...tower(m.keyTable.table, m.key, 's'), ...(m.siteIds ? { items: { table: m.siteIds.key.table, rows: m.itemCount } } : {}) };
    await writeFile(join(partial, EXPORT_FILES.siteTower), towerInferenceGraph('infobound-site-tower', siteTower, doc));
    await writeFile(join(partial, EXPORT_FILES.featurizer), `${JSON.stringify(featurizerSpec(buckets), null, 2)}\n`);
    await writeFile(join(partial, EXPORT_FILES.sites), sites.map((site, row) => `${JSON.stringify({ row, site })}\n`).join(''));
    await writeFile(join(partial, EXPORT_FILES.siteEmbeddings), new Uint8Array(embeddings.buffer, embeddings.byteOffset, embeddings.byteLength));
    const manifest = {
      format: 'infobound-export',
      version: 1,
      step,
      dim: outputDim,
      towers: {
        query: EXPORT_FILES.queryTower,
        site: EXPORT_FILES.siteTower,
        inputs: ['ids', 'offsets'],
        // With site IDs the site tower also takes each site's row of sites.jsonl (−1: a site it never saw).
        ...(m.siteIds ? { site_inputs: ['ids', 'offsets', 'items'] } : {}),
        output: 'embedding',
      },
      featurizer: EXPORT_FILES.featurizer,
      sites: {
        count: sites.length,
        names: EXPORT_FILES.sites,
        embeddings: EXPORT_FILES.siteEmbeddings,
        dtype: 'float32',
        byte_order: 'little-endian',
        shape: [sites.length, outputDim],
      },
      score: 'dot product of unit embeddings (cosine); the trained logit scale does not change the ranking',
    };
    await writeFile(join(partial, EXPORT_FILES.manifest), `${JSON.stringify(manifest, null, 2)}\n`);
    if (existsSync(out)) await rmdir(out);
    await rename(partial, out);
  } catch (err) {
    await rm(partial, { recursive: true, force: true });
    throw err;
  }
  return { out: r.out, step, sites: sites.length, dim: outputDim, files: Object.values(EXPORT_FILES) };
}

/** A tower's dense parameters by name (`q.w0` …) with their shapes, as views of the ParamSet. */
function towerParams(params: ParamSet, prefix: string): TowerWeights['params'] {
  const out = new Map<string, { data: Float32Array; shape: readonly number[] }>();
  params.specs.forEach((spec, i) => {
    if (!spec.name.startsWith(`${prefix}.`)) return;
    const off = params.offsets[i]!;
    const size = spec.shape.reduce((n, d) => n * d, 1);
    out.set(spec.name, { data: params.values.subarray(off, off + size), shape: spec.shape });
  });
  return out;
}
