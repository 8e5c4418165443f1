import { mkdir, readFile, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  type Checkpoint,
  type HostTensor,
  SafetensorsFile,
  ShardedCheckpoint,
  hostTensor,
  openCheckpointDir,
  openSafetensors,
  openShardedSafetensors,
  parseShardIndex,
  planShards,
  serializeSafetensors,
  writeCheckpointDir,
  writeSafetensorsFile,
} from '../src/node/index.js';
import { rejectsWithCode, throwsWithCode, withTempDir } from './helpers.js';

const TENSORS: Record<string, HostTensor> = {
  query_tokens: hostTensor(
    'F32',
    [1, 2, 4],
    Float32Array.from({ length: 8 }, (_, i) => i / 3),
  ),
  'qformer.layernorm.weight': hostTensor('F32', [4], new Float32Array([1, 2, 3, 4])),
  'qformer.layernorm.bias': hostTensor('BF16', [4], new Uint16Array([0x3f80, 0, 0xbf80, 0x4000])),
  'embeddings.word_embeddings.weight': hostTensor('F16', [3, 4], new Uint16Array(12).fill(0x3c00)),
  ids: hostTensor('I64', [2], new BigInt64Array([1n, 2n])),
};

async function readEverything(c: Checkpoint): Promise<Record<string, HostTensor>> {
  const out: Record<string, HostTensor> = {};
  for (const n of c.names()) out[n] = await c.read(n, { float32: true });
  return out;
}

/** Writes TENSORS as two shards + index into `dir`. */
async function writeTwoShards(dir: string, index?: unknown): Promise<void> {
  const names = Object.keys(TENSORS);
  const first = names.slice(0, 2);
  const second = names.slice(2);
  const pick = (ns: string[]) => Object.fromEntries(ns.map((n) => [n, TENSORS[n]!]));
  await writeSafetensorsFile(join(dir, 'model-00001-of-00002.safetensors'), pick(first));
  await writeSafetensorsFile(join(dir, 'model-00002-of-00002.safetensors'), pick(second));
  const weightMap = Object.fromEntries([
    ...first.map((n) => [n, 'model-00001-of-00002.safetensors']),
    ...second.map((n) => [n, 'model-00002-of-00002.safetensors']),
  ]);
  await writeFile(
    join(dir, 'model.safetensors.index.json'),
    JSON.stringify(index ?? { metadata: { total_size: 0 }, weight_map: weightMap }),
  );
}

