import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);
/** The CLI's entry point (bin/infobound.js). */
export const CLI_BIN = new URL('../../bin/infobound.js', import.meta.url).pathname;

/** What a CLI run left. */
export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the CLI in a child process; resolves with its exit code and output whether or not it failed. */
export async function runCli(args: string[], env: Record<string, string> = {}): Promise<CliResult> {
  try {
    const r = await run(process.execPath, [CLI_BIN, ...args], { env: { ...process.env, ...env }, maxBuffer: 64 << 20 });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

/** A failed run whose error is one line (after any progress or skipped-line messages) and has no stack trace. */
export function assertOneLineError(r: CliResult, pattern: RegExp): void {
  assert.notEqual(r.code, 0);
  const lines = r.stderr.trim().split('\n');
  assert.ok(
    lines.every((l) => l.startsWith('infobound')),
    `every stderr line is an infobound message:\n${r.stderr}`,
  );
  assert.match(lines.at(-1)!, pattern);
  assert.doesNotMatch(r.stderr, /^\s+at /m, 'no stack trace');
}
