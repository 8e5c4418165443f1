import { DEFAULT_SIZES, type DemoSizes } from './config.js';
import { DemoError } from './errors.js';

/** Backends the recipe trains on (tfjs: autodiff). */
export const DEMO_BACKENDS = ['tfjs-wasm', 'tfjs-cpu'] as const;
export type DemoBackendName = (typeof DEMO_BACKENDS)[number];

/** Steps, batch and peak learning rate of one training phase. */
export interface PhaseOptions {
  readonly steps: number;
  readonly batch: number;
  readonly lr: number;
}

/** Every knob of the recipe; {@link resolveDemoOptions} fills the defaults. */
export interface ShapesDemoOptions {
  readonly seed: number;
  /** Default `tfjs-wasm` (measured fastest for these training steps). */
  readonly backend: DemoBackendName;
  /**
   * Threads (tfjs-wasm is single-threaded in Node; the recipe is sized for 2 cores). With 2, the image
   * encoder's batches are split with a worker thread (different, equally deterministic weights than
   * with 1), and stage 2's kept objectives run on the worker while the LM loss runs here (the same
   * numbers as with 1). 1: everything on this thread.
   */
  readonly workers: 1 | 2;
  /** Checkpoint directory (replaced atomically). */
  readonly out: string;
  /** Training examples (the image encoder and the LM pre-train on all of them). */
  readonly trainSize: number;
  /**
   * The Q-Former stages train on the first `qformerTrainSize` training examples (their frozen
   * image features are computed once, so fewer rows cost less).
   */
  readonly qformerTrainSize: number;
  readonly validationSize: number;
  /** Test examples = retrieval candidates (distinct captions). */
  readonly testSize: number;
  readonly sizes: DemoSizes;
  readonly encoder: PhaseOptions;
  readonly lm: PhaseOptions;
  readonly stage1: PhaseOptions;
  readonly stage2: PhaseOptions;
  /**
   * Stage-1 objectives kept in stage 2 next to the LM loss, their gradient weight and how many
   * pairs of each batch they see (see `Stage2Options`).
   */
  readonly stage2Keep: {
    readonly objectives: readonly ('itc' | 'itm')[];
    readonly weight: number;
    readonly batch: number;
  };
  /** ITM re-ranks this many ITC candidates per query. */
  readonly rerankK: number;
  /** Caption samples to print. */
  readonly samples: number;
  /** Also evaluate on the validation split (for tuning; the test split is always evaluated). */
  readonly validate: boolean;
  /**
   * Reuse a frozen image encoder (`vision_model.*`) from an earlier checkpoint directory or
   * safetensors file instead of pre-training one (same sizes).
   */
  readonly encoderFrom?: string | undefined;
  /** Reuse a frozen LM (`language_model.*`) likewise. */
  readonly lmFrom?: string | undefined;
}

/** The default recipe (`qf demo`). */
export const DEFAULT_OPTIONS: ShapesDemoOptions = {
  seed: 0,
  backend: 'tfjs-wasm',
  workers: 2,
  out: 'qf-demo-out',
  trainSize: 32000,
  qformerTrainSize: 8000,
  validationSize: 200,
  testSize: 200,
  sizes: DEFAULT_SIZES,
  encoder: { steps: 4000, batch: 32, lr: 6e-3 },
  lm: { steps: 300, batch: 64, lr: 3e-3 },
  stage1: { steps: 400, batch: 16, lr: 1e-3 },
  stage2: { steps: 1200, batch: 32, lr: 5e-3 },
  stage2Keep: { objectives: ['itc', 'itm'], weight: 0.05, batch: 16 },
  rerankK: 10,
  samples: 5,
  validate: false,
};

/** A small, fast configuration for tests and CI smoke runs (does not reach the targets). */
export const QUICK_OPTIONS: ShapesDemoOptions = {
  ...DEFAULT_OPTIONS,
  workers: 1,
  trainSize: 256,
  qformerTrainSize: 256,
  validationSize: 32,
  testSize: 48,
  encoder: { steps: 12, batch: 16, lr: 3e-3 },
  lm: { steps: 12, batch: 16, lr: 3e-3 },
  stage1: { steps: 8, batch: 16, lr: 1e-3 },
  stage2: { steps: 8, batch: 16, lr: 1e-3 },
  rerankK: 5,
  samples: 3,
};

