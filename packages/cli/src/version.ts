import pkg from '../package.json';

/** The version of `@qf/cli` (what `qf --version` prints). */
export const VERSION: string = pkg.version;
