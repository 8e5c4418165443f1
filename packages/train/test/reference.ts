/**
 * Float64 reference implementations for the optimizer tests, written from PyTorch's definitions
 * (`torch/optim/adamw.py` `_single_tensor_adamw`, `torch/nn/utils/clip_grad.py`) independently of
 * the package code: plain loops over Float64Arrays.
 */

export interface RefParam {
  readonly name: string;
  readonly shape: readonly number[];
  p: Float64Array;
  m: Float64Array;
  v: Float64Array;
  readonly decay: boolean;
}

export interface RefAdamW {
  readonly params: RefParam[];
  readonly betas: readonly [number, number];
  readonly eps: number;
  readonly weightDecay: number;
  t: number;
}

export function refAdamW(
  init: ReadonlyMap<string, { shape: readonly number[]; data: Float32Array }>,
  decay: (name: string, shape: readonly number[]) => boolean,
  o: { betas?: [number, number]; eps?: number; weightDecay?: number } = {},
): RefAdamW {
  const params: RefParam[] = [];
  for (const [name, { shape, data }] of init) {
    params.push({
      name,
      shape,
      p: Float64Array.from(data),
      m: new Float64Array(data.length),
      v: new Float64Array(data.length),
      decay: decay(name, shape),
    });
  }
  return {
    params,
    betas: o.betas ?? [0.9, 0.999],
    eps: o.eps ?? 1e-8,
    weightDecay: o.weightDecay ?? 0.05,
    t: 0,
  };
}

/**
 * One PyTorch AdamW step in float64: decoupled decay `p *= 1 - lr * wd`, then the moments, then
 * `p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)` (eps after the bias correction).
 */
export function refStep(opt: RefAdamW, grads: ReadonlyMap<string, Float64Array>, lr: number): void {
  opt.t += 1;
  const [b1, b2] = opt.betas;
  const bc1 = 1 - b1 ** opt.t;
  const bc2 = 1 - b2 ** opt.t;
  for (const q of opt.params) {
    const g = grads.get(q.name) as Float64Array;
    const wd = q.decay ? opt.weightDecay : 0;
    for (let i = 0; i < q.p.length; i++) {
      const gi = g[i] as number;
      const p = (q.p[i] as number) * (1 - lr * wd);
      const m = (q.m[i] as number) * b1 + (1 - b1) * gi;
      const v = (q.v[i] as number) * b2 + (1 - b2) * gi * gi;
      const denom = Math.sqrt(v) / Math.sqrt(bc2) + opt.eps;
      q.m[i] = m;
      q.v[i] = v;
      q.p[i] = p - (lr / bc1) * (m / denom);
    }
  }
}

/** `clip_grad_norm_` in float64: scales `grads` in place, returns the total norm before clipping. */
export function refClip(grads: Map<string, Float64Array>, maxNorm: number): number {
  const norms: number[] = [];
  for (const g of grads.values()) {
    let s = 0;
    for (const x of g) s += x * x;
    norms.push(Math.sqrt(s));
  }
  const total = Math.sqrt(norms.reduce((a, n) => a + n * n, 0));
  const coef = Math.min(maxNorm / (total + 1e-6), 1);
  for (const g of grads.values()) for (let i = 0; i < g.length; i++) g[i] = (g[i] as number) * coef;
  return total;
}
