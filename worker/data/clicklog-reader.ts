import { CLICKLOG_FORMATS, type ClicklogFormat, type Config } from '../../common/config/mod.js';
import { UserError } from '../../common/user-error.js';
import { readLineBatches } from './line-reader.js';

/** Why a click-log line was skipped (and counted) instead of read. */
export const CLICKLOG_SKIP_REASONS = [
  'wrong_column_count',
  'empty_field',
  'non_numeric_clicks',
  'negative_clicks',
  'non_finite_clicks',
  'zero_clicks',
  'fractional_clicks',
  'invalid_utf8',
  'invalid_text',
  'line_too_long',
  'invalid_json',
] as const;
/** One of {@link CLICKLOG_SKIP_REASONS}. */
export type ClickLogSkipReason = (typeof CLICKLOG_SKIP_REASONS)[number];

/** A click log as parallel row arrays over interned query and site strings. */
export interface ClickLog {
  /** Distinct (trimmed) queries in order of first appearance; the index is the query id. */
  queries: string[];
  /** Distinct (trimmed) sites in order of first appearance; the index is the site id. */
  sites: string[];
  /** Query id of each row, rows in file order. */
  rowQuery: Int32Array;
  /** Site id of each row. */
  rowSite: Int32Array;
  /** Click count of each row: finite and > 0. */
  rowClicks: Float64Array;
  /** Number of skipped lines for every reason (0 for reasons that did not occur). */
  skipped: Record<ClickLogSkipReason, number>;
  /** Rows whose click count was capped to `maxClicks`. */
  capped: number;
  /** Non-empty lines read: rows plus skipped lines. */
  lines: number;
}

/** The default of {@link ReadClickLogOptions.maxClicks}. */
export const DEFAULT_MAX_CLICKS = 100_000;

/** Options of {@link readClickLog}. */
export interface ReadClickLogOptions {
  /**
   * `tsv` (`query<TAB>site<TAB>clicks`), `jsonl` (`{"query": "…", "site": "…", "clicks": 3}`), or
   * `auto` (default): jsonl if the file's first non-empty line starts with `{`, else tsv.
   */
  format?: ClicklogFormat;
  /** Longest accepted line in bytes; longer lines are skipped as `line_too_long`. Default 1 MiB. */
  maxLineBytes?: number;
  /**
   * Largest click count a row keeps: a row's clicks become that many training examples, so a count
   * from a corrupt line must not be trusted for an allocation; larger counts are capped and counted.
   * @default DEFAULT_MAX_CLICKS
   */
  maxClicks?: number;
  /** Hears of every piece of the file read (compressed bytes for gzip), for progress reports. */
  onBytes?: (fileBytes: number) => void;
  /** Receives one message per skipped line (and the notices); default: a line on stderr. */
  warn?: (message: string) => void;
  /**
   * Skipped lines reported one by one (default 20); after that one notice says further ones are not
   * shown, they are only counted, and a per-reason summary follows when the file is read.
   */
  maxWarnings?: number;
}

/** The reader's options from a config's `clicklog` section. */
export function clickLogReadOptions(c: Config['clicklog'], warn?: (message: string) => void): ReadClickLogOptions {
  return { format: c.format, maxLineBytes: c.max_line_bytes, maxClicks: c.max_clicks, ...(warn ? { warn } : {}) };
}

/** A row's fields, or why the line is skipped. */
type Parsed = { query: string; site: string; clicks: number } | ClickLogSkipReason;

/** Lower-cased spellings of non-finite numbers, including Python's `inf` and `nan`. */
const NON_FINITE_SPELLINGS = new Set(['nan', '+nan', '-nan', 'inf', '+inf', '-inf', 'infinity', '+infinity', '-infinity']);

