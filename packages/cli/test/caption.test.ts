import { copyFile, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { TextTokenizer, wordLevelTokenizerFiles } from '@qf/bridge';
import { loadBlip2FromDir } from '@qf/bridge/node';
import { createTfjsBackend } from '@qf/backends/tfjs';
import { type HostTensor, toInt32 } from '@qf/io';
import { writePng } from '@qf/shapes';
import { beforeAll, describe, expect, it } from 'vitest';
import { goldenDir, qf, readAll, requireDir, tempDir } from './helpers.js';

/**
 * `qf caption` end to end on the golden whole-model cases: a copy of `<case>/hf` plus a word-level
 * tokenizer over a synthetic vocabulary (the golden models have none) and PNGs of the golden
 * `image_uint8`. Without a prompt the captions are the tokenizer's decode of HF's
 * `generate_noprompt.sequences` (the preprocessing reproduces HF's pixel_values bit for bit).
 */
type Kind = 'opt' | 't5' | 'qformer';

/** Registers `content` (id `id`) as a special added token of a tokenizer.json. */
function addSpecial(tokenizer: Record<string, unknown>, id: number, content: string): void {
  const added = tokenizer['added_tokens'] as Record<string, unknown>[];
  added.push({
    id,
    content,
    single_word: false,
    lstrip: false,
    rstrip: false,
    normalized: false,
    special: true,
  });
}

/** Vocabulary of `size` words with the special ids of the golden configs. */
function tokenizerFiles(kind: Kind, size: number) {
  const vocab = Array.from({ length: size }, (_, i) => `w${i}`);
  const at: Record<Kind, [number, string][]> = {
    opt: [
      [0, '<unk>'],
      [1, '<pad>'],
      [2, '<s>'],
      [108, '</s>'],
    ],
    t5: [
      [0, '<pad>'],
      [1, '</s>'],
      [2, '<unk>'],
    ],
    qformer: [
      [0, '[PAD]'],
      [1, '[UNK]'],
      [2, '[CLS]'],
      [3, '[SEP]'],
    ],
  };
  for (const [i, t] of at[kind]) vocab[i] = t;
  const specials = {
    opt: { pad: '<pad>', unk: '<unk>', bos: '<s>' },
    t5: { pad: '<pad>', unk: '<unk>', eos: '</s>' },
    qformer: { pad: '[PAD]', unk: '[UNK]', bos: '[CLS]', eos: '[SEP]' },
  }[kind];
  const files = wordLevelTokenizerFiles(vocab, specials);
  // OPT's EOS (108 here) is a special token that the tokenizer does not append to prompts.
  if (kind === 'opt') addSpecial(files.tokenizer, 108, '</s>');
  return files;
}

async function writeTokenizer(dir: string, kind: Kind, size: number): Promise<TextTokenizer> {
  const files = tokenizerFiles(kind, size);
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'tokenizer.json'), JSON.stringify(files.tokenizer));
  await writeFile(join(dir, 'tokenizer_config.json'), JSON.stringify(files.config));
  return TextTokenizer.fromJson(files.tokenizer, files.config);
}

interface Fixture {
  readonly dir: string;
  readonly images: string[];
  readonly tokenizer: TextTokenizer;
  readonly expected: Record<string, HostTensor>;
}

/** A temp model directory for `name` (weights + config, optionally tokenizers) and its PNG images. */
async function fixture(name: string, withTokenizer = true): Promise<Fixture> {
  const src = requireDir(join(goldenDir, name));
  const root = await tempDir('qf-caption-');
  const dir = join(root, 'model');
  await mkdir(dir);
  for (const f of ['config.json', 'model.safetensors']) await copyFile(join(src, 'hf', f), join(dir, f));
  const kind = name === 'blip2_opt_tiny' ? 'opt' : 't5';
  const tokenizer = withTokenizer
    ? await writeTokenizer(dir, kind, 120)
    : TextTokenizer.fromJson(tokenizerFiles(kind, 120).tokenizer);
  if (withTokenizer && name.startsWith('instruct'))
    await writeTokenizer(join(dir, 'qformer_tokenizer'), 'qformer', 100);
  const inputs = await readAll(join(src, 'inputs.safetensors'));
  const raw = inputs['image_uint8'] as HostTensor;
  const [b, h, w, c] = raw.shape as [number, number, number, number];
  const images: string[] = [];
  for (let i = 0; i < b; i++) {
    const data = (raw.data as Uint8Array).slice(i * h * w * c, (i + 1) * h * w * c);
    const path = join(root, `image${i}.png`);
    await writeFile(path, writePng({ data, width: w, height: h, channels: c }));
    images.push(path);
  }
  return { dir, images, tokenizer, expected: await readAll(join(src, 'outputs.safetensors')) };
}

/** Row r of an int [B, N] tensor. */
function row(t: HostTensor, r: number): number[] {
  const n = t.shape[1] as number;
  return Array.from(toInt32(t, 'ids').subarray(r * n, (r + 1) * n));
}

