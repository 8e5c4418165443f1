import type { DecodingSession } from '../lm/types.js';
import { beamSearch } from './beam.js';
import { greedySearch } from './greedy.js';
import type { GenerateOptions, GenerateResult } from './options.js';

export {
  type GenerateOptions,
  type GenerateResult,
  applyMinLength,
  eosList,
  maxSteps,
  stackScores,
} from './options.js';
export { argmaxRow, greedySearch } from './greedy.js';
export { beamSearch } from './beam.js';
export { type Blip2LengthArgs, blip2DecoderOnlyLengths, bosPrompt, withPrompt } from './prompt.js';

/**
 * Generates from a {@link DecodingSession} on the host: greedy search when `numBeams` is 1 (default),
 * beam search otherwise. Works for every LM and backend; the session is not disposed.
 */
export function generate(session: DecodingSession, options: GenerateOptions): Promise<GenerateResult> {
  return (options.numBeams ?? 1) > 1 ? beamSearch(session, options) : greedySearch(session, options);
}
