import cliProgress from 'cli-progress';
import type { RunEvent } from './measure.js';

/** Progress of a benchmark run, on stderr. */
export interface Progress {
  /** A combination starts: `label` names it, `total` runs are planned (warm-up + timed). */
  start(label: string, total: number): void;
  update(e: RunEvent, warmup: number): void;
  stop(summary: string): void;
  log(message: string): void;
}

const seconds = (ms: number): string =>
  ms >= 10_000 ? `${(ms / 1000).toFixed(1)} s` : `${ms.toFixed(1)} ms`;

/**
 * On a terminal: a cli-progress bar per combination (runs done, last run time, ETA). Elsewhere (CI
 * logs): one line per run, so a slow run still shows signs of life.
 */
export function createProgress(stream: NodeJS.WriteStream = process.stderr): Progress {
  if (!stream.isTTY) {
    let label = '';
    return {
      start: (l, total) => {
        label = l;
        stream.write(`${l}: ${total} runs (warm-up + timed)\n`);
      },
      update: (e) => stream.write(`  ${label} ${e.phase} ${e.index}/${e.total}: ${seconds(e.ms)}\n`),
      stop: (summary) => stream.write(`  ${summary}\n`),
      log: (m) => stream.write(`${m}\n`),
    };
  }
  const bar = new cliProgress.SingleBar(
    {
      stream,
      format: '{label} |{bar}| {value}/{total} runs | {phase} | last {last} | ETA {eta_formatted}',
      hideCursor: true,
      clearOnComplete: true,
      etaBuffer: 5,
    },
    cliProgress.Presets.shades_classic,
  );
  let active = false;
  return {
    start: (label, total) => {
      bar.start(total, 0, { label, phase: 'warm-up', last: '-' });
      active = true;
    },
    update: (e, warmup) => {
      if (e.phase === 'timed') bar.setTotal(warmup + e.total);
      bar.update(e.phase === 'warmup' ? e.index : warmup + e.index, {
        phase: e.phase === 'warmup' ? 'warm-up' : 'timed',
        last: seconds(e.ms),
      });
    },
    stop: (summary) => {
      if (active) bar.stop();
      active = false;
      stream.write(`${summary}\n`);
    },
    log: (m) => {
      if (active) bar.stop();
      active = false;
      stream.write(`${m}\n`);
    },
  };
}

/** A Progress that prints nothing (tests). */
export const silentProgress: Progress = { start() {}, update() {}, stop() {}, log() {} };
