import { join } from 'node:path';
import {
  DEFAULT_OPTIONS,
  type DemoBackendName,
  type ShapesDemoInput,
  type ShapesDemoResult,
  type TargetCheck,
  checkTargets,
  demoJson,
  progressReporter,
  runShapesDemo,
} from '@qf/demo';
import { keyValues, table } from './format.js';
import type { CliStreams } from './streams.js';

/** Options of `qf demo` (everything left out comes from the default, or the `--quick`, recipe). */
export interface DemoOptions {
  /** Checkpoint directory (default `qf-demo-out`), replaced atomically. */
  readonly out?: string;
  readonly backend?: DemoBackendName;
  readonly seed?: number;
  readonly quick?: boolean;
  readonly json?: boolean;
  readonly validate?: boolean;
  readonly trainSize?: number;
  readonly qformerTrainSize?: number;
  readonly workers?: number;
  readonly testSize?: number;
  /** Batch size of the Q-Former stages. */
  readonly batch?: number;
  readonly stepsEncoder?: number;
  readonly stepsLm?: number;
  readonly stepsStage1?: number;
  readonly stepsStage2?: number;
  readonly queries?: number;
  readonly visionHidden?: number;
  readonly qformerHidden?: number;
  readonly lmHidden?: number;
  /** Reuse the frozen image encoder of an earlier checkpoint directory (or safetensors file). */
  readonly encoderFrom?: string;
  /** Reuse the frozen LM of an earlier checkpoint directory (or safetensors file). */
  readonly lmFrom?: string;
}

/** What `qf demo` produced. */
export type DemoResult = ShapesDemoResult;

const def = <K extends string, V>(k: K, v: V | undefined): Partial<Record<K, V>> =>
  (v === undefined ? {} : { [k]: v }) as Partial<Record<K, V>>;

/** `qf demo` options -> the recipe's options. */
export function demoInput(o: DemoOptions): ShapesDemoInput {
  const stage = (steps: number | undefined, batch: number | undefined) => ({
    ...def('steps', steps),
    ...def('batch', batch),
  });
  return {
    ...def('out', o.out),
    ...def('backend', o.backend),
    ...def('seed', o.seed),
    ...def('quick', o.quick),
    ...def('validate', o.validate),
    ...def('trainSize', o.trainSize),
    ...def('qformerTrainSize', o.qformerTrainSize),
    ...def('workers', o.workers as 1 | 2 | undefined),
    ...def('testSize', o.testSize),
    ...def('encoderFrom', o.encoderFrom),
    ...def('lmFrom', o.lmFrom),
    encoder: stage(o.stepsEncoder, undefined),
    lm: stage(o.stepsLm, undefined),
    stage1: stage(o.stepsStage1, o.batch),
    stage2: stage(o.stepsStage2, o.batch),
    sizes: {
      ...def('numQueryTokens', o.queries),
      ...def('visionHidden', o.visionHidden),
      ...def('qformerHidden', o.qformerHidden),
      ...def('lmHidden', o.lmHidden),
    },
  };
}

/** Runs the `shapes` recipe with progress on `streams.progress` (bars on a TTY, lines otherwise). */
export async function runDemo(options: DemoOptions, streams: CliStreams): Promise<DemoResult> {
  const info = options.json ? undefined : (line: string) => streams.out(`${line}\n`);
  return runShapesDemo(
    demoInput(options),
    progressReporter({ stream: streams.progress, ...(info ? { info } : {}) }),
  );
}

const pct = (x: number) => `${(100 * x).toFixed(1)}%`;
const secs = (s: number) => `${s.toFixed(1)} s`;

/** The final figures of a run as one JSON object (what `--json` prints). */
export function demoSummary(r: DemoResult): Record<string, unknown> {
  return { checkpointDir: r.checkpointDir, ...demoJson(r) };
}

/** The run's figures against the recipe's targets, one line. */
function targetLines(f: DemoResult['figures']): string {
  const t = checkTargets(f);
  const one = (name: string, c: TargetCheck) =>
    `${name} ${pct(c.value)} (target >= ${pct(c.target)}: ${c.met ? 'met' : 'NOT met'})`;
  return `targets: ${one('ITC i2t R@1', t.itcImageToTextR1)}; ${one('caption exact match', t.captionExactMatch)}\n`;
}

