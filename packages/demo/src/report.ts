/** Progress of one phase: steps with the current loss. */
export interface PhaseReporter {
  readonly name: string;
  step(step: number, loss: number): void;
  /** Free-form status (evaluation progress). */
  note?(text: string): void;
  end(summary?: string): void;
}

/** Receives the progress of a demo run. */
export interface DemoReporter {
  /** A phase with `total` steps (training steps, or evaluation items) begins. */
  phase(name: string, total: number, unit: string): PhaseReporter;
  /** One line of information (sizes, figures). */
  info(line: string): void;
}

/** A reporter that discards everything. */
export const silentReporter: DemoReporter = {
  phase: (name) => ({ name, step: () => undefined, end: () => undefined }),
  info: () => undefined,
};
