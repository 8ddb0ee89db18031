// The repository's shape, checked: no import cycle, no test support in the product folders, and a
// product build (the one the images copy) without tests or test support.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import test from 'node:test';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const PRODUCT = ['cli', 'common', 'coordinator', 'worker', 'proto'];
const SOURCES = [...PRODUCT, 'loadtest', 'deploy', 'testing', 'e2e'];

function tsFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (name === 'node_modules' || name === 'generated') return [];
    if (statSync(path).isDirectory()) return tsFiles(path);
    return name.endsWith('.ts') ? [path] : [];
  });
}

/** Each source file's relative imports, as repository paths of .ts files. */
function importGraph(): Map<string, string[]> {
  const graph = new Map<string, string[]>();
  for (const file of SOURCES.flatMap((d) => tsFiles(join(ROOT, d)))) {
    const text = readFileSync(file, 'utf8');
    const targets = [...text.matchAll(/(?:from|import)\s*\(?\s*'(\.{1,2}\/[^']+)\.js'/g)].map((m) => relative(ROOT, resolve(dirname(file), m[1]! + '.ts')));
    graph.set(
      relative(ROOT, file),
      targets.filter((t) => !t.startsWith('proto/generated')),
    );
  }
  return graph;
}

/** The first cycle found by a depth-first walk, as the list of files on it, or null. */
function findCycle(graph: Map<string, string[]>): string[] | null {
  const state = new Map<string, 'open' | 'done'>();
  const path: string[] = [];
  const visit = (file: string): string[] | null => {
    if (state.get(file) === 'done') return null;
    if (state.get(file) === 'open') return [...path.slice(path.indexOf(file)), file];
    state.set(file, 'open');
    path.push(file);
    for (const next of graph.get(file) ?? []) {
      const cycle = visit(next);
      if (cycle) return cycle;
    }
    path.pop();
    state.set(file, 'done');
    return null;
  };
  for (const file of graph.keys()) {
    const cycle = visit(file);
    if (cycle) return cycle;
  }
  return null;
}

test('no import cycle among the sources', () => {
  const graph = importGraph();
  assert.ok(graph.size > 100, `found the sources (${graph.size} files)`);
  const cycle = findCycle(graph);
  assert.equal(cycle, null, `import cycle: ${cycle?.join(' → ')}`);
});

test('the cycle check finds a cycle', () => {
  assert.deepEqual(
    findCycle(
      new Map([
        ['a', ['b']],
        ['b', ['c']],
        ['c', ['a']],
      ]),
    ),
    ['a', 'b', 'c', 'a'],
  );
  assert.equal(
    findCycle(
      new Map([
        ['a', ['b']],
        ['b', []],
      ]),
    ),
    null,
  );
});

test('no file under the product folders is test support', () => {
  const graph = importGraph();
  const offenders: string[] = [];
  for (const [file, targets] of graph) {
    if (!PRODUCT.some((d) => file.startsWith(d + '/')) || file.endsWith('.test.ts')) continue;
    const text = readFileSync(join(ROOT, file), 'utf8');
    if (targets.some((t) => t.startsWith('testing/') || t.startsWith('e2e/'))) offenders.push(`${file} imports test support`);
    if (/from 'node:(test|assert)(\/strict)?'/.test(text)) offenders.push(`${file} imports node:test or node:assert`);
    if (/(fake|fixture|harness|test-server|test-helpers)/.test(file)) offenders.push(`${file} is named as test support`);
  }
  assert.deepEqual(offenders, []);
});

test('the product build (tsconfig.build.json, what the images copy) leaves tests and test support out', () => {
  const tsc = join(ROOT, 'node_modules', '.bin', 'tsc');
  const files = execFileSync(tsc, ['-p', join(ROOT, 'tsconfig.build.json'), '--listFilesOnly'], { encoding: 'utf8' })
    .split('\n')
    .filter((f) => f.startsWith(ROOT) && !f.includes('node_modules'))
    .map((f) => relative(ROOT, f));
  assert.ok(files.includes('cli/main.ts'), 'the build has the CLI');
  const stray = files.filter((f) => f.endsWith('.test.ts') || /^(testing|e2e|loadtest)\//.test(f));
  assert.deepEqual(stray, []);
});
