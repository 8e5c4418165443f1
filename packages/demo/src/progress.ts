import cliProgress from 'cli-progress';
import type { DemoReporter, PhaseReporter } from './report.js';

/** Where progress goes: a stream for bars/lines, and a sink for info lines. */
export interface ProgressOptions {
  /** Bars draw here when it is a TTY; otherwise plain lines (every `every` steps). Undefined: none. */
  readonly stream?: NodeJS.WriteStream | undefined;
  /** Info lines (sizes, phase summaries). */
  readonly info?: (line: string) => void;
  /** Plain-line interval in steps when the stream is not a TTY (default: ~10 lines per phase). */
  readonly every?: number;
}

const fmt = (x: number, d = 3) => (Number.isFinite(x) ? x.toFixed(d) : '-');
const eta = (s: number) =>
  Number.isFinite(s)
    ? s >= 60
      ? `${Math.floor(s / 60)}m${String(Math.round(s % 60)).padStart(2, '0')}s`
      : `${s.toFixed(0)}s`
    : '-';

/**
 * A reporter that draws one cli-progress bar per phase (loss, steps/s, ETA) on a TTY, or prints a
 * plain line every so often on any other stream.
 */
export function progressReporter(o: ProgressOptions = {}): DemoReporter {
  const stream = o.stream;
  const tty = stream?.isTTY === true;
  return {
    info: (line) => o.info?.(line),
    phase(name: string, total: number, unit: string): PhaseReporter {
      const t0 = performance.now();
      let last = 0;
      let lastLoss = Number.NaN;
      const rate = (step: number) => step / Math.max(1e-9, (performance.now() - t0) / 1000);
      const every = o.every ?? Math.max(1, Math.ceil(total / 10));
      let bar: cliProgress.SingleBar | undefined;
      if (stream && tty && total > 0) {
        bar = new cliProgress.SingleBar(
          {
            stream,
            format: `${name.padEnd(22)} |{bar}| {value}/{total} ${unit} | loss {loss} | {rate} ${unit}/s | ETA {eta_t}`,
            hideCursor: true,
            clearOnComplete: false,
            barsize: 24,
          },
          cliProgress.Presets.shades_classic,
        );
        bar.start(total, 0, { loss: '-', rate: '-', eta_t: '-' });
      }
      return {
        name,
        step(step, loss) {
          last = step;
          if (Number.isFinite(loss)) lastLoss = loss;
          const r = rate(step);
          if (bar) bar.update(step, { loss: fmt(lastLoss), rate: fmt(r, 1), eta_t: eta((total - step) / r) });
          else if (stream && (step % every === 0 || step === total))
            stream.write(
              `${name}: ${step}/${total} ${unit}, loss ${fmt(lastLoss)}, ${fmt(r, 1)} ${unit}/s, ETA ${eta((total - step) / r)}\n`,
            );
        },
        end(summary) {
          bar?.stop();
          const secs = (performance.now() - t0) / 1000;
          o.info?.(
            `${name}: ${last} ${unit} in ${secs.toFixed(1)} s${Number.isFinite(lastLoss) ? `, final loss ${fmt(lastLoss)}` : ''}${summary ? `, ${summary}` : ''}`,
          );
        },
      };
    },
  };
}