/** Parses a click count written as text, with the reason when it is not a usable count. */
function parseClicks(raw: string): number | ClickLogSkipReason {
  const s = raw.trim();
  if (s === '') return 'non_numeric_clicks';
  const value = Number(s);
  if (Number.isNaN(value)) return NON_FINITE_SPELLINGS.has(s.toLowerCase()) ? 'non_finite_clicks' : 'non_numeric_clicks';
  // Number() also accepts 0x/0o/0b literals, which are not decimal counts; parseFloat does not.
  if (value !== parseFloat(s)) return 'non_numeric_clicks';
  return checkClicks(value);
}

/** The count itself, or why it cannot weight a row: a count is a whole number of clicks, each one training example. */
function checkClicks(value: number): number | ClickLogSkipReason {
  if (!Number.isFinite(value)) return 'non_finite_clicks';
  if (value < 0) return 'negative_clicks';
  if (value === 0) return 'zero_clicks';
  if (!Number.isInteger(value)) return 'fractional_clicks';
  return value;
}

/**
 * False for NUL or a UTF-16 surrogate without its pair (a JSON escape can make either), and for a
 * site any control character (a site id is a name on one line of a dataset's vocabulary).
 */
function isText(s: string, site: boolean): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 0 || (site && (c < 0x20 || c === 0x7f))) return false;
    if (c >= 0xd800 && c <= 0xdbff) {
      const next = s.charCodeAt(i + 1);
      if (!(next >= 0xdc00 && next <= 0xdfff)) return false;
      i++;
    } else if (c >= 0xdc00 && c <= 0xdfff) return false;
  }
  return true;
}

/** Trims query and site and rejects blank ones. */
function row(query: string, site: string, clicks: number | ClickLogSkipReason): Parsed {
  const q = query.trim();
  const s = site.trim();
  if (q === '' || s === '') return 'empty_field';
  if (!isText(q, false) || !isText(s, true)) return 'invalid_text';
  if (typeof clicks === 'string') return clicks;
  return { query: q, site: s, clicks };
}

/** Parses `query<TAB>site<TAB>clicks`. */
function parseTsv(text: string): Parsed {
  const fields = text.split('\t');
  if (fields.length !== 3) return 'wrong_column_count';
  return row(fields[0]!, fields[1]!, parseClicks(fields[2]!));
}

/**
 * Parses `{"query": …, "site": …, "clicks": …}`; other keys are ignored. Query and site must be
 * strings and clicks present (else invalid_json); clicks may be a number or a numeric string.
 */
function parseJsonl(text: string): Parsed {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return 'invalid_json';
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return 'invalid_json';
  const { query, site, clicks } = value as Record<string, unknown>;
  if (typeof query !== 'string' || typeof site !== 'string' || clicks === undefined) return 'invalid_json';
  const count = typeof clicks === 'number' ? checkClicks(clicks) : typeof clicks === 'string' ? parseClicks(clicks) : 'non_numeric_clicks';
  return row(query, site, count);
}

/** Id of `key` in `table`, appending it to `list` when new. */
function intern(key: string, table: Map<string, number>, list: string[]): number {
  let id = table.get(key);
  if (id === undefined) {
    const own = ownCopy(key);
    id = list.length;
    table.set(own, id);
    list.push(own);
  }
  return id;
}

/**
 * A string of its own, to keep: a field cut from a line is a slice of the text it came from (V8
 * keeps the whole decoded chunk alive for it), so a vocabulary of slices holds most of the file.
 */
export function ownCopy(s: string): string {
  return Buffer.from(s, 'utf8').toString('utf8');
}

/** `reason=count, …` for the reasons that occurred. */
function describeSkipped(skipped: Record<ClickLogSkipReason, number>): string {
  return CLICKLOG_SKIP_REASONS.filter((r) => skipped[r] > 0)
    .map((r) => `${r}=${skipped[r]}`)
    .join(', ');
}

/** What {@link forEachClickRow} counted: lines read, lines skipped by reason, rows capped. */
export interface ClickLogCounts {
  lines: number;
  skipped: Record<ClickLogSkipReason, number>;
  capped: number;
}

