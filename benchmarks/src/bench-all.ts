/**
 * `pnpm run bench` / `bench:quick`: the Q-Former forward benchmark (`main.ts`, which gets every
 * option), then the caption benchmark (`caption-bench.ts`, which gets `--quick` and `--out` only),
 * each in its own process. Exit status: the first non-zero one.
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const args = process.argv.slice(2).filter((a) => a !== '--');
const script = (name: string) => fileURLToPath(new URL(`./${name}`, import.meta.url));
const run = (name: string, argv: readonly string[]): number => {
  const r = spawnSync(process.execPath, [...process.execArgv, script(name), ...argv], { stdio: 'inherit' });
  return r.status ?? 1;
};

const qformer = run('main.ts', args);
if (args.includes('--help') || args.includes('-h')) {
  process.stdout.write(
    '\nThen: the caption benchmark (pnpm run bench:caption -- --help), with --quick and --out.\n',
  );
  process.exitCode = qformer;
} else {
  const out = args.indexOf('--out');
  const captionArgs = [
    ...(args.includes('--quick') ? ['--quick'] : []),
    ...(out >= 0 && args[out + 1] !== undefined ? ['--out', args[out + 1] as string] : []),
  ];
  const caption = run('caption-bench.ts', captionArgs);
  process.exitCode = qformer !== 0 ? qformer : caption;
}
