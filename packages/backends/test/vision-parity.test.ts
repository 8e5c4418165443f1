import { join } from 'node:path';
import {
  type Backend,
  type RawImage,
  VisionModel,
  initParams,
  loadVisionTensors,
  preprocessImage,
  preprocessImages,
  visionParamSpecs,
} from '@qf/core';
import {
  type Checkpoint,
  type HostTensor,
  SafetensorsFile,
  TensorError,
  type VisionConfig,
  isBlip2Config,
  parseModelConfig,
  serializeSafetensors,
} from '@qf/io';
import { openCheckpointDir } from '@qf/io/node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectClose, goldenDir, readAll, requireDir } from './helpers.js';
import { ALL_SETUPS } from './setups.js';

/** Golden cases with a vision tower (HF Blip2VisionModel / InstructBlipVisionModel outputs). */
const CASES = ['blip2_opt_tiny', 'blip2_t5_tiny', 'instructblip_tiny'] as const;

interface GoldenCase {
  readonly vision: VisionConfig;
  readonly checkpoint: Checkpoint;
  readonly inputs: Record<string, HostTensor>;
  readonly expected: Record<string, HostTensor>;
}

async function openCase(name: string): Promise<GoldenCase> {
  const dir = requireDir(join(goldenDir, name));
  const { config, checkpoint } = await openCheckpointDir(join(dir, 'hf'));
  const parsed = parseModelConfig(config);
  if (!isBlip2Config(parsed)) throw new Error(`${name}: expected a blip-2 / instructblip config`);
  return {
    vision: parsed.vision,
    checkpoint,
    inputs: await readAll(join(dir, 'inputs.safetensors')),
    expected: await readAll(join(dir, 'outputs.safetensors')),
  };
}

function checkAgainstGolden(name: string, out: Record<string, HostTensor>, g: GoldenCase): void {
  for (let i = 0; i <= g.vision.numHiddenLayers; i++) {
    expectClose(
      `${name} vision.hidden_states.${i}`,
      out[`vision_hidden_states.${i}`],
      g.expected[`vision.hidden_states.${i}`],
    );
  }
  expectClose(
    `${name} vision.last_hidden_state`,
    out['vision_output'],
    g.expected['vision.last_hidden_state'],
  );
  expectClose(
    `${name} vision.pooler_output`,
    out['vision_pooler_output'],
    g.expected['vision.pooler_output'],
  );
}

const cases = new Map<string, GoldenCase>();
beforeAll(async () => {
  for (const name of CASES) cases.set(name, await openCase(name));
});
afterAll(async () => {
  for (const g of cases.values()) await g.checkpoint.close();
});
const golden = (name: string): GoldenCase => {
  const g = cases.get(name);
  if (!g) throw new Error(`${name} was not opened`);
  return g;
};

for (const setup of ALL_SETUPS) {
  describe(`vision tower golden parity on ${setup.name}`, () => {
    let backend: Backend<unknown>;
    beforeAll(async () => {
      backend = await setup.create();
    });
    afterAll(async () => {
      if (backend) await setup.release(backend);
    });

    for (const name of CASES) {
      it(`${name}: hidden states, last_hidden_state and pooler_output match HF`, async () => {
        const g = golden(name);
        const model = await VisionModel.load(backend, g.checkpoint, g.vision);
        try {
          expect(model.ignored.filter((n) => n.startsWith('vision_model.'))).toEqual([]);
          const out = await model.run(g.inputs['pixel_values']!, { hiddenStates: true });
          checkAgainstGolden(name, out, g);
          const plain = await model.run(g.inputs['pixel_values']!);
          expect(Object.keys(plain).sort()).toEqual(['vision_output', 'vision_pooler_output']);
          expectClose(
            `${name} vision_output without hidden states`,
            plain['vision_output'],
            g.expected['vision.last_hidden_state'],
          );
        } finally {
          model.dispose();
        }
      });
    }

    it(`keeps ${setup.kind === 'tfjs' ? 'tf.memory().numTensors' : 'the session count'} flat over repeated runs`, async () => {
      const g = golden('blip2_opt_tiny');
      const before = setup.liveResources(backend);
      const model = await VisionModel.load(backend, g.checkpoint, g.vision);
      const px = g.inputs['pixel_values']!;
      await model.run(px);
      await model.run(px, { hiddenStates: true });
      const warm = setup.liveResources(backend);
      for (let i = 0; i < 4; i++) {
        await model.run(px);
        await model.run(px, { hiddenStates: true });
      }
      expect(setup.liveResources(backend)).toBe(warm);
      model.dispose();
      if (setup.kind === 'tfjs') expect(setup.liveResources(backend)).toBe(before);
    });
  });
}

