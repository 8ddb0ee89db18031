import { readInputChunks } from './input-stream.js';

/** Reasons a line can be rejected by {@link readLines} before any format-specific parsing. */
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

/** What {@link readLines} yields; tell the two apart with `'error' in line`. */
export type Line = TextLine | BadLine;

/** Options of {@link readLines}. */
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
 * Streams the lines of a text file (gzipped or plain, detected from its magic bytes), yielding each
 * non-empty line with its line number, or the reason it was rejected: not strictly valid UTF-8, or
 * longer than `maxLineBytes`. Accepts LF and CRLF endings and a last line without a newline; a
 * leading UTF-8 byte-order mark is dropped.
 * A missing or unreadable file or a corrupt gzip stream throws a UserError naming the file.
 */
export async function* readLines(path: string, { maxLineBytes = 1 << 20, onBytes }: ReadLinesOptions = {}): AsyncGenerator<Line> {
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

  for await (const chunk of readInputChunks(path, onBytes)) {
    let start = 0;
    for (let nl = chunk.indexOf(LF, start); nl !== -1; nl = chunk.indexOf(LF, start)) {
      const line = finish(chunk.subarray(start, nl));
      if (line !== undefined) yield line;
      start = nl + 1;
    }
    hold(chunk.subarray(start));
  }
  if (partsBytes > 0 || dropping) {
    const line = finish(Buffer.alloc(0));
    if (line !== undefined) yield line;
  }
}
