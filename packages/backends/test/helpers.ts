export {
  expectClose,
  goldenDir,
  hfRandomDir,
  lengthsMask,
  maxAbsDiff,
  readAll,
  repoRoot,
  requireDir,
} from '../../../test-utils/parity.js';
