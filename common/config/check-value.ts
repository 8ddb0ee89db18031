import type { Bounds, Field } from './field.js';

/** Why `value` does not fit `field` ("must be …, got …"), or undefined when it does. */
export function checkValue(field: Field, value: unknown): string | undefined {
  return fits(field, value) ? undefined : `must be ${expectation(field)}, got ${describeValue(value)}`;
}

function fits({ rule, nullable }: Field, value: unknown): boolean {
  if (value === null) return nullable;
  switch (rule.type) {
    case 'bool':
      return typeof value === 'boolean';
    case 'string':
      return typeof value === 'string' && value !== '';
    case 'enum':
      return typeof value === 'string' && rule.values.includes(value);
    case 'int':
    case 'number':
      return (
        typeof value === 'number' &&
        (rule.type === 'int' ? Number.isSafeInteger(value) : Number.isFinite(value)) &&
        inBounds(rule, value) &&
        (rule.type !== 'int' || !rule.powerOfTwo || Number.isInteger(Math.log2(value)))
      );
  }
}

function inBounds(b: Bounds, x: number): boolean {
  return (b.ge === undefined || x >= b.ge) && (b.gt === undefined || x > b.gt) && (b.le === undefined || x <= b.le) && (b.lt === undefined || x < b.lt);
}

/** What a field accepts, in words: "an integer in [1, 1048576]", "a number > 0 or null". */
export function expectation({ rule, nullable }: Field): string {
  let text: string;
  switch (rule.type) {
    case 'bool':
      text = 'true or false';
      break;
    case 'string':
      text = 'a non-empty string';
      break;
    case 'enum':
      text = `one of ${rule.values.map((v) => JSON.stringify(v)).join(', ')}`;
      break;
    case 'int':
      text = (rule.powerOfTwo ? 'a power of two' : 'an integer') + rangeText(rule);
      break;
    case 'number':
      text = 'a number' + rangeText(rule);
      break;
  }
  return nullable ? `${text} or null` : text;
}

function rangeText(b: Bounds): string {
  const lo = b.ge ?? b.gt;
  const hi = b.le ?? b.lt;
  if (lo !== undefined && hi !== undefined) {
    return ` in ${b.ge !== undefined ? '[' : '('}${lo}, ${hi}${b.le !== undefined ? ']' : ')'}`;
  }
  if (lo !== undefined) return b.ge !== undefined ? ` >= ${lo}` : ` > ${lo}`;
  if (hi !== undefined) return b.le !== undefined ? ` <= ${hi}` : ` < ${hi}`;
  return '';
}

/** A value as an error message shows it: strings quoted and shortened, containers by their kind. */
export function describeValue(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (typeof value === 'string') {
    const quoted = JSON.stringify(value);
    return quoted.length > 60 ? `${quoted.slice(0, 56)}..."` : quoted;
  }
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object' && value !== null) return 'a mapping';
  return String(value);
}

/** A plain object, as YAML and JSON mappings parse to (not a list, a class instance or null). */
export function isMapping(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}
