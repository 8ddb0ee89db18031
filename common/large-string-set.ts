/**
 * A set of strings past the 2^24 entries one V8 `Set` can hold (`RangeError: Set maximum size
 * exceeded` at 16.7 M): the strings spread over several Sets by a hash of their characters.
 */
export class LargeStringSet {
  private readonly parts: Set<string>[];

  /** `parts` Sets, so up to parts × 2^24 strings. @default 64 */
  constructor(parts = 64) {
    this.parts = Array.from({ length: parts }, () => new Set<string>());
  }

  has(s: string): boolean {
    return this.part(s).has(s);
  }

  add(s: string): this {
    this.part(s).add(s);
    return this;
  }

  get size(): number {
    return this.parts.reduce((n, p) => n + p.size, 0);
  }

  private part(s: string): Set<string> {
    // FNV-1a over UTF-16 code units: cheap, and spreads similar strings apart.
    let h = 0x811c9dc5;
    for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
    return this.parts[(h >>> 0) % this.parts.length]!;
  }
}
