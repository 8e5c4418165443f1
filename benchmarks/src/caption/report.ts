import type { MachineInfo } from '../machine.js';
import { writeResultFiles } from '../report.js';
import type { CaptionResult } from './measure.js';

/** Everything one captioning benchmark run produced (JSON), rendered as Markdown. */
export interface CaptionReport {
  readonly schema: 'qformer-ts-caption-bench/1';
  readonly date: string;
  readonly mode: 'full' | 'quick';
  readonly args: readonly string[];
  readonly machine: MachineInfo;
  readonly onnxRuntime: string;
  readonly workloads: readonly {
    name: string;
    description: string;
    params: number;
    visionParams: number;
    newTokens: number;
    onnxWeights: string;
  }[];
  readonly results: readonly CaptionResult[];
  readonly skipped: readonly { backend: string; workload: string; reason: string }[];
  readonly totalSeconds: number;
  readonly loadAverageEnd: readonly number[];
  /** true when a combination ended with more backend resources than it started with. */
  readonly leaked: boolean;
}

const f1 = (x: number) => x.toFixed(1);
const count = (n: number) => (n >= 1e6 ? `${(n / 1e6).toFixed(1)} M` : `${(n / 1e3).toFixed(1)} K`);

/** The results table (Markdown). */
export function captionTable(report: CaptionReport): string {
  const head =
    '| backend | threads | workload | new tokens | runs | caption median ms | p90 ms | preprocess ms | vision ms | Q-Former+proj ms | LM prefill ms | LM ms/token (step) | generated tokens/s | set-up s | RSS MiB | live before/after |';
  const rule = '|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|';
  const rows = report.results.map((r) =>
    [
      r.backend,
      r.threads,
      r.workload,
      r.newTokens,
      r.runs,
      f1(r.medianMs),
      f1(r.p90Ms),
      f1(r.phases.preprocess),
      f1(r.phases.vision),
      f1(r.phases.qformer),
      f1(r.phases.prefill),
      f1(r.phases.step),
      f1(r.tokensPerSec),
      f1(r.setupSeconds),
      r.rssMiB.toFixed(0),
      `${r.liveBefore}/${r.liveAfter}${r.liveAfter !== r.liveBefore ? ' LEAK' : ''}`,
    ].join(' | '),
  );
  return [head, rule, ...rows.map((r) => `| ${r} |`)].join('\n');
}

/** The whole report as Markdown. */
export function renderCaptionMarkdown(report: CaptionReport): string {
  const m = report.machine;
  const lines = [
    `# Caption benchmark (${report.mode})`,
    '',
    `- Date: ${report.date}; total ${report.totalSeconds.toFixed(0)} s; arguments: \`${report.args.join(' ') || '(none)'}\``,
    `- Machine: ${m.cpuModel}, ${m.cores} cores, ${m.totalMemoryGiB} GiB, ${m.platform} ${m.arch}; load average ${m.loadAverage.join(' / ')} at start, ${report.loadAverageEnd.join(' / ')} at end`,
    `- Runtime: Node ${m.node}, tfjs-core ${m.tfjsCore} (tfjs-cpu: 1 thread), onnxruntime-node ${report.onnxRuntime} (exported files, \`openBlip2Onnx\`; \`onnx-nospin\`: intra-op threads do not spin-wait)`,
    '- One 640x480 RGB image per caption, batch 1: preprocess (bicubic resize + normalise), vision tower, Q-Former + projector, then greedy generation of exactly `new tokens` tokens from BOS (EOS suppressed) with the KV cache. generated tokens/s = new tokens / (prefill + steps). Set-up (loading or random weights, ONNX export) is not part of the latency; the warm-up caption (ORT session creation) is not timed.',
    '',
    captionTable(report),
    '',
    ...report.workloads.map(
      (w) =>
        `- \`${w.name}\`: ${w.description}; ${count(w.params)} parameters (vision ${count(w.visionParams)}); ONNX weights stored as ${w.onnxWeights} (compute float32).`,
    ),
  ];
  if (report.skipped.length > 0)
    lines.push(
      '',
      'Not measured:',
      ...report.skipped.map((s) => `- ${s.backend} ${s.workload}: ${s.reason}`),
    );
  return `${lines.join('\n')}\n`;
}

/** Writes `caption-<stamp>.json/.md` and `caption-latest.json/.md` under `dir`. */
export function writeCaptionReport(report: CaptionReport, dir: string): Promise<string[]> {
  return writeResultFiles(dir, 'caption-', report.date, report, renderCaptionMarkdown(report));
}
