import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { loadConfig } from '../common/config/mod.js';
import { UserError } from '../common/user-error.js';
import { EXPORT_FILES, exportTowers } from '../worker/export/tower-export.js';
import { parseCommandLine } from './parse-flags.js';

export const EXPORT_USAGE = `usage: infobound export CHECKPOINT --out DIR [--config FILE] [--data FILE]

Turns a click-log checkpoint into models other tools can run, in the new (or empty) directory DIR:
${EXPORT_FILES.queryTower} and ${EXPORT_FILES.siteTower} (ONNX; inputs ids int64 [N] and offsets int64 [B+1] of
the featurised text, output embedding float32 [B, d], unit rows), ${EXPORT_FILES.featurizer} (how text becomes
ids: hash, buckets, n-grams), the site embeddings of the training vocabulary (${EXPORT_FILES.siteEmbeddings},
float32 rows, and ${EXPORT_FILES.sites}, their names in order) and ${EXPORT_FILES.manifest}. The model's shapes
and the data come from --config, by default the run's config.json beside CHECKPOINT; --data overrides
the data path.`;

/** `infobound export CHECKPOINT --out DIR`. */
export async function exportCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseCommandLine('export', argv, { out: { type: 'string' }, config: { type: 'string' }, data: { type: 'string' } }, true);
  if (values.help) {
    process.stdout.write(EXPORT_USAGE + '\n');
    return 0;
  }
  if (positionals.length !== 1) throw new UserError(`export: expected one CHECKPOINT, got ${positionals.length} (see infobound export --help)`);
  if (values.out === undefined) throw new UserError('export: --out DIR is required');
  const checkpoint = positionals[0]!;
  const besides = join(dirname(checkpoint), 'config.json');
  const configPath = values.config ?? (existsSync(besides) ? besides : undefined);
  if (configPath === undefined) throw new UserError(`export: no config.json beside ${checkpoint}; pass --config FILE (the run's config)`);
  const config = loadConfig(configPath, values.data === undefined ? {} : { data: values.data });
  const summary = await exportTowers({ checkpoint, out: values.out, config, say: (m) => process.stderr.write(`infobound export: ${m}\n`) });
  process.stderr.write(`infobound export: step ${summary.step}, ${summary.sites} sites of dimension ${summary.dim}\n`);
  process.stdout.write(`${summary.out}\n`);
  return 0;
}
