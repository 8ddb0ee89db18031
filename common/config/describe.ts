import { stringify } from 'yaml';
import { expectation } from './check-value.js';
import { isSection, type Fields } from './field.js';
import { CONFIG } from './schema.js';

/**
 * Every field with its default and documentation, as a commented YAML document that parses back to
 * `defaultConfig()`. `infobound config` prints it.
 */
export function describeConfig(): string {
  const lines = [
    '# Infobound configuration: every field with its default value.',
    '# A config file needs only the fields it changes; flags (--data, --steps, ...) override the file.',
    '# Paths are relative to the working directory.',
  ];
  renderFields(CONFIG, '', true, lines);
  return lines.join('\n') + '\n';
}

/** Comment lines are wrapped at this many columns. */
const WRAP = 100;

function renderFields(fields: Fields, indent: string, topLevel: boolean, lines: string[]): void {
  Object.entries(fields).forEach(([name, entry], i) => {
    // A blank line before every entry but a section's first keeps each comment with its field.
    if (topLevel || i > 0) lines.push('');
    if (isSection(entry)) {
      pushComment(entry.doc, indent, lines);
      lines.push(`${indent}${name}:`);
      renderFields(entry.fields, indent + '  ', false, lines);
    } else {
      pushComment(`${entry.doc} Accepts ${expectation(entry)}.`, indent, lines);
      lines.push(`${indent}${name}: ${stringify(entry.default).trimEnd()}`);
    }
  });
}

/** Appends `text` as `# ` comment lines wrapped at {@link WRAP} columns. */
function pushComment(text: string, indent: string, lines: string[]): void {
  const prefix = `${indent}# `;
  let line = prefix;
  for (const word of text.split(' ')) {
    if (line.length > prefix.length && line.length + 1 + word.length > WRAP) {
      lines.push(line);
      line = prefix;
    }
    line += line.length > prefix.length ? ` ${word}` : word;
  }
  lines.push(line);
}
