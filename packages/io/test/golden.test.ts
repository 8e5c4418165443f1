import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  type CheckpointDir,
  SafetensorsFile,
  detectCheckpointLayout,
  fromCanonicalName,
  openCheckpointDir,
  openSafetensors,
  parseModelConfig,
  toCanonicalName,
} from '../src/node/index.js';
import { GOLDEN_DIR, HAVE_GOLDEN } from './helpers.js';

interface RawEntry {
  dtype: string;
  shape: number[];
  data_offsets: [number, number];
}

/** Parses a safetensors header independently of the library (no validation). */
function rawHeader(path: string): {
  start: number;
  bytes: Buffer;
  entries: Record<string, RawEntry>;
  meta: unknown;
} {
  const bytes = readFileSync(path);
  const n = Number(bytes.readBigUInt64LE(0));
  const json = JSON.parse(bytes.subarray(8, 8 + n).toString('utf8')) as Record<string, unknown>;
  const { __metadata__: meta, ...entries } = json;
  return { start: 8 + n, bytes, entries: entries as Record<string, RawEntry>, meta };
}

const CASES = HAVE_GOLDEN
  ? readdirSync(GOLDEN_DIR, { withFileTypes: true })
      .filter((d) => d.isDirectory())
      .map((d) => d.name)
  : [];

const safetensorsFiles = CASES.flatMap((c) =>
  [
    ...readdirSync(join(GOLDEN_DIR, c)).map((f) => join(c, f)),
    ...readdirSync(join(GOLDEN_DIR, c, 'hf')).map((f) => join(c, 'hf', f)),
  ].filter((f) => f.endsWith('.safetensors')),
);

describe.skipIf(!HAVE_GOLDEN)('golden safetensors files', () => {
  it('finds the golden files', () => {
    expect(safetensorsFiles.length).toBeGreaterThanOrEqual(20);
  });

  for (const rel of safetensorsFiles) {
    it(`reads ${rel} and matches its header and bytes`, async () => {
      const path = join(GOLDEN_DIR, rel);
      const raw = rawHeader(path);
      const file = await openSafetensors(path);
      try {
        expect(new Set(file.names())).toEqual(new Set(Object.keys(raw.entries)));
        expect(file.metadata).toEqual(raw.meta ?? {});
        expect(file.dataStart).toBe(raw.start);
        for (const [name, e] of Object.entries(raw.entries)) {
          const info = file.info(name)!;
          expect(info.dtype).toBe(e.dtype);
          expect(info.shape).toEqual(e.shape);
          expect(info.dataOffsets).toEqual(e.data_offsets);
          const t = await file.read(name);
          const got = new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
          expect(
            Buffer.from(got).equals(
              raw.bytes.subarray(raw.start + e.data_offsets[0], raw.start + e.data_offsets[1]),
            ),
          ).toBe(true);
          if (e.dtype === 'F32') expect((await file.read(name, { float32: true })).data).toEqual(t.data);
        }
      } finally {
        await file.close();
      }
    });
  }

  it('every golden config parses (config.json, hf/config.json, blip2_config.json)', () => {
    let count = 0;
    for (const c of CASES) {
      for (const rel of ['config.json', 'hf/config.json', 'blip2_config.json']) {
        let text: string;
        try {
          text = readFileSync(join(GOLDEN_DIR, c, rel), 'utf8');
        } catch {
          continue;
        }
        const cfg = parseModelConfig(JSON.parse(text));
        expect(cfg.qformer.hiddenSize).toBe(64);
        count++;
      }
    }
    expect(count).toBe(11);
  });

  for (const c of CASES) {
    it(`opens ${c}/hf as a checkpoint directory, same tensors as weights.safetensors`, async () => {
      const opened: CheckpointDir = await openCheckpointDir(join(GOLDEN_DIR, c, 'hf'));
      const weights = await openSafetensors(join(GOLDEN_DIR, c, 'weights.safetensors'));
      try {
        const cfg = parseModelConfig(opened.config);
        expect(cfg.modelType === 'blip-2' || cfg.modelType === 'instructblip').toBe(true);
        expect(new Set(opened.checkpoint.names())).toEqual(new Set(weights.names()));
        const name = opened.checkpoint.names()[0]!;
        expect((await opened.checkpoint.read(name)).data).toEqual((await weights.read(name)).data);
        const layout = detectCheckpointLayout(opened.checkpoint.names());
        expect(layout).toBe(c === 'instructblip_tiny' ? 'hf-instructblip' : 'hf-blip2');
        for (const n of opened.checkpoint.names()) {
          const canonical = toCanonicalName(layout, n);
          expect(canonical, n).toBeDefined();
          expect(fromCanonicalName(layout, canonical!)).toBe(n);
        }
      } finally {
        await opened.checkpoint.close();
        await weights.close();
      }
    });
  }

  it('LAVIS map: weights_lavis.safetensors maps exactly onto weights.safetensors with identical bytes', async () => {
    const lavis = await openSafetensors(join(GOLDEN_DIR, 'stage1_losses', 'weights_lavis.safetensors'));
    const hf = await openSafetensors(join(GOLDEN_DIR, 'stage1_losses', 'weights.safetensors'));
    try {
      expect(detectCheckpointLayout(lavis.names())).toBe('lavis');
      expect(detectCheckpointLayout(hf.names())).toBe('hf-blip2');
      const mapped = new Map<string, string>();
      const dropped: string[] = [];
      for (const n of lavis.names()) {
        const c = toCanonicalName('lavis', n);
        if (c === undefined) dropped.push(n);
        else {
          expect(mapped.has(c), `${c} mapped twice`).toBe(false);
          mapped.set(c, n);
        }
      }
      expect(dropped).toEqual(['Qformer.bert.embeddings.position_ids']);
      expect(new Set(mapped.keys())).toEqual(new Set(hf.names()));
      for (const [canonical, lavisName] of mapped) {
        expect(fromCanonicalName('lavis', canonical)).toBe(lavisName);
        const a = await lavis.read(lavisName);
        const b = await hf.read(canonical);
        expect(a.dtype).toBe(b.dtype);
        expect(a.shape).toEqual(b.shape);
        expect(a.data).toEqual(b.data);
      }
    } finally {
      await lavis.close();
      await hf.close();
    }
  });

  it('opens golden bytes through the browser-safe Blob path too', async () => {
    const bytes = readFileSync(join(GOLDEN_DIR, 'public_small', 'weights.safetensors'));
    const file = await SafetensorsFile.open(new Blob([bytes]));
    expect(file.names().length).toBeGreaterThan(100);
    expect((await file.read('query_tokens')).shape).toEqual([1, 8, 64]);
  });
});
