/** Hyper-parameters of Adam (Kingma & Ba 2015); defaults are the paper's. */
export interface AdamOptions {
  /** Learning rate. */
  lr: number;
  beta1?: number;
  beta2?: number;
  epsilon?: number;
}

/** Adam on a flat parameter array, in float32 with the same arithmetic on every backend and worker. */
export class Adam {
  readonly m: Float32Array;
  readonly v: Float32Array;
  /** Number of updates applied so far (for bias correction; checkpointed). */
  t = 0;
  private readonly beta1: number;
  private readonly beta2: number;
  private readonly epsilon: number;

  constructor(
    size: number,
    private readonly options: AdamOptions,
  ) {
    this.m = new Float32Array(size);
    this.v = new Float32Array(size);
    this.beta1 = options.beta1 ?? 0.9;
    this.beta2 = options.beta2 ?? 0.999;
    this.epsilon = options.epsilon ?? 1e-8;
  }

  /** params −= lr·m̂/(√v̂+ε) with the given gradient. */
  apply(params: Float32Array, grad: Float32Array, lr = this.options.lr): void {
    this.t++;
    const { beta1: b1, beta2: b2, epsilon } = this;
    const c1 = 1 / (1 - b1 ** this.t);
    const c2 = 1 / (1 - b2 ** this.t);
    const { m: ms, v: vs } = this;
    for (let i = 0; i < params.length; i++) {
      const g = grad[i]!;
      const m = b1 * ms[i]! + (1 - b1) * g;
      const v = b2 * vs[i]! + (1 - b2) * g * g;
      ms[i] = m;
      vs[i] = v;
      params[i]! -= (lr * m * c1) / (Math.sqrt(v * c2) + epsilon);
    }
  }
}
