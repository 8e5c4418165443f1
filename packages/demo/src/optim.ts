import type { Ops, ParamStore, TrainingBackend } from '@qf/core';
import type { HostTensor } from '@qf/io';

/** Linear warm-up then cosine decay to `minRatio * lr` over `total` steps. */
export function warmupCosine(step: number, total: number, lr: number, warmup: number, minRatio = 0.05): number {
  if (step < warmup) return (lr * (step + 1)) / warmup;
  const t = Math.min(1, (step - warmup) / Math.max(1, total - warmup));
  return lr * (minRatio + (1 - minRatio) * 0.5 * (1 + Math.cos(Math.PI * t)));
}

/** Options of {@link DemoAdamW}. */
export interface AdamWOptions {
  readonly beta1?: number;
  readonly beta2?: number;
  readonly eps?: number;
  readonly weightDecay?: number;
  /** Names that get no weight decay (biases, norms, embeddings...). */
  readonly noDecay?: (name: string) => boolean;
}

/** AdamW (decoupled weight decay, bias-corrected moments) run on the backend with `assignParams`. */
export class DemoAdamW<T> {
  private step = 0;
  private readonly m: ParamStore<T>;
  private readonly v: ParamStore<T>;
  private readonly o: Required<Omit<AdamWOptions, 'noDecay'>> & { noDecay: (n: string) => boolean };

  constructor(
    private readonly backend: TrainingBackend<T>,
    private readonly params: ParamStore<T>,
    private readonly names: readonly string[],
    shapes: ReadonlyMap<string, readonly number[]>,
    options: AdamWOptions = {},
  ) {
    const zeros = new Map<string, HostTensor>();
    for (const n of names) {
      const shape = shapes.get(n) ?? [];
      const size = shape.reduce((a, b) => a * b, 1);
      zeros.set(n, { dtype: 'F32', shape, data: new Float32Array(size) });
    }
    this.m = backend.createParams(zeros);
    this.v = backend.createParams(zeros);
    this.o = {
      beta1: options.beta1 ?? 0.9,
      beta2: options.beta2 ?? 0.999,
      eps: options.eps ?? 1e-8,
      weightDecay: options.weightDecay ?? 0.01,
      noDecay: options.noDecay ?? (() => false),
    };
  }

  async apply(grads: ParamStore<T>, lr: number): Promise<void> {
    this.step++;
    const { beta1, beta2, eps, weightDecay } = this.o;
    const c1 = 1 - beta1 ** this.step;
    const c2 = 1 - beta2 ** this.step;
    await this.backend.assignParams((ops: Ops<T>) => {
      const out = [];
      for (const n of this.names) {
        const g = grads.get(n);
        const m = ops.add(ops.mul(this.m.get(n), ops.scalar(beta1)), ops.mul(g, ops.scalar(1 - beta1)));
        const v = ops.add(ops.mul(this.v.get(n), ops.scalar(beta2)), ops.mul(ops.mul(g, g), ops.scalar(1 - beta2)));
        const update = ops.div(ops.mul(m, ops.scalar(1 / c1)), ops.add(ops.sqrt(ops.mul(v, ops.scalar(1 / c2))), ops.scalar(eps)));
        let p = this.params.get(n);
        if (weightDecay > 0 && !this.o.noDecay(n)) p = ops.mul(p, ops.scalar(1 - lr * weightDecay));
        out.push({ store: this.m, name: n, value: m });
        out.push({ store: this.v, name: n, value: v });
        out.push({ store: this.params, name: n, value: ops.sub(p, ops.mul(update, ops.scalar(lr))) });
      }
      return out;
    });
  }

  dispose(): void {
    this.backend.disposeParams(this.m);
    this.backend.disposeParams(this.v);
  }
}
