import cliProgress from 'cli-progress';

/** A progress bar over `total` steps; draws only on a TTY (cli-progress stays silent elsewhere). */
export interface Progress {
  tick(): void;
  stop(): void;
}

/** A cli-progress bar on `stream`, or a no-op when there is no stream. */
export function progressBar(stream: NodeJS.WriteStream | undefined, label: string, total: number): Progress {
  if (stream === undefined) return { tick: () => undefined, stop: () => undefined };
  const bar = new cliProgress.SingleBar(
    {
      stream,
      format: `${label} |{bar}| {value}/{total} batches | {duration_formatted}`,
      hideCursor: true,
      clearOnComplete: false,
    },
    cliProgress.Presets.shades_classic,
  );
  bar.start(total, 0);
  return { tick: () => bar.increment(), stop: () => bar.stop() };
}
