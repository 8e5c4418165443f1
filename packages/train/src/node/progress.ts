import cliProgress from 'cli-progress';
import type { StepMetrics, TrainReporter } from '../trainer/types.js';

/** `bar`: a cli-progress bar; `lines`: plain periodic lines; `auto`: a bar on a TTY, else lines. */
export type ProgressMode = 'auto' | 'bar' | 'lines' | 'off';

/** Options of {@link progressReporter}. */
export interface ProgressOptions {
  /** Default `process.stderr`. */
  readonly stream?: NodeJS.WriteStream;
  /** Default `auto`. */
  readonly mode?: ProgressMode;
  /** Lines mode: print every this many steps (default: about 20 lines per run) and the last. */
  readonly every?: number;
}

const fmt = (x: number): string =>
  !Number.isFinite(x) ? String(x) : Math.abs(x) >= 1e-3 || x === 0 ? x.toFixed(4) : x.toExponential(2);

/** Steps/s with two significant digits below 10 (0.012, 1.5), one decimal above. */
const rate = (x: number): string => (x >= 10 ? x.toFixed(1) : x.toPrecision(2));

function eta(m: StepMetrics, first: number): string {
  const done = m.step - first;
  if (done <= 0) return '?';
  const s = ((m.totalSteps - m.step) * m.elapsedS) / done;
  return s >= 120 ? `${(s / 60).toFixed(1)} min` : `${s.toFixed(0)} s`;
}

/** `itc 1.2345 itm 0.6931 lm 4.5678` from the loss parts. */
function parts(m: StepMetrics): string {
  return Object.entries(m.parts)
    .filter(([k]) => k !== 'loss_lm' || Object.keys(m.parts).length > 1)
    .map(([k, v]) => `${k.replace(/^loss_/, '')} ${fmt(v)}`)
    .join(' ');
}

/**
 * Progress on a stream. On a terminal (or with `mode: 'bar'`) a cli-progress bar with the loss,
 * steps/s and ETA; elsewhere (CI logs, files, pipes) plain lines every `every` steps, since a bar
 * redrawn with carriage returns turns into noise there.
 */
export function progressReporter(options: ProgressOptions = {}): TrainReporter {
  const stream = options.stream ?? process.stderr;
  const mode = options.mode ?? 'auto';
  if (mode === 'off') return {};
  let first = 0;
  if (mode === 'bar' || (mode === 'auto' && stream.isTTY)) {
    const bar = new cliProgress.SingleBar(
      {
        stream,
        format: '{stage} |{bar}| {value}/{total} | loss {loss} | {sps} steps/s | lr {lr} | ETA {eta_s}',
        hideCursor: true,
        etaBuffer: 20,
        // cli-progress skips redraws of non-TTY streams unless told not to
        noTTYOutput: !stream.isTTY,
        notTTYSchedule: 1000,
      },
      cliProgress.Presets.shades_classic,
    );
    let active = false;
    return {
      start(info) {
        first = info.startStep;
        bar.start(info.totalSteps, info.startStep, {
          stage: info.stage,
          loss: '-',
          sps: '-',
          lr: '-',
          eta_s: '?',
        });
        active = true;
      },
      step(m) {
        bar.update(m.step, {
          loss: fmt(m.loss),
          sps: rate(m.stepsPerSec),
          lr: m.lr.toExponential(2),
          eta_s: eta(m, first),
        });
      },
      eval(m) {
        if (active) bar.stop();
        active = false;
        stream.write(
          `eval @${m.step}: ${Object.entries(m.metrics)
            .map(([k, v]) => `${k} ${fmt(v)}`)
            .join(' ')}\n`,
        );
      },
      end(s) {
        if (active) bar.stop();
        active = false;
        stream.write(
          `${s.stage}: ${s.step} steps, last loss ${fmt(s.lastLoss ?? Number.NaN)}, ${rate(s.stepsPerSec)} steps/s\n`,
        );
      },
    };
  }
  let every = options.every ?? 0;
  return {
    start(info) {
      first = info.startStep;
      every ||= Math.max(1, Math.round((info.totalSteps - info.startStep) / 20));
      stream.write(`${info.stage}: steps ${info.startStep + 1}..${info.totalSteps}\n`);
    },
    step(m) {
      if (m.step % every !== 0 && m.step !== m.totalSteps && m.step !== first + 1) return;
      const p = parts(m);
      stream.write(
        `${m.step}/${m.totalSteps} loss ${fmt(m.loss)}${p ? ` (${p})` : ''} lr ${m.lr.toExponential(2)} ${rate(m.stepsPerSec)} steps/s ETA ${eta(m, first)}\n`,
      );
    },
    eval(m) {
      stream.write(
        `eval @${m.step}: ${Object.entries(m.metrics)
          .map(([k, v]) => `${k} ${fmt(v)}`)
          .join(' ')}\n`,
      );
    },
    checkpoint(info) {
      stream.write(`checkpoint @${info.step}: ${info.dir}\n`);
    },
    end(s) {
      stream.write(
        `${s.stage}: ${s.step} steps, last loss ${fmt(s.lastLoss ?? Number.NaN)}, ${rate(s.stepsPerSec)} steps/s\n`,
      );
    },
  };
}
