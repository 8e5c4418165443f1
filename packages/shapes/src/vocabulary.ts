/**
 * Word-level vocabularies for the shapes captions. Two lists, as in BLIP-2 (a BERT tokenizer on the
 * Q-Former side, OPT's on the LM side); both end with the same caption words in the same order.
 *
 * - Q-Former: `[PAD] [UNK] [CLS] [SEP] [DEC]` then the words. `[PAD]` = 0 matches the Q-Former
 *   config's default `pad_token_id`; `[CLS] text [SEP]` is the BERT template; `[DEC]` replaces `[CLS]`
 *   for image-grounded generation (ITG), as LAVIS does with its added bos token.
 * - LM: `<s> <pad> </s> <unk>` then the words: the first four ids are OPT's (pad 1, bos = eos = 2,
 *   unk 3; the OPTConfig defaults), `<s>` is unused as in OPT. OPT prepends `</s>` as BOS and the
 *   captioning target ends with `</s>` as EOS.
 *
 * For `wordLevelTokenizerFiles` (@qf/bridge): Q-Former `{ pad: '[PAD]', unk: '[UNK]', bos: '[CLS]',
 * eos: '[SEP]' }`; LM `{ pad: '<pad>', unk: '<unk>', bos: '</s>' }`.
 */
import { COLOURS, SHAPES, SIZES } from './scene.js';

/** Every word the caption grammar can produce, in a fixed order (independent of seed and data). */
export const CAPTION_WORDS: readonly string[] = ['a', ...SIZES, ...COLOURS, ...SHAPES, 'left', 'of', 'above'];

export interface QFormerVocabulary {
  /** Tokens in id order (id = index). */
  readonly tokens: readonly string[];
  readonly pad: '[PAD]';
  readonly unk: '[UNK]';
  readonly cls: '[CLS]';
  readonly sep: '[SEP]';
  readonly dec: '[DEC]';
}

export interface LmVocabulary {
  /** Tokens in id order (id = index). */
  readonly tokens: readonly string[];
  readonly pad: '<pad>';
  readonly unk: '<unk>';
  readonly bos: '</s>';
  readonly eos: '</s>';
}

export interface ShapesVocabulary {
  /** The caption words alone. */
  readonly words: readonly string[];
  readonly qformer: QFormerVocabulary;
  readonly lm: LmVocabulary;
}

/** Both vocabularies in id order (fresh arrays on each call). */
export function shapesVocabulary(): ShapesVocabulary {
  return {
    words: [...CAPTION_WORDS],
    qformer: {
      tokens: ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[DEC]', ...CAPTION_WORDS],
      pad: '[PAD]',
      unk: '[UNK]',
      cls: '[CLS]',
      sep: '[SEP]',
      dec: '[DEC]',
    },
    lm: {
      tokens: ['<s>', '<pad>', '</s>', '<unk>', ...CAPTION_WORDS],
      pad: '<pad>',
      unk: '<unk>',
      bos: '</s>',
      eos: '</s>',
    },
  };
}