/** Options as given: anything left out comes from the default (or the quick) recipe. */
export type ShapesDemoInput = Partial<
  Omit<ShapesDemoOptions, 'sizes' | 'encoder' | 'lm' | 'stage1' | 'stage2'>
> & {
  readonly quick?: boolean;
  readonly sizes?: Partial<DemoSizes>;
  readonly encoder?: Partial<PhaseOptions>;
  readonly lm?: Partial<PhaseOptions>;
  readonly stage1?: Partial<PhaseOptions>;
  readonly stage2?: Partial<PhaseOptions>;
};

function int(name: string, v: number, min: number, max: number): void {
  if (!Number.isInteger(v) || v < min || v > max)
    throw new DemoError('DEMO_OPTIONS', `${name} must be an integer in ${min}..${max}, got ${v}`);
}

function phase(
  name: string,
  base: PhaseOptions,
  given: Partial<PhaseOptions> | undefined,
  max: number,
): PhaseOptions {
  const p = { ...base, ...given };
  int(`${name}.steps`, p.steps, 0, 1_000_000);
  int(`${name}.batch`, p.batch, 2, max);
  if (!(Number.isFinite(p.lr) && p.lr > 0 && p.lr < 1))
    throw new DemoError('DEMO_OPTIONS', `${name}.lr must be in (0, 1), got ${p.lr}`);
  return p;
}

/** Fills defaults and checks ranges. @throws DemoError `DEMO_OPTIONS` naming the bad option */
export function resolveDemoOptions(input: ShapesDemoInput = {}): ShapesDemoOptions {
  const base = input.quick ? QUICK_OPTIONS : DEFAULT_OPTIONS;
  let o: ShapesDemoOptions = {
    ...base,
    ...Object.fromEntries(Object.entries(input).filter(([, v]) => v !== undefined)),
    sizes: { ...base.sizes, ...input.sizes },
    encoder: base.encoder,
    lm: base.lm,
    stage1: base.stage1,
    stage2: base.stage2,
  } as ShapesDemoOptions;
  int('seed', o.seed, 0, 2 ** 32 - 1);
  if (!DEMO_BACKENDS.includes(o.backend))
    throw new DemoError(
      'DEMO_OPTIONS',
      `backend must be one of ${DEMO_BACKENDS.join(', ')}, got ${o.backend}`,
    );
  if (o.workers !== 1 && o.workers !== 2)
    throw new DemoError('DEMO_OPTIONS', `workers must be 1 or 2, got ${o.workers}`);
  int('trainSize', o.trainSize, 16, 200_000);
  // Left out, it follows a smaller trainSize down.
  if (input.qformerTrainSize === undefined)
    o = { ...o, qformerTrainSize: Math.min(o.qformerTrainSize, o.trainSize) };
  int('qformerTrainSize', o.qformerTrainSize, 16, o.trainSize);
  int('validationSize', o.validationSize, 2, 1000);
  int('testSize', o.testSize, 2, 1000);
  int('rerankK', o.rerankK, 1, o.testSize);
  int('samples', o.samples, 0, o.testSize);
  const keep = o.stage2Keep;
  if (!keep.objectives.every((k) => k === 'itc' || k === 'itm'))
    throw new DemoError(
      'DEMO_OPTIONS',
      `stage2Keep.objectives may hold 'itc' and 'itm' only, got ${keep.objectives.join(', ')}`,
    );
  if (!(Number.isFinite(keep.weight) && keep.weight >= 0))
    throw new DemoError('DEMO_OPTIONS', `stage2Keep.weight must be >= 0, got ${keep.weight}`);
  int('stage2Keep.batch', keep.batch, 2, o.qformerTrainSize);
  return {
    ...o,
    encoder: phase('encoder', base.encoder, input.encoder, o.trainSize),
    lm: phase('lm', base.lm, input.lm, o.trainSize),
    stage1: phase('stage1', base.stage1, input.stage1, o.qformerTrainSize),
    stage2: phase('stage2', base.stage2, input.stage2, o.qformerTrainSize),
  };
}