describe('vision tower inputs and loading', () => {
  const setup = ALL_SETUPS[0]!;
  let backend: Backend<unknown>;
  let model: VisionModel<unknown>;
  beforeAll(async () => {
    backend = await setup.create();
    const g = golden('blip2_opt_tiny');
    model = await VisionModel.load(backend, g.checkpoint, g.vision);
  });
  afterAll(async () => {
    model?.dispose();
    if (backend) await setup.release(backend);
  });

  const rejects = async (px: HostTensor, code: string, text: RegExp) => {
    const err = await model.run(px).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(TensorError);
    expect((err as TensorError).code).toBe(code);
    expect((err as TensorError).tensor).toBe('pixel_values');
    expect((err as Error).message).toMatch(text);
  };

  it('rejects a wrong shape, dtype or non-finite value naming pixel_values', async () => {
    const f32 = (shape: number[]) =>
      ({ dtype: 'F32', shape, data: new Float32Array(shape.reduce((a, b) => a * b, 1)) }) as HostTensor;
    await rejects(f32([1, 3, 31, 32]), 'TENSOR_SHAPE', /expected \[B, 3, 32, 32\], got \[1, 3, 31, 32\]/);
    await rejects(f32([3, 32, 32]), 'TENSOR_SHAPE', /got \[3, 32, 32\]/);
    await rejects(f32([1, 4, 32, 32]), 'TENSOR_SHAPE', /got \[1, 4, 32, 32\]/);
    await rejects(
      { dtype: 'I32', shape: [1, 3, 32, 32], data: new Int32Array(3 * 32 * 32) },
      'TENSOR_DTYPE',
      /got I32/,
    );
    for (const bad of [Number.NaN, Number.POSITIVE_INFINITY]) {
      const px = f32([2, 3, 32, 32]);
      (px.data as Float32Array)[3 * 32 * 32 + 2 * 32 * 32 + 5 * 32 + 7] = bad;
      await rejects(px, 'TENSOR_VALUE', /at \[1, 2, 5, 7\]/);
    }
  });

  it('names a missing or surplus vision tensor', async () => {
    const g = golden('blip2_opt_tiny');
    const deeper = { ...g.vision, numHiddenLayers: 3 };
    await expect(loadVisionTensors(g.checkpoint, deeper)).rejects.toThrow(
      /vision_model\.encoder\.layers\.2\.layer_norm1\.weight.*not found/,
    );
    const shallower = { ...g.vision, numHiddenLayers: 1 };
    const loose = await loadVisionTensors(g.checkpoint, shallower);
    expect(loose.ignored).toContain('vision_model.encoder.layers.1.mlp.fc1.weight');
    await expect(loadVisionTensors(g.checkpoint, shallower, { strict: true })).rejects.toMatchObject({
      code: 'TENSOR_UNEXPECTED',
    });
    const wider = { ...g.vision, intermediateSize: g.vision.intermediateSize + 1 };
    await expect(loadVisionTensors(g.checkpoint, wider)).rejects.toThrow(
      /layers\.0\.mlp\.fc1\.weight.*expected \[97, 48\], got \[96, 48\]/,
    );
  });

  it('reads separate q_bias / v_bias (older HF names) as the fused [q, 0, v] bias', async () => {
    const g = golden('blip2_opt_tiny');
    const d = g.vision.hiddenSize;
    const tensors: Record<string, HostTensor> = {};
    for (const name of g.checkpoint.names().filter((n) => n.startsWith('vision_model.'))) {
      const t = await g.checkpoint.read(name);
      const m = /^(.*\.self_attn\.)qkv\.bias$/.exec(name);
      if (!m) tensors[name] = t;
      else {
        const data = t.data as Float32Array;
        tensors[`${m[1]}q_bias`] = { dtype: 'F32', shape: [d], data: data.slice(0, d) };
        tensors[`${m[1]}v_bias`] = { dtype: 'F32', shape: [d], data: data.slice(2 * d) };
      }
    }
    const split = await SafetensorsFile.open(serializeSafetensors(tensors));
    const old = await VisionModel.load(backend, split, g.vision, { strict: true });
    try {
      // The golden K bias is not zero, but it only shifts each attention row by a constant.
      checkAgainstGolden(
        'q_bias/v_bias',
        await old.run(g.inputs['pixel_values']!, { hiddenStates: true }),
        g,
      );
    } finally {
      old.dispose();
    }
  });
});