/** The human-readable report of a run. */
export function formatDemo(r: DemoResult): string {
  const f = r.figures;
  const t = r.timings;
  const rate = (p: { stepsPerSecond: number; losses: number[] }) =>
    `${p.losses.length} steps, ${p.stepsPerSecond.toFixed(1)} steps/s`;
  const lines = [
    `\nheld-out figures (${f.split} split, ${f.candidates} images x ${f.candidates} captions, all distinct):\n`,
    table(
      ['retrieval', 'i2t R@1', 'i2t R@5', 't2i R@1', 't2i R@5'],
      [
        ['ITC', pct(f.itc.i2t.r1), pct(f.itc.i2t.r5), pct(f.itc.t2i.r1), pct(f.itc.t2i.r5)],
        [
          `ITC + ITM re-rank (top ${f.itm.k})`,
          pct(f.itm.i2t.r1),
          pct(f.itm.i2t.r5),
          pct(f.itm.t2i.r1),
          pct(f.itm.t2i.r5),
        ],
      ],
    ),
    `\ncaptioning (greedy): exact match ${pct(f.caption.exactMatch)}, token accuracy ${pct(f.caption.tokenAccuracy)}\n`,
    targetLines(f),
    ...(r.validation
      ? [
          `validation (${r.validation.candidates}): ITC i2t R@1 ${pct(r.validation.itc.i2t.r1)}, exact match ${pct(r.validation.caption.exactMatch)}\n`,
        ]
      : []),
    '\nsamples (reference -> generated):\n',
    ...r.samples.map(
      (s) => `  ${s.reference === s.generated ? 'ok  ' : 'MISS'} ${s.reference}\n       -> ${s.generated}\n`,
    ),
    '\n',
    keyValues([
      ['checkpoint', `${r.checkpointDir} (config.json, model.safetensors, tokenizers, demo.json, samples/)`],
      ['backend', r.backend],
      [
        'frozen encoder',
        r.encoder
          ? `${rate(t.encoder)}; auxiliary heads on validation: every slot right ${pct(r.encoder.all)}`
          : `reused from ${r.options.encoderFrom}`,
      ],
      [
        'frozen LM',
        `${r.options.lmFrom ? `reused from ${r.options.lmFrom}` : rate(t.lm)}; validation caption perplexity ${r.lmPerplexity.toFixed(3)}`,
      ],
      ['stage 1', rate(t.stage1)],
      ['stage 2', rate(t.stage2)],
      [
        'time',
        `encoder ${secs(t.encoder.seconds)}, features ${secs(t.features)}, LM ${secs(t.lm.seconds)}, stage 1 ${secs(t.stage1.seconds)}, stage 2 ${secs(t.stage2.seconds)}, evaluation ${secs(t.evaluate)}, total ${secs(t.total)}`,
      ],
    ]),
    '\nnext:\n',
    `  qf inspect ${r.checkpointDir}\n`,
    `  qf caption ${r.checkpointDir} ${join(r.checkpointDir, 'samples', 'test-000.png')}\n`,
    `  qf run ${r.checkpointDir} -i ${join(r.checkpointDir, 'samples', 'inputs.safetensors')} -o run.safetensors\n`,
  ];
  return lines.join('');
}

/** The `qf demo` command: {@link runDemo}, then the figures (or one JSON object with `--json`). */
export async function demoCommand(options: DemoOptions, streams: CliStreams): Promise<void> {
  if (!options.json)
    streams.out(
      `qf demo: the \`shapes\` recipe${options.quick ? ' (--quick: a small smoke configuration, far from the targets)' : ''}: a miniature BLIP-2 trained here from untrained (randomly initialised) weights on a synthetic image-caption set, no downloads.\n` +
        'image encoder (BLIP-2 ViT) pre-trained then frozen -> OPT LM pre-trained then frozen -> Q-Former stage 1 (ITC+ITM+ITG) -> stage 2 (LM loss) -> evaluation.\n\n',
    );
  const r = await runDemo(options, streams);
  streams.out(options.json ? `${JSON.stringify(demoSummary(r))}\n` : formatDemo(r));
}

/** Defaults shown in `qf demo --help`. */
export const DEMO_DEFAULTS = DEFAULT_OPTIONS;
