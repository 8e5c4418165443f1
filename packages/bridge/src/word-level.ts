/**
 * Builds the `tokenizer.json` / `tokenizer_config.json` pair of a word-level tokenizer (HF tokenizers
 * `WordLevel` model, lowercase, split on whitespace and punctuation), for small closed vocabularies
 * such as the synthetic `shapes` captions. The files load in HF `PreTrainedTokenizerFast` and in
 * {@link TextTokenizer} alike.
 */

/** Special tokens of a word-level vocabulary; each must be in `vocab`. */
export interface WordLevelSpecials {
  readonly pad: string;
  readonly unk: string;
  /** Prepended to every text when special tokens are added (OPT-style BOS), if given. */
  readonly bos?: string;
  /** Appended to every text when special tokens are added (T5-style EOS), if given. */
  readonly eos?: string;
}

/** The two JSON files of a word-level tokenizer. */
export interface WordLevelFiles {
  readonly tokenizer: Record<string, unknown>;
  readonly config: Record<string, unknown>;
}

/**
 * `vocab` lists tokens in id order (id = index). Special tokens are registered as added tokens so
 * `decode(..., { skipSpecialTokens: true })` drops them.
 */
export function wordLevelTokenizerFiles(
  vocab: readonly string[],
  specials: WordLevelSpecials,
): WordLevelFiles {
  const ids = new Map(vocab.map((t, i) => [t, i]));
  if (ids.size !== vocab.length) throw new Error('wordLevelTokenizerFiles: vocab has duplicate tokens');
  const idOf = (t: string): number => {
    const id = ids.get(t);
    if (id === undefined) throw new Error(`wordLevelTokenizerFiles: special token "${t}" is not in vocab`);
    return id;
  };
  const special = [specials.pad, specials.unk, specials.bos, specials.eos].filter(
    (t, i, all): t is string => t !== undefined && all.indexOf(t) === i,
  );
  const single: unknown[] = [];
  const pair: unknown[] = [];
  if (specials.bos) {
    single.push({ SpecialToken: { id: specials.bos, type_id: 0 } });
    pair.push({ SpecialToken: { id: specials.bos, type_id: 0 } });
  }
  single.push({ Sequence: { id: 'A', type_id: 0 } });
  pair.push({ Sequence: { id: 'A', type_id: 0 } }, { Sequence: { id: 'B', type_id: 1 } });
  if (specials.eos) {
    single.push({ SpecialToken: { id: specials.eos, type_id: 0 } });
    pair.push({ SpecialToken: { id: specials.eos, type_id: 0 } });
  }
  const tokenizer = {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: special.map((t) => ({
      id: idOf(t),
      content: t,
      single_word: false,
      lstrip: false,
      rstrip: false,
      normalized: false,
      special: true,
    })),
    normalizer: { type: 'Lowercase' },
    pre_tokenizer: { type: 'BertPreTokenizer' },
    post_processor: {
      type: 'TemplateProcessing',
      single,
      pair,
      special_tokens: Object.fromEntries(
        [specials.bos, specials.eos]
          .filter((t): t is string => t !== undefined)
          .map((t) => [t, { id: t, ids: [idOf(t)], tokens: [t] }]),
      ),
    },
    decoder: { type: 'WordPiece', prefix: '##', cleanup: true },
    model: { type: 'WordLevel', vocab: Object.fromEntries(ids), unk_token: specials.unk },
  };
  const config: Record<string, unknown> = {
    tokenizer_class: 'PreTrainedTokenizerFast',
    pad_token: specials.pad,
    unk_token: specials.unk,
    padding_side: 'right',
    model_max_length: 512,
    clean_up_tokenization_spaces: false,
  };
  if (specials.bos) config['bos_token'] = specials.bos;
  if (specials.eos) config['eos_token'] = specials.eos;
  return { tokenizer, config };
}
