import { Tokenizer } from '@huggingface/tokenizers';
import { ConfigError, type HostTensor } from '@qf/io';

/**
 * Text tokenization for BLIP-2: the LM's tokenizer (OPT's GPT-2 BPE, T5's SentencePiece) and the
 * Q-Former's BERT WordPiece tokenizer (InstructBLIP's `qformer_tokenizer/`), read from the HF files
 * `tokenizer.json` (+ `tokenizer_config.json`) through `@huggingface/tokenizers`, and batched into
 * padded `input_ids` / `attention_mask` tensors the models take.
 */

/** Which side padding goes on. HF pads right by default; decoder-only batched generation pads left. */
export type PaddingSide = 'left' | 'right';

/** Options of {@link TextTokenizer.encodeBatch}. */
export interface EncodeBatchOptions {
  /** Add the tokenizer's special tokens (BOS for OPT, EOS for T5, [CLS]/[SEP] for BERT). Default true. */
  readonly addSpecialTokens?: boolean;
  /** Default: the tokenizer config's `padding_side`, else `right`. */
  readonly paddingSide?: PaddingSide;
  /** Cut every text to at most this many tokens (after special tokens are added). */
  readonly maxLength?: number;
  /** Pad to `maxLength` instead of the longest text. Default false. */
  readonly padToMaxLength?: boolean;
}

/** A padded batch: int64 [B, T] ids and mask (1 = token, 0 = padding). */
export interface TokenBatch {
  readonly input_ids: HostTensor<'I64'>;
  readonly attention_mask: HostTensor<'I64'>;
}

function tokenText(v: unknown): string | undefined {
  if (typeof v === 'string') return v;
  if (v && typeof v === 'object' && typeof (v as { content?: unknown }).content === 'string') {
    return (v as { content: string }).content;
  }
  return undefined;
}

/**
 * An HF tokenizer with the batching BLIP-2 needs.
 *
 * @example
 * ```ts
 * const tok = TextTokenizer.fromJson(tokenizerJson, tokenizerConfigJson);
 * const { input_ids, attention_mask } = tok.encodeBatch(['a photo of', 'Question: what is it? Answer:']);
 * tok.decode([2, 100, 200], { skipSpecialTokens: true });
 * ```
 */
export class TextTokenizer {
  /** Id used for padding (`pad_token` of the config, else the model's pad token). */
  readonly padId: number;
  /** The config's `padding_side` (default `right`). */
  readonly paddingSide: PaddingSide;
  /** The config's `model_max_length`, when it is a sane number. */
  readonly modelMaxLength: number | undefined;

  private constructor(
    private readonly tokenizer: Tokenizer,
    config: Record<string, unknown>,
  ) {
    const side = config['padding_side'];
    this.paddingSide = side === 'left' ? 'left' : 'right';
    const max = config['model_max_length'];
    this.modelMaxLength = typeof max === 'number' && max > 0 && max < 1e9 ? max : undefined;
    const padToken = tokenText(config['pad_token']);
    const pad = padToken !== undefined ? tokenizer.token_to_id(padToken) : undefined;
    this.padId = pad ?? 0;
  }

  /**
   * Builds a tokenizer from the parsed `tokenizer.json` and (optional) `tokenizer_config.json`.
   * @throws ConfigError naming `tokenizer.json` when the file is not a tokenizer the library reads.
   */
  static fromJson(tokenizerJson: unknown, tokenizerConfig: unknown = {}): TextTokenizer {
    if (!tokenizerJson || typeof tokenizerJson !== 'object' || !('model' in tokenizerJson)) {
      throw new ConfigError('tokenizer.json', 'expected an HF tokenizers JSON object with a "model" field');
    }
    const config =
      tokenizerConfig && typeof tokenizerConfig === 'object'
        ? (tokenizerConfig as Record<string, unknown>)
        : {};
    let tok: Tokenizer;
    try {
      tok = new Tokenizer(tokenizerJson, config);
    } catch (e) {
      throw new ConfigError('tokenizer.json', `could not build the tokenizer: ${(e as Error).message}`);
    }
    return new TextTokenizer(tok, config);
  }

  /** Token ids of one text. */
  encode(text: string, addSpecialTokens = true): number[] {
    return this.tokenizer.encode(text, { add_special_tokens: addSpecialTokens }).ids;
  }

  /** Tokenizes, truncates and pads a batch of texts. */
  encodeBatch(texts: readonly string[], options: EncodeBatchOptions = {}): TokenBatch {
    const add = options.addSpecialTokens ?? true;
    const side = options.paddingSide ?? this.paddingSide;
    const rows = texts.map((t) => {
      const ids = this.encode(t, add);
      return options.maxLength !== undefined ? ids.slice(0, options.maxLength) : ids;
    });
    const longest = Math.max(0, ...rows.map((r) => r.length));
    const width = options.padToMaxLength && options.maxLength !== undefined ? options.maxLength : longest;
    return padRows(rows, width, this.padId, side);
  }

  /** Text of a sequence of ids. */
  decode(ids: readonly number[], options: { skipSpecialTokens?: boolean } = {}): string {
    return this.tokenizer.decode([...ids], { skip_special_tokens: options.skipSpecialTokens ?? false });
  }

  /** The id of a token string, or undefined. */
  tokenToId(token: string): number | undefined {
    return this.tokenizer.token_to_id(token);
  }
}

/** Pads id rows to `width` on `side` with `padId`: int64 ids and mask [rows, width]. */
export function padRows(
  rows: readonly (readonly number[])[],
  width: number,
  padId: number,
  side: PaddingSide = 'right',
): TokenBatch {
  const ids = new BigInt64Array(rows.length * width).fill(BigInt(padId));
  const mask = new BigInt64Array(rows.length * width);
  rows.forEach((row, b) => {
    const offset = side === 'left' ? width - row.length : 0;
    row.forEach((id, i) => {
      ids[b * width + offset + i] = BigInt(id);
      mask[b * width + offset + i] = 1n;
    });
  });
  const shape = [rows.length, width];
  return {
    input_ids: { dtype: 'I64', shape, data: ids },
    attention_mask: { dtype: 'I64', shape, data: mask },
  };
}
