import { loadConfig } from '../common/config/mod.js';
import { UserError } from '../common/user-error.js';
import { clickLogReadOptions } from '../worker/data/clicklog-reader.js';
import { prepareDataset, type PrepareProgress } from '../worker/dataset/prepare-dataset.js';
import { parseCommandLine, positiveInt } from './parse-flags.js';

export const PREPARE_USAGE = `usage: infobound prepare INPUT... --out DIR [--config FILE] [--shard-mb N] [--json]

Turns click logs (TSV or JSON lines, plain or gzipped; files, directories of them, or name patterns
such as 'logs/day-*.tsv.gz') into a prepared dataset in DIR, in one streaming pass whose memory is
the site vocabulary only: shards of pre-featurised rows (site id, clicks, the query's feature
hashes), the held-out split (by a hash of the query, clicklog.holdout), the site vocabulary with its
training clicks, and manifest.json (counts and SHA-256 of every file, the featuriser). Bad lines are
skipped and counted as in training; click counts above clicklog.max_clicks are capped and counted.
The work happens beside DIR and is renamed to it once complete, so an interrupted prepare never
leaves a dataset that looks complete; run again, it starts over, and a DIR that already holds the
same preparation of the same inputs is kept. Progress (rows/s, bytes, ETA) goes to a terminal.

  --out DIR      the dataset directory to make
  --config FILE  clicklog.format, holdout, max_line_bytes and max_clicks come from it
  --shard-mb N   size a shard is cut at, MiB (default 64)
  --json         print the manifest's counts as one JSON line`;

/** `infobound prepare`. */
export async function prepareCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseCommandLine(
    'prepare',
    argv,
    { out: { type: 'string' }, config: { type: 'string' }, 'shard-mb': { type: 'string' }, json: { type: 'boolean' } },
    true,
  );
  if (values.help) {
    process.stdout.write(PREPARE_USAGE + '\n');
    return 0;
  }
  if (positionals.length === 0) throw new UserError('prepare: no INPUT: name the click-log files or directories (see infobound prepare --help)');
  if (values.out === undefined) throw new UserError('prepare: --out DIR is required (see infobound prepare --help)');
  const config = loadConfig(values.config, {});
  const shardMb = values['shard-mb'] === undefined ? 64 : positiveInt('--shard-mb', values['shard-mb']);
  const say = (m: string) => process.stderr.write(`infobound prepare: ${m}\n`);
  const terminal = process.stderr.isTTY === true;
  const { manifest, alreadyPrepared } = await prepareDataset(positionals, values.out, {
    read: clickLogReadOptions(config.clicklog),
    holdout: config.clicklog.holdout,
    shardBytes: shardMb * 2 ** 20,
    ...(terminal ? { progress: (p: PrepareProgress) => process.stderr.write(`\r${progressLine(p)}\x1b[K`) } : {}),
  });
  if (terminal && !alreadyPrepared) process.stderr.write('\n');
  const summary = {
    out: values.out,
    already_prepared: alreadyPrepared,
    lines: manifest.lines,
    rows: manifest.rows,
    examples: manifest.examples,
    sites: manifest.sites.count,
    shards: manifest.shards.length,
    held_out_shards: manifest.held_out.length,
    capped_rows: manifest.capped_rows,
    skipped: manifest.skipped,
  };
  if (values.json) process.stdout.write(`${JSON.stringify(summary)}\n`);
  else
    say(
      alreadyPrepared
        ? `${values.out} already holds this preparation of these inputs: kept`
        : `${values.out}: ${manifest.rows.train} training rows (${manifest.examples} clicks) in ${manifest.shards.length} shards, ` +
            `${manifest.rows.held_out} held-out rows, ${manifest.sites.count} sites`,
    );
  return 0;
}

/** `1.2 M rows, 45.0 of 120.0 MB, 0.95 M rows/s, eta 0:01:18` */
export function progressLine(p: PrepareProgress): string {
  const rate = p.seconds > 0 ? p.rows / p.seconds : 0;
  const mb = (b: number) => (b / 1e6).toFixed(1);
  const left = p.bytes > 0 && p.totalBytes > p.bytes ? (p.seconds * (p.totalBytes - p.bytes)) / p.bytes : 0;
  const eta = `${Math.floor(left / 3600)}:${String(Math.floor((left % 3600) / 60)).padStart(2, '0')}:${String(Math.floor(left % 60)).padStart(2, '0')}`;
  return `prepare: ${(p.rows / 1e6).toFixed(2)} M rows, ${mb(p.bytes)} of ${mb(p.totalBytes)} MB, ${(rate / 1e6).toFixed(2)} M rows/s, eta ${eta}`;
}
