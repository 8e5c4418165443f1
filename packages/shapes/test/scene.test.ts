import { describe, expect, it } from 'vitest';
import {
  CAPTION_WORDS,
  captionOf,
  OBJECT_COUNT,
  objectFromIndex,
  objectIndex,
  PAIR_COUNT,
  parseCaption,
  SCENE_COUNT,
  sceneFromId,
  sceneIdOf,
  shapesVocabulary,
} from '../src/index.js';

describe('captions', () => {
  it('follow the fixed grammar', () => {
    expect(captionOf({ objects: [{ shape: 'circle', colour: 'red', size: 'small' }] })).toBe(
      'a small red circle',
    );
    expect(
      captionOf({
        objects: [
          { shape: 'square', colour: 'blue', size: 'large' },
          { shape: 'triangle', colour: 'yellow', size: 'small' },
        ],
        relation: 'left of',
      }),
    ).toBe('a large blue square left of a small yellow triangle');
    expect(
      captionOf({
        objects: [
          { shape: 'cross', colour: 'white', size: 'small' },
          { shape: 'cross', colour: 'white', size: 'small' },
        ],
        relation: 'above',
      }),
    ).toBe('a small white cross above a small white cross');
  });

  it('ids, scenes and captions are in bijection over the whole description space', () => {
    expect(OBJECT_COUNT).toBe(48);
    expect(PAIR_COUNT).toBe(2 * 48 * 48);
    expect(SCENE_COUNT).toBe(4656);
    const captions = new Set<string>();
    for (let id = 0; id < SCENE_COUNT; id++) {
      const scene = sceneFromId(id);
      expect(sceneIdOf(scene)).toBe(id);
      const caption = captionOf(scene);
      expect(caption).toMatch(/^[a-z]+( [a-z]+)*$/);
      expect(parseCaption(caption)).toEqual(scene);
      captions.add(caption);
    }
    expect(captions.size).toBe(SCENE_COUNT);
    for (let k = 0; k < OBJECT_COUNT; k++) expect(objectIndex(objectFromIndex(k))).toBe(k);
  });

  it('parseCaption rejects anything outside the grammar and tolerates only whitespace and case', () => {
    expect(parseCaption('  A Small  red circle ')).toEqual({
      objects: [{ shape: 'circle', colour: 'red', size: 'small' }],
    });
    for (const bad of [
      '',
      'a small red circle.',
      'small red circle',
      'a red small circle',
      'a small red circle right of a small red circle',
      'a small red circle below a small red circle',
      'a small red circle left a small red circle',
      'a small red circle left of',
      'a small red circle above a small red circle above a small red circle',
      'a tiny red circle',
      'a small purple circle',
      'a small red hexagon',
    ]) {
      expect(parseCaption(bad), bad).toBeUndefined();
    }
  });

  it('rejects invalid ids', () => {
    expect(() => sceneFromId(-1)).toThrow(RangeError);
    expect(() => sceneFromId(SCENE_COUNT)).toThrow(RangeError);
    expect(() => sceneFromId(1.5)).toThrow(RangeError);
  });
});

describe('vocabulary', () => {
  it('covers every caption word exactly once, in a fixed order', () => {
    expect(CAPTION_WORDS).toEqual([
      'a',
      'small',
      'large',
      'red',
      'green',
      'blue',
      'yellow',
      'magenta',
      'white',
      'circle',
      'square',
      'triangle',
      'cross',
      'left',
      'of',
      'above',
    ]);
    const used = new Set<string>();
    for (let id = 0; id < SCENE_COUNT; id++)
      for (const w of captionOf(sceneFromId(id)).split(' ')) used.add(w);
    expect([...used].sort()).toEqual([...CAPTION_WORDS].sort());
  });

  it('gives the Q-Former and LM token lists in id order with their specials', () => {
    const v = shapesVocabulary();
    expect(v.qformer.tokens.slice(0, 5)).toEqual(['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[DEC]']);
    expect(v.lm.tokens.slice(0, 4)).toEqual(['<s>', '<pad>', '</s>', '<unk>']);
    expect(v.qformer.tokens.slice(5)).toEqual(v.words);
    expect(v.lm.tokens.slice(4)).toEqual(v.words);
    // OPT's ids: pad 1, bos = eos 2, unk 3; the Q-Former's pad is 0.
    expect(v.lm.tokens.indexOf(v.lm.pad)).toBe(1);
    expect(v.lm.tokens.indexOf(v.lm.bos)).toBe(2);
    expect(v.lm.tokens.indexOf(v.lm.eos)).toBe(2);
    expect(v.lm.tokens.indexOf(v.lm.unk)).toBe(3);
    expect(v.qformer.tokens.indexOf(v.qformer.pad)).toBe(0);
    for (const list of [v.qformer.tokens, v.lm.tokens]) expect(new Set(list).size).toBe(list.length);
    // Words survive a lowercase + whitespace/punctuation split unchanged.
    for (const w of v.words) expect(w).toMatch(/^[a-z]+$/);
    // Fresh arrays each call.
    expect(shapesVocabulary().words).not.toBe(v.words);
  });
});
