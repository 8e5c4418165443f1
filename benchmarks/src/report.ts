import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { BenchReport } from './run.js';

function num(x: number, digits: number): string {
  return x.toFixed(digits);
}

/** The results table alone (Markdown). */
export function markdownTable(report: BenchReport): string {
  const head =
    '| backend | threads | workload | batch | runs | median ms | p90 ms | images/s | GFLOP/image | GFLOP/s | peak RSS MiB | tensors before/after |';
  const rule = '|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|';
  const rows = report.results.map((r) =>
    [
      r.backend,
      r.threads,
      r.workload,
      r.batch,
      r.runs < r.requestedRuns ? `${r.runs} (of ${r.requestedRuns})` : r.runs,
      num(r.medianMs, 1),
      num(r.p90Ms, 1),
      num(r.imagesPerSec, 2),
      r.gflopPerImage >= 0.01 ? num(r.gflopPerImage, 3) : r.gflopPerImage.toPrecision(3),
      num(r.gflopPerSec, 2),
      num(r.peakRssMiB, 0),
      `${r.numTensorsBefore}/${r.numTensorsAfter}${r.numTensorsAfter !== r.numTensorsBefore ? ' LEAK' : ''}`,
    ].join(' | '),
  );
  return [head, rule, ...rows.map((r) => `| ${r} |`)].join('\n');
}

/** The whole report as Markdown: machine, table, skipped combinations, notes. */
export function renderMarkdown(report: BenchReport): string {
  const m = report.machine;
  const backends = report.backends
    .map((b) => {
      const extra =
        b.simd === undefined
          ? ''
          : `, SIMD ${b.simd ? 'on' : 'off'}, wasm threads ${b.multithread ? 'available' : 'unavailable'}`;
      return `${b.name} (${b.threads} thread${b.threads === 1 ? '' : 's'}${extra})`;
    })
    .join('; ');
  const lines = [
    `# Q-Former forward benchmark (${report.mode})`,
    '',
    `- Date: ${report.date}; total ${report.totalSeconds.toFixed(0)} s; arguments: \`${report.args.join(' ') || '(none)'}\``,
    `- Machine: ${m.cpuModel}, ${m.cores} cores, ${m.totalMemoryGiB} GiB, ${m.platform} ${m.arch}; load average ${m.loadAverage.join(' / ')} at start, ${report.loadAverageEnd.join(' / ')} at end (1/5/15 min)`,
    `- Runtime: Node ${m.node}, tfjs-core ${m.tfjsCore}; backends: ${backends || '(none ran)'}`,
    `- Per combination: ${report.settings.warmup} warm-up run(s), then up to ${report.settings.runs} timed runs of \`model.run({ image_embeds })\` (upload, forward, download); random weights and features`,
    '',
    markdownTable(report),
    '',
    ...report.workloads.map(
      (w) => `- \`${w.name}\`: ${w.description}; ${w.gflopPerImage.toFixed(3)} GFLOP per image.`,
    ),
  ];
  if (report.skipped.length > 0) {
    lines.push(
      '',
      'Skipped:',
      ...report.skipped.map((s) => `- ${s.backend} ${s.workload} B=${s.batch}: ${s.reason}`),
    );
  }
  const runNotes = report.results
    .filter((r) => r.note)
    .map((r) => `- ${r.backend} ${r.workload} B=${r.batch}: ${r.note}`);
  if (report.notes.length > 0 || runNotes.length > 0) {
    lines.push('', 'Notes:', ...report.notes.map((n) => `- ${n}`), ...runNotes);
  }
  return `${lines.join('\n')}\n`;
}

/** `2025-01-31T12-34-56Z`: an ISO time usable as a file name. */
export function fileStamp(iso: string): string {
  return iso.replace(/\.\d+Z$/, 'Z').replace(/:/g, '-');
}

/**
 * Writes a report as `<prefix><stamp>.json` / `.md` and `<prefix>latest.json` / `.md` under `dir`
 * (created if missing); returns the four paths.
 */
export async function writeResultFiles(
  dir: string,
  prefix: string,
  date: string,
  report: unknown,
  md: string,
): Promise<string[]> {
  await mkdir(dir, { recursive: true });
  const json = `${JSON.stringify(report, null, 2)}\n`;
  const stamp = fileStamp(date);
  const files: [string, string][] = [
    [join(dir, `${prefix}${stamp}.json`), json],
    [join(dir, `${prefix}${stamp}.md`), md],
    [join(dir, `${prefix}latest.json`), json],
    [join(dir, `${prefix}latest.md`), md],
  ];
  for (const [path, text] of files) await writeFile(path, text);
  return files.map(([p]) => p);
}

/** Writes `<stamp>.json`, `<stamp>.md`, `latest.json` and `latest.md` under `dir`; returns their paths. */
export function writeReport(report: BenchReport, dir: string): Promise<string[]> {
  return writeResultFiles(dir, '', report.date, report, renderMarkdown(report));
}
