/** What a benchmark script does with its command line: run with options, or exit with a code. */
export type BenchArgs<O> =
  | { readonly run: true; readonly options: O; readonly args: string[] }
  | { readonly run: false; readonly exitCode: number };

/**
 * The shared start of every benchmark script: drops pnpm's `--`, parses the arguments, prints the
 * usage on `--help` (exit 0) or after a parse error (exit 2).
 */
export function benchArgs<O extends { readonly help?: boolean }>(
  parse: (args: string[]) => O,
  usage: string,
): BenchArgs<O> {
  const args = process.argv.slice(2).filter((a) => a !== '--');
  let options: O;
  try {
    options = parse(args);
  } catch (e) {
    process.stderr.write(`${(e as Error).message}\n\n${usage}`);
    return { run: false, exitCode: 2 };
  }
  if (options.help) {
    process.stdout.write(usage);
    return { run: false, exitCode: 0 };
  }
  return { run: true, options, args };
}

/** Runs a benchmark script's `main`: its result is the exit code; a throw prints the stack, exit 1. */
export function runScript(main: () => Promise<number>): void {
  main().then(
    (code) => {
      process.exitCode = code;
    },
    (e: unknown) => {
      process.stderr.write(`${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
      process.exitCode = 1;
    },
  );
}