describe('vision tower with image_size not a multiple of patch_size', () => {
  it('drops the pixels past the last whole patch, as the strided conv does', async () => {
    const backend = await ALL_SETUPS[0]!.create();
    const base = golden('blip2_opt_tiny').vision; // 32 px, patch 8 -> 4 x 4 patches
    const odd = { ...base, imageSize: 36 }; // still 4 x 4 patches; 4 pixels left over per side
    const tensors = initParams(visionParamSpecs(odd), { seed: 3, scheme: 'stress' });
    expect(visionParamSpecs(odd)).toEqual(visionParamSpecs(base));
    const big = new Float32Array(2 * 3 * 36 * 36).map((_, i) => Math.sin(i * 0.37));
    const crop = new Float32Array(2 * 3 * 32 * 32);
    for (let bc = 0; bc < 6; bc++)
      for (let y = 0; y < 32; y++)
        for (let x = 0; x < 32; x++) crop[(bc * 32 + y) * 32 + x] = big[(bc * 36 + y) * 36 + x]!;
    const a = VisionModel.fromTensors(backend, odd, tensors);
    const b = VisionModel.fromTensors(backend, base, tensors);
    try {
      const outA = await a.run({ dtype: 'F32', shape: [2, 3, 36, 36], data: big });
      const outB = await b.run({ dtype: 'F32', shape: [2, 3, 32, 32], data: crop });
      expect(outA['vision_output'].shape).toEqual([2, 17, 48]);
      expectClose('cropped vision_output', outA['vision_output'], outB['vision_output'], 1e-6);
    } finally {
      a.dispose();
      b.dispose();
      await ALL_SETUPS[0]!.release(backend);
    }
  });
});

describe('preprocessImage on the golden image_uint8', () => {
  for (const name of CASES) {
    it(`${name}: reproduces BlipImageProcessor's pixel_values`, () => {
      const g = golden(name);
      const raw = g.inputs['image_uint8']!;
      expect(raw.dtype).toBe('U8');
      const [b, h, w, c] = raw.shape as [number, number, number, number];
      const images: RawImage[] = [];
      for (let i = 0; i < b; i++) {
        const data = (raw.data as Uint8Array).subarray(i * h * w * c, (i + 1) * h * w * c);
        images.push({ data, width: w, height: h, channels: c });
      }
      const expected = g.inputs['pixel_values']!;
      // The golden run used do_resize=False; a resize to the same size is a copy in PIL too.
      expectClose(
        `${name} pixel_values (do_resize false)`,
        preprocessImages(images, { imageSize: g.vision.imageSize, doResize: false }),
        expected,
        1e-6,
      );
      expectClose(
        `${name} pixel_values (resize to ${g.vision.imageSize})`,
        preprocessImages(images, { imageSize: g.vision.imageSize }),
        expected,
        1e-6,
      );
      const one = preprocessImage(images[1]!, { imageSize: g.vision.imageSize });
      expect(one.shape).toEqual([3, h, w]);
      const plane = 3 * h * w;
      expectClose(
        `${name} image 1`,
        one,
        { dtype: 'F32', shape: [3, h, w], data: (expected.data as Float32Array).slice(plane, 2 * plane) },
        1e-6,
      );
    });
  }
});
