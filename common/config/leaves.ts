import { isSection, type Field, type Fields } from './field.js';

/** The dotted path of `name` under `parent`: "train" and "steps" give "train.steps"; at the top, the name alone. */
export function joinPath(parent: string, name: string): string {
  return parent === '' ? name : `${parent}.${name}`;
}

/** Every field under `fields` with its dotted path, in declaration order. */
export function* leaves(fields: Fields, parent = ''): Generator<[path: string, field: Field]> {
  for (const [name, entry] of Object.entries(fields)) {
    const path = joinPath(parent, name);
    if (isSection(entry)) yield* leaves(entry.fields, path);
    else yield [path, entry];
  }
}
