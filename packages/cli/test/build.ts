import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

/** Workspace packages the built `qf` imports at run time, in build order, then the CLI itself. */
const PACKAGES = ['io', 'core', 'bridge', 'backends', 'cli'] as const;

function mtimes(dir: string): number[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => statSync(join(e.parentPath, e.name)).mtimeMs);
}

/** True when `dist/` is missing or older than a file of `src/` or the package's build config. */
function isStale(pkgDir: string): boolean {
  const built = mtimes(join(pkgDir, 'dist'));
  if (built.length === 0) return true;
  const sources = [
    ...mtimes(join(pkgDir, 'src')),
    ...['package.json', 'tsup.config.ts']
      .filter((f) => existsSync(join(pkgDir, f)))
      .map((f) => statSync(join(pkgDir, f)).mtimeMs),
  ];
  return Math.max(...sources) > Math.min(...built);
}

/**
 * Builds (with each package's own `build` script) every package of the CLI's run-time closure whose
 * `dist/` is missing or stale, so the spawned binary runs the current sources. Returns what it built.
 */
export function buildCliIfStale(repoRoot: string): string[] {
  const stale = PACKAGES.filter((p) => isStale(join(repoRoot, 'packages', p)));
  for (const p of stale) {
    const r = spawnSync('pnpm', ['run', 'build'], {
      cwd: join(repoRoot, 'packages', p),
      encoding: 'utf8',
      timeout: 100_000,
    });
    if (r.status !== 0)
      throw new Error(`building packages/${p} failed (exit ${r.status}):\n${r.stdout}\n${r.stderr}`);
  }
  return stale;
}
