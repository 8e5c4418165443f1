import { readFile, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  type HostTensor,
  atomicWriteFile,
  atomicWriteFileWith,
  hostTensor,
  openSafetensors,
  writeSafetensorsFile,
} from '../src/node/index.js';
import { rejectsWithCode, withTempDir } from './helpers.js';

describe('atomic writes', () => {
  it('writes bytes and text and leaves no temp file behind', async () => {
    await withTempDir(async (dir) => {
      await atomicWriteFile(join(dir, 'a.bin'), new Uint8Array([1, 2, 3]));
      await atomicWriteFile(join(dir, 'b.txt'), 'héllo');
      await atomicWriteFile(join(dir, 'b.txt'), 'replaced');
      expect(await readFile(join(dir, 'a.bin'))).toEqual(Buffer.from([1, 2, 3]));
      expect(await readFile(join(dir, 'b.txt'), 'utf8')).toBe('replaced');
      expect((await readdir(dir)).sort()).toEqual(['a.bin', 'b.txt']);
    });
  });

  it('a failure mid-write keeps the old content and removes the temp file', async () => {
    await withTempDir(async (dir) => {
      const target = join(dir, 'model.safetensors');
      await writeFile(target, 'old content');
      await expect(
        atomicWriteFileWith(target, async (h) => {
          await h.write(new Uint8Array(1000).fill(7));
          throw new Error('disk full (simulated)');
        }),
      ).rejects.toThrow('disk full');
      expect(await readFile(target, 'utf8')).toBe('old content');
      expect(await readdir(dir)).toEqual(['model.safetensors']);
    });
  });

  it('a tensor with a wrong data length never produces a (partial) target file', async () => {
    await withTempDir(async (dir) => {
      const target = join(dir, 'w.safetensors');
      const bad = {
        good: hostTensor('F32', [2], new Float32Array(2)),
        bad: { dtype: 'F32', shape: [3], data: new Float32Array(2) } as HostTensor,
      };
      const e = await rejectsWithCode(writeSafetensorsFile(target, bad), 'TENSOR_SHAPE');
      expect(e.message).toContain('"bad"');
      expect(await readdir(dir)).toEqual([]);
      await writeFile(target, 'previous');
      await rejectsWithCode(writeSafetensorsFile(target, bad), 'TENSOR_SHAPE');
      expect(await readFile(target, 'utf8')).toBe('previous');
      expect(await readdir(dir)).toEqual(['w.safetensors']);
    });
  });

  it('writeSafetensorsFile streams a readable file', async () => {
    await withTempDir(async (dir) => {
      const target = join(dir, 'ok.safetensors');
      await writeSafetensorsFile(
        target,
        { x: hostTensor('I32', [3], new Int32Array([1, -2, 3])) },
        { format: 'pt' },
      );
      const f = await openSafetensors(target);
      expect((await f.read('x')).data).toEqual(new Int32Array([1, -2, 3]));
      expect(f.metadata).toEqual({ format: 'pt' });
      await f.close();
      expect(await readdir(dir)).toEqual(['ok.safetensors']);
    });
  });
});
