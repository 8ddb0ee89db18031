import { readInputChunks } from './input-stream.js';

/** Reasons a line can be rejected by {@link readLineBatches} before any format-specific parsing. */
export const LINE_ERRORS = ['invalid_utf8', 'line_too_long'] as const;
/** One of {@link LINE_ERRORS}. */
export type LineError = (typeof LINE_ERRORS)[number];

/** A decoded, non-empty line (without its `\n` or `\r\n`). */
export interface TextLine {
  /** 1-based physical line number in the (decompressed) file, empty lines included. */
  lineNo: number;
  /** The line's text, strictly valid UTF-8. */
  text: string;
}

/** A line that was rejected; its bytes are not returned. */
export interface BadLine {
  /** 1-based physical line number in the (decompressed) file, empty lines included. */
  lineNo: number;
  /** Why the line was rejected. */
  error: LineError;
}

/** A line as {@link readLineBatches} gives it; tell the two apart with `'error' in line`. */
export type Line = TextLine | BadLine;

/** Options of {@link readLineBatches}. */
export interface ReadLinesOptions {
  /**
   * Longest accepted line in bytes, excluding the line ending. Longer lines are dropped as they stream
   * past (never held in memory) and reported once as `line_too_long`. Default 1 MiB.
   */
  maxLineBytes?: number;
  /** Hears of every piece of the file read (compressed bytes for gzip), for progress reports. */
  onBytes?: (fileBytes: number) => void;
}

const LF = 0x0a;
const CR = 0x0d;

/**
 * Streams the lines of a text file (gzipped or plain, detected from its magic bytes), a chunk of
 * lines at a time (one await per line would cost more than the line's parsing): each non-empty line
 * with its line number, or the reason it was rejected: not strictly valid UTF-8, or longer than
 * `maxLineBytes`. Accepts LF and CRLF endings and a last line without a newline; a leading UTF-8
 * byte-order mark is dropped. A chunk's whole lines are decoded as one string when they are valid
 * UTF-8 (nearly always), and line by line otherwise.
 * A missing or unreadable file or a corrupt gzip stream throws a UserError naming the file.
 */
export async function* readLineBatches(path: string, { maxLineBytes = 1 << 20, onBytes }: ReadLinesOptions = {}): AsyncGenerator<Line[]> {
  if (!Number.isSafeInteger(maxLineBytes) || maxLineBytes < 1) {
    throw new RangeError(`maxLineBytes must be a positive integer, got ${maxLineBytes}`);
  }
  // fatal: a malformed byte sequence throws instead of silently becoming U+FFFD.
  const decoder = new TextDecoder('utf-8', { fatal: true });
  let lineNo = 0;
  // Pieces of the current line that arrived in earlier chunks.
  let parts: Buffer[] = [];
  let partsBytes = 0;
  // Set once the current line is known to be too long: its remaining bytes are discarded.
  let dropping = false;

  /** Adds a piece of a line whose end has not arrived yet. */
  const hold = (piece: Buffer): void => {
    if (dropping || piece.length === 0) return;
    // +1: the piece may end with the '\r' of a CRLF whose '\n' is in the next chunk.
    if (partsBytes + piece.length > maxLineBytes + 1) {
      dropping = true;
      parts = [];
      partsBytes = 0;
      return;
    }
    // A copy, so that the (possibly pooled) chunk is not retained or overwritten.
    parts.push(Buffer.from(piece));
    partsBytes += piece.length;
  };

  /** Completes the current line with its last piece; undefined for an empty line. */
  const finish = (last: Buffer): Line | undefined => {
    lineNo++;
    if (dropping) {
      dropping = false;
      return { lineNo, error: 'line_too_long' };
    }
    const bytes = partsBytes === 0 ? last : Buffer.concat([...parts, last]);
    parts = [];
    partsBytes = 0;
    const end = bytes.length > 0 && bytes[bytes.length - 1] === CR ? bytes.length - 1 : bytes.length;
    if (end === 0) return undefined;
    if (end > maxLineBytes) return { lineNo, error: 'line_too_long' };
    try {
      return { lineNo, text: decoder.decode(bytes.subarray(0, end)) };
    } catch {
      return { lineNo, error: 'invalid_utf8' };
    }
  };

  /** The lines of `text`, whole lines of valid UTF-8 each ending in '\n'. */
  const splitDecoded = (text: string, out: Line[]): void => {
    let at = 0;
    for (let nl = text.indexOf('\n', at); nl !== -1; nl = text.indexOf('\n', at)) {
      lineNo++;
      const end = nl > at && text.charCodeAt(nl - 1) === CR ? nl - 1 : nl;
      if (end > at) {
        // UTF-8 takes 1 to 3 bytes per UTF-16 unit: count the bytes only when it could matter.
        const units = end - at;
        const tooLong = units > maxLineBytes || (3 * units > maxLineBytes && Buffer.byteLength(text.slice(at, end)) > maxLineBytes);
        out.push(tooLong ? { lineNo, error: 'line_too_long' } : { lineNo, text: text.slice(at, end) });
      }
      at = nl + 1;
    }
  };

  for await (const chunk of readInputChunks(path, onBytes)) {
    const out: Line[] = [];
    let start = 0;
    // The line that began in earlier chunks ends at the first newline, if any.
    const first = chunk.indexOf(LF);
    if (first !== -1 && (partsBytes > 0 || dropping)) {
      const line = finish(chunk.subarray(0, first));
      if (line !== undefined) out.push(line);
      start = first + 1;
    }
    const last = chunk.lastIndexOf(LF);
    if (last >= start) {
      const whole = chunk.subarray(start, last + 1);
      let text: string | null = null;
      try {
        text = decoder.decode(whole);
      } catch {
        // Some line is not valid UTF-8: find it line by line.
      }
      if (text !== null) splitDecoded(text, out);
      else {
        let at = 0;
        for (let nl = whole.indexOf(LF); nl !== -1; nl = whole.indexOf(LF, at)) {
          const line = finish(whole.subarray(at, nl));
          if (line !== undefined) out.push(line);
          at = nl + 1;
        }
      }
      start = last + 1;
    }
    hold(chunk.subarray(start));
    if (out.length > 0) yield out;
  }
  if (partsBytes > 0 || dropping) {
    const line = finish(Buffer.alloc(0));
    if (line !== undefined) yield [line];
  }
}
