import { describe, expect, it } from 'vitest';
import { ConfigError } from '@qf/io';
import { TextTokenizer, padRows } from '../src/tokenizer.js';
import { wordLevelTokenizerFiles } from '../src/word-level.js';

const VOCAB = ['<pad>', '<unk>', '</s>', 'a', 'small', 'red', 'circle', 'left', 'of', 'blue', 'square', '.'];
const ID = (t: string) => VOCAB.indexOf(t);

function opt(): TextTokenizer {
  const f = wordLevelTokenizerFiles(VOCAB, { pad: '<pad>', unk: '<unk>', bos: '</s>' });
  return TextTokenizer.fromJson(f.tokenizer, f.config);
}

describe('TextTokenizer', () => {
  it('encodes words to ids, with BOS, lowercasing and unknown words', () => {
    const tok = opt();
    expect(tok.encode('A small RED circle.')).toEqual([
      ID('</s>'),
      ID('a'),
      ID('small'),
      ID('red'),
      ID('circle'),
      ID('.'),
    ]);
    expect(tok.encode('a green circle', false)).toEqual([ID('a'), ID('<unk>'), ID('circle')]);
  });

  it('pads a batch on either side with the pad id and a matching mask', () => {
    const tok = opt();
    const right = tok.encodeBatch(['a circle', 'a small blue square']);
    expect(right.input_ids.shape).toEqual([2, 5]);
    expect([...right.input_ids.data].map(Number)).toEqual([
      ID('</s>'),
      ID('a'),
      ID('circle'),
      ID('<pad>'),
      ID('<pad>'),
      ID('</s>'),
      ID('a'),
      ID('small'),
      ID('blue'),
      ID('square'),
    ]);
    expect([...right.attention_mask.data].map(Number)).toEqual([1, 1, 1, 0, 0, 1, 1, 1, 1, 1]);
    const left = tok.encodeBatch(['a circle', 'a small blue square'], { paddingSide: 'left' });
    expect([...left.input_ids.data].slice(0, 5).map(Number)).toEqual([
      ID('<pad>'),
      ID('<pad>'),
      ID('</s>'),
      ID('a'),
      ID('circle'),
    ]);
    expect([...left.attention_mask.data].slice(0, 5).map(Number)).toEqual([0, 0, 1, 1, 1]);
  });

  it('truncates and pads to maxLength', () => {
    const b = opt().encodeBatch(['a small red circle left of a blue square'], {
      maxLength: 4,
      padToMaxLength: true,
    });
    expect(b.input_ids.shape).toEqual([1, 4]);
    const c = opt().encodeBatch(['a'], { maxLength: 4, padToMaxLength: true });
    expect([...c.attention_mask.data].map(Number)).toEqual([1, 1, 0, 0]);
  });

  it('decodes, optionally dropping special tokens', () => {
    const tok = opt();
    const ids = tok.encode('a red square');
    expect(tok.decode(ids, { skipSpecialTokens: true })).toBe('a red square');
    expect(tok.decode(ids)).toContain('</s>');
  });

  it('appends EOS for T5-style vocabularies', () => {
    const f = wordLevelTokenizerFiles(VOCAB, { pad: '<pad>', unk: '<unk>', eos: '</s>' });
    const tok = TextTokenizer.fromJson(f.tokenizer, f.config);
    expect(tok.encode('a circle')).toEqual([ID('a'), ID('circle'), ID('</s>')]);
    expect(tok.padId).toBe(ID('<pad>'));
  });

  it('rejects something that is not a tokenizer.json with a ConfigError', () => {
    expect(() => TextTokenizer.fromJson({ hello: 1 })).toThrow(ConfigError);
    expect(() => TextTokenizer.fromJson(null)).toThrow(/tokenizer\.json/);
  });

  it('padRows handles an empty text', () => {
    const b = padRows([[], [5, 6]], 2, 0, 'right');
    expect([...b.attention_mask.data].map(Number)).toEqual([0, 0, 1, 1]);
  });
});
