import { appendFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import type { TrainReporter } from '../trainer/types.js';

/** Options of {@link jsonlReporter}. */
export interface JsonlOptions {
  /** Keep existing lines (default true, so a resumed run continues its log); false truncates first. */
  readonly append?: boolean;
}

/**
 * A reporter writing one JSON object per line to `path`: `{"type":"start",...}`, one
 * `{"type":"step",...}` per step (the `StepMetrics`), `{"type":"eval",...}`, `{"type":"checkpoint",...}`
 * and `{"type":"end",...}`. Lines are appended synchronously, so a killed run's log ends at its last
 * completed step.
 */
export function jsonlReporter(path: string, options: JsonlOptions = {}): TrainReporter {
  mkdirSync(dirname(path), { recursive: true });
  if (options.append === false) writeFileSync(path, '');
  const write = (record: object) => appendFileSync(path, `${JSON.stringify(record)}\n`);
  return {
    start: (info) => write({ type: 'start', ...info, time: new Date().toISOString() }),
    step: (m) => write(m),
    eval: (m) => write(m),
    checkpoint: (info) => write({ type: 'checkpoint', ...info }),
    end: (summary) => write({ type: 'end', ...summary }),
  };
}
