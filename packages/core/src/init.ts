import type { HostTensor } from '@qf/io';
import { numel } from '@qf/io';
import { Rng } from './rng.js';
import type { ParamSpec } from './spec.js';

/**
 * Init schemes:
 * - `hf`: as HF `Blip2PreTrainedModel._init_weights` — Linear/Conv/Embedding/query tokens ~ N(0, range),
 *   biases 0, LayerNorm 1/0.
 * - `stress`: every value non-trivial, as the golden data does — Linear and Conv W ~ N(0,1)/sqrt(fan_in),
 *   biases ~ 0.1 N(0,1), LayerNorm weight ~ 1 + 0.1 N(0,1), embeddings and query tokens ~ 0.5 N(0,1).
 *   Use it in tests so that no parameter can be silently ignored.
 */
export type InitScheme = 'hf' | 'stress';

/** Options of {@link initParams}. */
export interface InitOptions {
  readonly seed: number;
  readonly scheme?: InitScheme;
  /** HF `initializer_range` (default 0.02). */
  readonly initializerRange?: number;
}

function sample(spec: ParamSpec, rng: Rng, scheme: InitScheme, range: number): (i: number) => number {
  if (scheme === 'hf') {
    switch (spec.kind) {
      case 'bias':
      case 'norm.bias':
        return () => 0;
      case 'norm.weight':
        return () => 1;
      default:
        return () => rng.normal() * range;
    }
  }
  switch (spec.kind) {
    case 'linear.weight': {
      const scale = 1 / Math.sqrt(spec.shape[1] ?? 1);
      return () => rng.normal() * scale;
    }
    case 'conv.weight': {
      const fanIn = spec.shape.slice(1).reduce((a, b) => a * b, 1);
      const scale = 1 / Math.sqrt(fanIn);
      return () => rng.normal() * scale;
    }
    case 'bias':
    case 'norm.bias':
      return () => 0.1 * rng.normal();
    case 'norm.weight':
      return () => 1 + 0.1 * rng.normal();
    default:
      return () => 0.5 * rng.normal();
  }
}

/** Seeded float32 values for every parameter in `specs`. */
export function initParams(
  specs: readonly ParamSpec[],
  options: InitOptions,
): Map<string, HostTensor<'F32'>> {
  const rng = new Rng(options.seed);
  const scheme = options.scheme ?? 'hf';
  const range = options.initializerRange ?? 0.02;
  const out = new Map<string, HostTensor<'F32'>>();
  for (const spec of specs) {
    const data = new Float32Array(numel(spec.shape));
    const draw = sample(spec, rng, scheme, range);
    for (let i = 0; i < data.length; i++) data[i] = draw(i);
    out.set(spec.name, { dtype: 'F32', shape: [...spec.shape], data });
  }
  return out;
}
