/**
 * Where the CLI writes. `main()` takes these so tests can run commands in-process and read what they
 * printed; the real `qf` binary uses the process streams.
 */
export interface CliStreams {
  /** Normal output (tables, summaries, JSON). */
  out(text: string): void;
  /** Diagnostics and errors. */
  err(text: string): void;
  /** Where progress bars draw; they draw only when this is a TTY. Undefined: no progress bars. */
  readonly progress?: NodeJS.WriteStream | undefined;
}

/** The process's stdout/stderr; progress bars go to stderr. */
export function processStreams(): CliStreams {
  return {
    out: (text) => void process.stdout.write(text),
    err: (text) => void process.stderr.write(text),
    progress: process.stderr,
  };
}

/** Streams that collect everything in memory (for tests and embedding); no progress bars. */
export function memoryStreams(): CliStreams & { readonly stdout: string; readonly stderr: string } {
  let stdout = '';
  let stderr = '';
  return {
    out: (text) => {
      stdout += text;
    },
    err: (text) => {
      stderr += text;
    },
    get stdout() {
      return stdout;
    },
    get stderr() {
      return stderr;
    },
  };
}