for (const name of ['blip2_opt_tiny', 'blip2_t5_tiny'] as const) {
  describe(`qf caption on golden ${name}`, () => {
    let fx: Fixture;
    let want: string[];
    beforeAll(async () => {
      fx = await fixture(name);
      const seqs = fx.expected['generate_noprompt.sequences'] as HostTensor;
      want = [0, 1].map((r) => fx.tokenizer.decode(row(seqs, r), { skipSpecialTokens: true }).trim());
      expect(want, JSON.stringify(want)).toSatisfy((w: string[]) => w.every((c) => /^w\d+( w\d+)*$/.test(c))); // real words, not just specials
    });

    for (const backend of ['tfjs-cpu', 'onnx'] as const) {
      it(`prints the decode of HF's generate_noprompt.sequences, one line per image (${backend})`, async () => {
        const r = await qf('caption', fx.dir, ...fx.images, '--max-new-tokens', '5', '--backend', backend);
        expect(r.code, r.stderr).toBe(0);
        expect(r.stdout).toBe(want.map((c) => `${c}\n`).join(''));
        expect(r.stderr).toMatch(/captioned 2 image\(s\) \((tfjs-cpu|onnx, 2 threads): load/);
      });
    }

    it('--json gives {image, caption, ids} with the ids of HF generate', async () => {
      const r = await qf('caption', fx.dir, ...fx.images, '--max-new-tokens', '5', '--json');
      expect(r.code, r.stderr).toBe(0);
      const got = JSON.parse(r.stdout) as { image: string; caption: string; ids: number[] }[];
      const seqs = fx.expected['generate_noprompt.sequences'] as HostTensor;
      expect(got.map((e) => e.image)).toEqual(fx.images);
      expect(got.map((e) => e.caption)).toEqual(want);
      expect(got.map((e) => e.ids)).toEqual([row(seqs, 0), row(seqs, 1)]);
    });

    it('--prompt and --beams give what the library API gives', async () => {
      const args = ['--prompt', 'w30 w31 w32', '--beams', '2', '--max-new-tokens', '4'];
      const r = await qf('caption', fx.dir, ...fx.images, ...args);
      expect(r.code, r.stderr).toBe(0);
      const { decodeImageFile } = await import('@qf/io/node');
      const images = await Promise.all(fx.images.map((p) => decodeImageFile(p)));
      const loaded = await loadBlip2FromDir(await createTfjsBackend('cpu'), fx.dir);
      try {
        const direct = await loaded.model.caption(images, {
          tokenizer: loaded.tokenizer,
          prompt: 'w30 w31 w32',
          numBeams: 2,
          maxNewTokens: 4,
        });
        expect(r.stdout).toBe(direct.map((c) => `${c}\n`).join(''));
      } finally {
        loaded.model.dispose();
      }
    });
  });
}

describe('qf caption on golden instructblip_tiny', () => {
  it('needs --prompt (the instruction) and then captions through both tokenizers', async () => {
    const fx = await fixture('instructblip_tiny');
    const missing = await qf('caption', fx.dir, ...fx.images);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/error \[BLIP2_INSTRUCTION_MISSING\]: .*prompt/);
    const r = await qf('caption', fx.dir, ...fx.images, '--prompt', 'w5 w6 w7', '--max-new-tokens', '5');
    expect(r.code, r.stderr).toBe(0);
    const { decodeImageFile } = await import('@qf/io/node');
    const images = await Promise.all(fx.images.map((p) => decodeImageFile(p)));
    const loaded = await loadBlip2FromDir(await createTfjsBackend('cpu'), fx.dir);
    try {
      expect(loaded.qformerTokenizer).toBeDefined();
      const direct = await loaded.model.caption(images, { ...loaded, prompt: 'w5 w6 w7', maxNewTokens: 5 });
      expect(r.stdout).toBe(direct.map((c) => `${c}\n`).join(''));
    } finally {
      loaded.model.dispose();
    }
  });
});

describe('qf caption errors', () => {
  it('names a missing tokenizer, an unreadable image and a Q-Former-only directory', async () => {
    const bare = await fixture('blip2_opt_tiny', false);
    const noTok = await qf('caption', bare.dir, ...bare.images);
    expect(noTok.code).toBe(1);
    expect(noTok.stdout).toBe('');
    expect(noTok.stderr).toMatch(
      /^error \[BLIP2_TOKENIZER_MISSING\]: .*tokenizer\.json: the language model's tokenizer is missing/,
    );

    const fx = await fixture('blip2_opt_tiny');
    const notImage = join(fx.dir, 'config.json');
    const bad = await qf('caption', fx.dir, fx.images[0] as string, notImage);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/^error \[IMAGE_DECODE_FAILED\]: .*config\.json: cannot decode/);
    const gone = await qf('caption', fx.dir, join(fx.dir, 'nope.png'));
    expect(gone.stderr).toMatch(/^error \[SOURCE_NOT_FOUND\]: .*nope\.png/);

    const qformerOnly = await qf('caption', join(goldenDir, 'public_small', 'hf'), ...fx.images);
    expect(qformerOnly.code).toBe(1);
    expect(qformerOnly.stderr).toMatch(/^error \[BLIP2_NOT_A_FULL_MODEL\]: .*no vision_model\.\*/);

    const threads = await qf('caption', fx.dir, ...fx.images, '--threads', '2');
    expect(threads.stderr).toMatch(/^error \[CLI_BAD_OPTION\]: --threads applies to --backend onnx only/);
    const noImages = await qf('caption', fx.dir);
    expect(noImages.code).not.toBe(0);
    expect(noImages.stderr).toMatch(/missing required argument 'image'/);
  });

  it('is listed in qf --help and documents its options', async () => {
    const top = await qf('--help');
    expect(top.stdout).toMatch(/^ {2}caption /m);
    const r = await qf('caption', '--help');
    expect(r.code).toBe(0);
    for (const w of [
      'Usage: qf caption',
      '--prompt',
      '--backend',
      '--threads',
      '--beams',
      '--max-new-tokens',
      '--json',
      'Examples:',
      '$ qf caption',
    ])
      expect(r.stdout).toContain(w);
  });
});
