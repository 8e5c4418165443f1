import type { Blip2Config, HostTensor } from '@qf/io';
import { blip2DecoderOnlyLengths } from '../generate/prompt.js';
import type { GenerateOptions } from '../generate/options.js';
import { OptLanguageModel } from '../opt/lm.js';
import { type Blip2LanguageModel, lmGenerationDefaults } from './config.js';
import { Blip2Error } from './errors.js';

/**
 * Options of `Blip2Model.generate`, with HF `generate` names and semantics (transformers 4.47). What
 * is not given comes from the LM's `text_config` as HF's LM `GenerationConfig` does (`num_beams`,
 * `length_penalty`, `early_stopping`; for an encoder-decoder LM also `max_length`, `min_length`).
 */
export interface Blip2GenerateOptions {
  /** HF `max_new_tokens`. Default: from `maxLength` as HF BLIP-2 computes it. */
  readonly maxNewTokens?: number | undefined;
  /**
   * HF `max_length` as passed to `generate`. Decoder-only: BLIP-2 adds Q - 1 and the LM then counts
   * the Q + T prompt positions (default 20, see `blip2DecoderOnlyLengths`); encoder-decoder: decoder
   * tokens including the start token (default `text_config.max_length`, else 20).
   */
  readonly maxLength?: number | undefined;
  /** HF `min_length` (EOS suppressed until reached; decoder-only: BLIP-2's adjustment applies). */
  readonly minLength?: number | undefined;
  /** HF `min_new_tokens`. */
  readonly minNewTokens?: number | undefined;
  /** 1: greedy; more: beam search. */
  readonly numBeams?: number | undefined;
  readonly lengthPenalty?: number | undefined;
  readonly earlyStopping?: boolean | 'never' | undefined;
  /** Beam search: hypotheses per input row (default 1). */
  readonly numReturnSequences?: number | undefined;
  /** Default: the LM's `eos_token_id` (all of them when it is a list). */
  readonly eosTokenId?: number | readonly number[] | undefined;
  /** Default: the LM's `pad_token_id`. */
  readonly padTokenId?: number | undefined;
}

/** What `Blip2Model.generate` returns. */
export interface Blip2GenerateResult {
  /**
   * int32 [B * numReturnSequences, P + N], HF's `generate` output: decoder-only, the prompt ids
   * (`input_ids`, or `[bos]` without a prompt; padding kept) then the new tokens; encoder-decoder,
   * `[decoder_start_token_id]` then the new tokens. Rows that finished early are padded.
   */
  readonly sequences: HostTensor<'I32'>;
  /** int32 [B * numReturnSequences, N]: the new tokens only. */
  readonly generated: HostTensor<'I32'>;
  /** P, the number of leading ids of `sequences` that are not new. */
  readonly promptLength: number;
  /** float32 [rows, N, V]: processed scores of every step (HF `output_scores`; beam search: one row per beam). */
  readonly scores: HostTensor<'F32'>;
  /** Beam search only: the length-normalised score of each returned sequence. */
  readonly sequenceScores?: HostTensor<'F32'> | undefined;
}

function positiveInt(name: string, v: number | undefined, min: number): void {
  if (v !== undefined && !(Number.isInteger(v) && v >= min))
    throw new Blip2Error('BLIP2_BAD_OPTION', `${name} must be an integer >= ${min}, got ${v}`);
}

/** The LM's EOS id(s): OPT keeps HF's list, T5 one id. */
export function lmEos(lm: Blip2LanguageModel): readonly number[] {
  if (lm instanceof OptLanguageModel) return lm.config.eosTokenIds;
  return lm.tokens.eos === undefined ? [] : [lm.tokens.eos];
}

/**
 * The options of the shared `generate` for one BLIP-2 call, reproducing HF's length bookkeeping:
 * decoder-only through `blip2DecoderOnlyLengths` (prompt of `promptLength` ids after Q soft-prompt
 * positions), encoder-decoder counting the decoder start token as HF does.
 * @throws Blip2Error `BLIP2_BAD_OPTION` for a non-integer or out-of-range count, or no room for a token
 */
export function blip2GenerateOptions(
  config: Blip2Config,
  lm: Blip2LanguageModel,
  promptLength: number,
  o: Blip2GenerateOptions,
): GenerateOptions {
  positiveInt('maxNewTokens', o.maxNewTokens, 1);
  positiveInt('maxLength', o.maxLength, 1);
  positiveInt('minLength', o.minLength, 0);
  positiveInt('minNewTokens', o.minNewTokens, 0);
  positiveInt('numBeams', o.numBeams, 1);
  positiveInt('numReturnSequences', o.numReturnSequences, 1);
  const d = lmGenerationDefaults(config);
  const numBeams = o.numBeams ?? d.numBeams;
  if ((o.numReturnSequences ?? 1) > numBeams)
    throw new Blip2Error(
      'BLIP2_BAD_OPTION',
      `numReturnSequences (${o.numReturnSequences}) must not exceed numBeams (${numBeams})`,
    );
  let lengths: Pick<GenerateOptions, 'maxNewTokens' | 'minLength' | 'minNewTokens' | 'promptLength'>;
  if (lm.kind === 'decoder-only') {
    lengths = blip2DecoderOnlyLengths({
      queryLength: config.numQueryTokens,
      promptLength,
      maxNewTokens: o.maxNewTokens,
      maxLength: o.maxLength,
      minNewTokens: o.minNewTokens,
      minLength: o.minLength,
    });
  } else {
    // HF encoder-decoder: lengths count decoder_input_ids, which start as [decoder_start].
    lengths = {
      maxNewTokens: o.maxNewTokens ?? (o.maxLength ?? d.maxLength) - 1,
      minLength: o.minNewTokens !== undefined ? o.minNewTokens + 1 : (o.minLength ?? d.minLength),
      minNewTokens: o.minNewTokens,
      promptLength: 1,
    };
  }
  if (!(lengths.maxNewTokens >= 1))
    throw new Blip2Error(
      'BLIP2_BAD_OPTION',
      `no room for new tokens (maxLength ${o.maxLength ?? 'default'}, prompt of ${promptLength} ids); pass maxNewTokens`,
    );
  return {
    ...lengths,
    numBeams,
    lengthPenalty: o.lengthPenalty ?? d.lengthPenalty,
    earlyStopping: o.earlyStopping ?? d.earlyStopping,
    numReturnSequences: o.numReturnSequences,
    eosTokenId: o.eosTokenId ?? lmEos(lm),
    padTokenId: o.padTokenId ?? lm.tokens.pad,
  };
}
