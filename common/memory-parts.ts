/** The parts a worker's memory is reported in (docs/architecture.md §7): metrics, the start-up line, the dashboard. */
export const MEMORY_PARTS = ['bank', 'tables', 'optimizer', 'dense', 'data'] as const;
export type MemoryPart = (typeof MEMORY_PARTS)[number];

/** Bytes held, by part: the bank's keys, the sparse tables this worker holds (momentum copies included), optimiser state, dense parameters, loaded data. */
export type MemoryBytes = Record<MemoryPart, number>;

/**
 * Bytes of the distinct ArrayBuffers behind the typed arrays reachable from `roots` through object
 * fields, arrays and Map values (a few levels deep). A buffer counts once however many views share
 * it, so columns read as views of one file count the file once; strings and other JS values are not
 * counted (they are not where the bulk of a worker's memory is).
 */
export function heldBytes(roots: readonly unknown[]): number {
  const buffers = new Set<ArrayBufferLike>();
  const seen = new Set<object>();
  const visit = (value: unknown, depth: number): void => {
    if (typeof value !== 'object' || value === null || seen.has(value)) return;
    seen.add(value);
    if (ArrayBuffer.isView(value)) {
      buffers.add(value.buffer);
      return;
    }
    if (depth === 0) return;
    const children = value instanceof Map ? value.values() : Array.isArray(value) ? value : Object.values(value);
    for (const child of children) visit(child, depth - 1);
  };
  for (const root of roots) visit(root, 4);
  let bytes = 0;
  for (const b of buffers) bytes += b.byteLength;
  return bytes;
}

/** "1.5 GiB", "12.0 MiB", "640 B": binary units, one decimal. */
export function formatBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let u = 0;
  while (value >= 1024 && u < units.length - 1) {
    value /= 1024;
    u++;
  }
  return u === 0 ? `${value} B` : `${value.toFixed(1)} ${units[u]}`;
}

/** The start-up line's account: "memory: bank 16.0 MiB, tables 1.5 GiB, …; 1.6 GiB in all". */
export function describeMemory(m: MemoryBytes): string {
  const total = MEMORY_PARTS.reduce((sum, p) => sum + m[p], 0);
  return `memory: ${MEMORY_PARTS.map((p) => `${p} ${formatBytes(m[p])}`).join(', ')}; ${formatBytes(total)} in all`;
}