describe('sharded checkpoints', () => {
  it('two shards + index read identically to the single file', async () => {
    await withTempDir(async (dir) => {
      await writeTwoShards(dir);
      await writeSafetensorsFile(join(dir, 'single.safetensors'), TENSORS);
      const sharded = await openShardedSafetensors(join(dir, 'model.safetensors.index.json'));
      const single = await openSafetensors(join(dir, 'single.safetensors'));
      expect(new Set(sharded.names())).toEqual(new Set(single.names()));
      for (const n of single.names()) {
        expect(sharded.info(n)?.shape).toEqual(single.info(n)?.shape);
        expect(sharded.info(n)?.dtype).toBe(single.info(n)?.dtype);
      }
      expect(await readEverything(sharded)).toEqual(await readEverything(single));
      expect(sharded.shardOf('ids')).toBe('model-00002-of-00002.safetensors');
      expect(sharded.info('nope')).toBeUndefined();
      await rejectsWithCode(sharded.read('nope'), 'TENSOR_MISSING');
      await sharded.close();
      await sharded.close();
      await single.close();
    });
  });

  it('works with an injected in-memory openShard (browser style) and opens each shard once', async () => {
    const files: Record<string, Uint8Array> = {
      'a.safetensors': serializeSafetensors({ x: TENSORS.ids! }),
      'b.safetensors': serializeSafetensors({ y: TENSORS['qformer.layernorm.weight']!, extra: TENSORS.ids! }),
    };
    const opened: string[] = [];
    const ckpt = await ShardedCheckpoint.open(
      { weight_map: { x: 'a.safetensors', y: 'b.safetensors' } },
      async (f) => {
        opened.push(f);
        return SafetensorsFile.open(files[f]!);
      },
    );
    expect(opened.sort()).toEqual(['a.safetensors', 'b.safetensors']);
    expect(ckpt.names()).toEqual(['x', 'y']); // `extra` is not in the index
    expect((await ckpt.read('y')).data).toEqual(new Float32Array([1, 2, 3, 4]));
  });

  it('index errors are typed', async () => {
    throwsWithCode(() => parseShardIndex('{nope'), 'SAFETENSORS_INDEX_BAD_JSON');
    throwsWithCode(() => parseShardIndex('[1]'), 'SAFETENSORS_INDEX_BAD_JSON');
    throwsWithCode(() => parseShardIndex({ metadata: {} }), 'SAFETENSORS_INDEX_NO_WEIGHT_MAP');
    throwsWithCode(() => parseShardIndex({ weight_map: ['a'] }), 'SAFETENSORS_INDEX_NO_WEIGHT_MAP');
    throwsWithCode(() => parseShardIndex({ weight_map: { a: 3 } }), 'SAFETENSORS_INDEX_BAD_ENTRY');
    const e = throwsWithCode(
      () => parseShardIndex({ weight_map: { a: '../../etc/passwd' } }),
      'SAFETENSORS_INDEX_BAD_ENTRY',
    );
    expect(e.message).toContain('weight_map.a');
    throwsWithCode(
      () => parseShardIndex({ weight_map: { a: '/abs.safetensors' } }),
      'SAFETENSORS_INDEX_BAD_ENTRY',
    );
    expect(parseShardIndex({ weight_map: { a: 'sub/x.safetensors' } }).shards).toEqual(['sub/x.safetensors']);

    await withTempDir(async (dir) => {
      const shard1 = 'model-00001-of-00002.safetensors';
      // a name listed in the index but absent from its shard
      await writeTwoShards(dir, { weight_map: { query_tokens: shard1, ghost: shard1 } });
      const err = await rejectsWithCode(
        openShardedSafetensors(join(dir, 'model.safetensors.index.json')),
        'SAFETENSORS_INDEX_TENSOR_MISSING',
      );
      expect(err.message).toContain('"ghost"');
      expect(err.message).toContain(shard1);
      // a shard missing
      await writeFile(
        join(dir, 'model.safetensors.index.json'),
        JSON.stringify({ weight_map: { a: 'gone.safetensors' } }),
      );
      const missing = await rejectsWithCode(
        openShardedSafetensors(join(dir, 'model.safetensors.index.json')),
        'SAFETENSORS_SHARD_MISSING',
      );
      expect(missing.message).toContain('gone.safetensors');
      // bad JSON on disk
      await writeFile(join(dir, 'model.safetensors.index.json'), '{"weight_map": ');
      await rejectsWithCode(
        openShardedSafetensors(join(dir, 'model.safetensors.index.json')),
        'SAFETENSORS_INDEX_BAD_JSON',
      );
      await rejectsWithCode(openShardedSafetensors(join(dir, 'absent.json')), 'SAFETENSORS_INDEX_UNREADABLE');
      // a corrupt shard reports its own safetensors error
      await writeFile(join(dir, 'bad.safetensors'), new Uint8Array(3));
      await writeFile(
        join(dir, 'model.safetensors.index.json'),
        JSON.stringify({ weight_map: { a: 'bad.safetensors' } }),
      );
      await rejectsWithCode(
        openShardedSafetensors(join(dir, 'model.safetensors.index.json')),
        'SAFETENSORS_TRUNCATED',
      );
    });
    // a generic openShard failure is wrapped, and shards already opened are closed
    let closed = 0;
    const good: Checkpoint = {
      names: () => ['x'],
      info: () => undefined,
      read: async () => TENSORS.ids!,
      close: async () => void closed++,
    };
    await rejectsWithCode(
      ShardedCheckpoint.open({ weight_map: { x: 'a', y: 'b' } }, async (f) => {
        if (f === 'b') throw new Error('boom');
        return good;
      }),
      'SAFETENSORS_SHARD_OPEN_FAILED',
    );
    expect(closed).toBe(1);
  });

  it('planShards splits by size and writes an HF index', () => {
    const plan = planShards(TENSORS, 40);
    expect(plan.files.length).toBeGreaterThan(1);
    expect(plan.files[0]!.file).toBe(
      `model-00001-of-${String(plan.files.length).padStart(5, '0')}.safetensors`,
    );
    expect(Object.keys(plan.index!.weight_map).sort()).toEqual(Object.keys(TENSORS).sort());
    expect(plan.index!.metadata.total_size).toBe(
      Object.values(TENSORS).reduce((s, t) => s + t.data.byteLength, 0),
    );
    const single = planShards(TENSORS);
    expect(single.files).toEqual([{ file: 'model.safetensors', names: Object.keys(TENSORS).sort() }]);
    expect(single.index).toBeUndefined();
  });
});

