import { readFileSync } from 'node:fs';
import { parseDocument } from 'yaml';
import { UserError } from '../user-error.js';

/** Reads and parses a YAML file; errors are one line that names the file (`where`) and, for syntax, the line. */
export function readYaml(path: string, where: string): unknown {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new UserError(`${where}: file not found`);
    if (code === 'EISDIR') throw new UserError(`${where}: is a directory, expected a YAML file`);
    throw new UserError(`${where}: cannot read: ${code ?? (err as Error).message}`);
  }
  const doc = parseDocument(text);
  const error = doc.errors[0];
  if (error !== undefined) {
    // The library's message has the position and a code excerpt on further lines; keep one line.
    const message = error.message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, '');
    const pos = error.linePos?.[0];
    const at = pos === undefined ? '' : ` at line ${pos.line}, column ${pos.col}`;
    throw new UserError(`${where}: YAML syntax error${at}: ${message}`);
  }
  try {
    return doc.toJS();
  } catch (err) {
    // e.g. an alias bomb exceeding the library's alias limit.
    throw new UserError(`${where}: ${(err as Error).message}`);
  }
}
