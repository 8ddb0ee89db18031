/**
 * A one-line progress bar on a terminal's stderr, redrawn at most ~10 times a second, so stdout stays
 * free for results (and `--json` lines).
 */
export class ProgressBar {
  private lastDraw = 0;
  private readonly started = Date.now();

  constructor(
    private readonly stream: NodeJS.WriteStream,
    private readonly width = 28,
  ) {}

  update(p: { step: number; steps: number; loss: number; bound: number | null; ceiling: number; examplesPerS: number }): void {
    const now = Date.now();
    if (now - this.lastDraw < 100 && p.step < p.steps) return;
    this.lastDraw = now;
    const frac = p.step / p.steps;
    const full = Math.round(frac * this.width);
    const eta = frac > 0 ? ((now - this.started) / 1000) * (1 / frac - 1) : 0;
    const bound = p.bound === null ? '  -  ' : p.bound.toFixed(3);
    const line =
      `[${'#'.repeat(full)}${'.'.repeat(this.width - full)}] ${p.step}/${p.steps} ` +
      `loss ${p.loss.toFixed(3)}  bound ${bound}/${p.ceiling.toFixed(2)} nats  ` +
      `${formatRate(p.examplesPerS)} ex/s  eta ${formatDuration(eta)}`;
    this.stream.write(`\r${line.slice(0, (this.stream.columns ?? 120) - 1)}\x1b[K`);
  }

  done(): void {
    this.stream.write('\n');
  }
}

function formatRate(r: number): string {
  return r >= 1000 ? `${(r / 1000).toFixed(1)}k` : r.toFixed(0);
}

function formatDuration(s: number): string {
  const m = Math.floor(s / 60);
  return `${m}:${String(Math.floor(s % 60)).padStart(2, '0')}`;
}