/**
 * Streams a click log (plain or gzipped, TSV or JSON lines), calling `visit` with every valid row
 * (query and site trimmed, clicks a whole number capped to `maxClicks`) in file order; nothing but
 * the current line is held. Malformed lines are skipped, counted per reason and reported through
 * `warn` as `infobound: FILE:LINE: skipped (reason)`; a file without a single valid line is a UserError.
 */
export async function forEachClickRow(
  path: string,
  opts: ReadClickLogOptions,
  visit: (query: string, site: string, clicks: number) => void,
): Promise<ClickLogCounts> {
  const { maxLineBytes, maxWarnings = 20, maxClicks = DEFAULT_MAX_CLICKS } = opts;
  const warn = opts.warn ?? ((message: string) => void process.stderr.write(`${message}\n`));
  let format = opts.format ?? 'auto';
  if (!CLICKLOG_FORMATS.includes(format)) {
    throw new UserError(`click-log format must be one of ${CLICKLOG_FORMATS.join(', ')}, got "${format}"`);
  }
  const skipped = Object.fromEntries(CLICKLOG_SKIP_REASONS.map((r) => [r, 0])) as Record<ClickLogSkipReason, number>;
  let skippedTotal = 0;
  let lines = 0;
  let kept = 0;
  let capped = 0;

  const skip = (lineNo: number, reason: ClickLogSkipReason): void => {
    skipped[reason]++;
    skippedTotal++;
    if (skippedTotal <= maxWarnings) warn(`infobound: ${path}:${lineNo}: skipped (${reason})`);
    else if (skippedTotal === maxWarnings + 1) warn(`infobound: ${path}: further skipped lines not shown`);
  };

  for await (const batch of readLineBatches(path, {
    ...(maxLineBytes !== undefined ? { maxLineBytes } : {}),
    ...(opts.onBytes ? { onBytes: opts.onBytes } : {}),
  })) {
    for (const line of batch) {
      lines++;
      if ('error' in line) {
        skip(line.lineNo, line.error);
        continue;
      }
      if (format === 'auto') format = line.text.trimStart().startsWith('{') ? 'jsonl' : 'tsv';
      const parsed = format === 'jsonl' ? parseJsonl(line.text) : parseTsv(line.text);
      if (typeof parsed === 'string') {
        skip(line.lineNo, parsed);
        continue;
      }
      if (parsed.clicks > maxClicks) capped++;
      visit(parsed.query, parsed.site, Math.min(parsed.clicks, maxClicks));
      kept++;
    }
  }

  if (kept === 0) {
    const reasons = skippedTotal > 0 ? `; skipped: ${describeSkipped(skipped)}` : '';
    throw new UserError(`${path}: no valid click-log line (${lines} lines read${reasons})`);
  }
  if (skippedTotal > maxWarnings) {
    warn(`infobound: ${path}: skipped ${skippedTotal} of ${lines} lines (${describeSkipped(skipped)})`);
  }
  if (capped > 0) warn(`infobound: ${path}: ${capped} rows had more than ${maxClicks} clicks and were capped to it (clicklog.max_clicks)`);
  return { lines, skipped, capped };
}

/** Reads a whole click log into interned query/site ids and per-row clicks ({@link forEachClickRow}'s rows). */
export async function readClickLog(path: string, opts: ReadClickLogOptions = {}): Promise<ClickLog> {
  const queries: string[] = [];
  const sites: string[] = [];
  const queryIds = new Map<string, number>();
  const siteIds = new Map<string, number>();
  const rowQuery: number[] = [];
  const rowSite: number[] = [];
  const rowClicks: number[] = [];
  const counts = await forEachClickRow(path, opts, (query, site, clicks) => {
    rowQuery.push(intern(query, queryIds, queries));
    rowSite.push(intern(site, siteIds, sites));
    rowClicks.push(clicks);
  });
  return {
    queries,
    sites,
    rowQuery: Int32Array.from(rowQuery),
    rowSite: Int32Array.from(rowSite),
    rowClicks: Float64Array.from(rowClicks),
    ...counts,
  };
}