describe('checkpoint directories', () => {
  const config = { model_type: 'blip_2_qformer', hidden_size: 4, num_attention_heads: 2, vocab_size: 3 };

  it('writeCheckpointDir + openCheckpointDir round trip, single file and sharded', async () => {
    await withTempDir(async (dir) => {
      await writeCheckpointDir(dir, { config, tensors: TENSORS });
      expect((await readdir(dir)).sort()).toEqual(['config.json', 'model.safetensors']);
      const a = await openCheckpointDir(dir);
      expect(a.config).toEqual(config);
      expect(a.dir).toBe(dir);
      expect(a.checkpoint).toBeInstanceOf(SafetensorsFile);
      expect((a.checkpoint as SafetensorsFile).metadata).toEqual({ format: 'pt' });
      const single = await readEverything(a.checkpoint);
      await a.checkpoint.close();

      await writeCheckpointDir(dir, { config, tensors: TENSORS, maxShardBytes: 40 });
      const files = (await readdir(dir)).sort();
      expect(files).toContain('model.safetensors.index.json');
      expect(files).not.toContain('model.safetensors'); // stale single file removed
      const b = await openCheckpointDir(dir);
      expect(b.checkpoint).toBeInstanceOf(ShardedCheckpoint);
      expect(await readEverything(b.checkpoint)).toEqual(single);
      await b.checkpoint.close();
    });
  });

  it('reports a missing config, a bad config and missing weights', async () => {
    await withTempDir(async (dir) => {
      await rejectsWithCode(openCheckpointDir(dir), 'CHECKPOINT_NO_CONFIG');
      await writeFile(join(dir, 'config.json'), '{oops');
      await rejectsWithCode(openCheckpointDir(dir), 'CHECKPOINT_BAD_CONFIG');
      await writeFile(join(dir, 'config.json'), '{}');
      const e = await rejectsWithCode(openCheckpointDir(dir), 'CHECKPOINT_NO_WEIGHTS');
      expect(e.message).toContain(dir);
      await mkdir(join(dir, 'model.safetensors')); // a directory is not a weights file
      await rejectsWithCode(openCheckpointDir(dir), 'CHECKPOINT_NO_WEIGHTS');
    });
  });

  it('writeCheckpointDir validates every tensor before writing anything', async () => {
    await withTempDir(async (dir) => {
      const bad = {
        ...TENSORS,
        broken: { dtype: 'F32', shape: [5], data: new Float32Array(4) } as HostTensor,
      };
      await rejectsWithCode(
        writeCheckpointDir(join(dir, 'out'), { config, tensors: bad, maxShardBytes: 40 }),
        'TENSOR_SHAPE',
      );
      expect(await readdir(dir)).toEqual([]);
      await writeFile(join(dir, 'keep.txt'), 'x');
      expect(await readFile(join(dir, 'keep.txt'), 'utf8')).toBe('x');
    });
  });
});
