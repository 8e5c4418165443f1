import { describe, expect, it } from 'vitest';
import {
  type HostTensor,
  ShardedCheckpoint,
  hostTensor,
  openCheckpointUrl,
  openSafetensors,
  planShards,
  serializeSafetensors,
} from '../src/node/index.js';
import { fakeServer, rejectsWithCode } from './helpers.js';

const TENSORS: Record<string, HostTensor> = {
  a: hostTensor('F32', [4], new Float32Array([1, 2, 3, 4])),
  b: hostTensor('F16', [2], new Uint16Array([0x3c00, 0x4000])),
  c: hostTensor('I64', [1], new BigInt64Array([9n])),
};
const enc = (v: unknown) => new TextEncoder().encode(JSON.stringify(v));
const CONFIG = { model_type: 'blip_2_qformer', hidden_size: 8, num_attention_heads: 2 };

describe('openCheckpointUrl (browser-style checkpoint directory over HTTP)', () => {
  it('opens config.json + model.safetensors with range reads', async () => {
    const server = fakeServer({
      'https://hub/m/config.json': enc(CONFIG),
      'https://hub/m/model.safetensors': serializeSafetensors(TENSORS),
    });
    const opened = await openCheckpointUrl('https://hub/m/', { fetch: server.fetch });
    expect(opened.config).toEqual(CONFIG);
    expect(opened.baseUrl).toBe('https://hub/m');
    expect((await opened.checkpoint.read('b', { float32: true })).data).toEqual(new Float32Array([1, 2]));
  });

  it('opens a sharded checkpoint through its index', async () => {
    const plan = planShards(TENSORS, 10);
    const files: Record<string, Uint8Array> = {
      'https://hub/s/config.json': enc(CONFIG),
      'https://hub/s/model.safetensors.index.json': enc(plan.index),
    };
    for (const f of plan.files) {
      files[`https://hub/s/${f.file}`] = serializeSafetensors(
        Object.fromEntries(f.names.map((n) => [n, TENSORS[n]!])),
      );
    }
    const opened = await openCheckpointUrl('https://hub/s', { fetch: fakeServer(files).fetch });
    expect(opened.checkpoint).toBeInstanceOf(ShardedCheckpoint);
    for (const n of Object.keys(TENSORS))
      expect((await opened.checkpoint.read(n)).data).toEqual(TENSORS[n]!.data);
  });

  it('reports missing pieces with typed errors', async () => {
    await rejectsWithCode(
      openCheckpointUrl('https://hub/x', { fetch: fakeServer({}).fetch }),
      'CHECKPOINT_NO_CONFIG',
    );
    const noWeights = fakeServer({ 'https://hub/x/config.json': enc(CONFIG) });
    await rejectsWithCode(
      openCheckpointUrl('https://hub/x', { fetch: noWeights.fetch }),
      'CHECKPOINT_NO_WEIGHTS',
    );
    const badConfig = fakeServer({ 'https://hub/x/config.json': new TextEncoder().encode('{nope') });
    await rejectsWithCode(
      openCheckpointUrl('https://hub/x', { fetch: badConfig.fetch }),
      'CHECKPOINT_BAD_CONFIG',
    );
    const missingShard = fakeServer({
      'https://hub/x/config.json': enc(CONFIG),
      'https://hub/x/model.safetensors.index.json': enc({ weight_map: { a: 'gone.safetensors' } }),
    });
    const e = await rejectsWithCode(
      openCheckpointUrl('https://hub/x', { fetch: missingShard.fetch }),
      'SOURCE_HTTP',
    );
    expect(e.message).toContain('gone.safetensors');
  });

  it('a missing local file is SOURCE_NOT_FOUND', async () => {
    await rejectsWithCode(openSafetensors('/nonexistent/dir/model.safetensors'), 'SOURCE_NOT_FOUND');
  });
});
