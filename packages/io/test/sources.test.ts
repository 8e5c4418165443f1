import { describe, expect, it } from 'vitest';
import {
  type FetchLike,
  SafetensorsFile,
  blobSource,
  bufferSource,
  hostTensor,
  serializeSafetensors,
  urlSource,
} from '../src/index.js';
import { fakeServer, rejectsWithCode, response } from './helpers.js';

const BYTES = Uint8Array.from({ length: 1000 }, (_, i) => (i * 31 + 7) & 0xff);

describe('byte sources', () => {
  const ranges: [number, number][] = [
    [0, 8],
    [3, 17],
    [999, 1],
    [500, 0],
    [0, 1000],
  ];

  it('Blob and fake-fetch range sources read the same bytes as the buffer source', async () => {
    const buf = bufferSource(BYTES);
    const blob = blobSource(new Blob([BYTES]));
    const server = fakeServer({ 'https://x/f.bin': BYTES });
    const url = await urlSource('https://x/f.bin', { fetch: server.fetch });
    expect(blob.size).toBe(1000);
    expect(url.size).toBe(1000);
    for (const [o, l] of ranges) {
      const expected = await buf.read(o, l);
      expect(expected).toEqual(BYTES.subarray(o, o + l));
      expect(await blob.read(o, l)).toEqual(expected);
      expect(await url.read(o, l)).toEqual(expected);
    }
    expect(server.log).toContain('GET https://x/f.bin bytes=3-19');
    expect(server.log.filter((l) => l.includes('bytes=500'))).toEqual([]); // zero-length reads do not fetch
  });

  it('every source rejects reads outside the source with SOURCE_OUT_OF_RANGE', async () => {
    const server = fakeServer({ u: BYTES });
    for (const src of [
      bufferSource(BYTES),
      blobSource(new Blob([BYTES])),
      await urlSource('u', { fetch: server.fetch }),
    ]) {
      await rejectsWithCode(src.read(990, 11), 'SOURCE_OUT_OF_RANGE');
      await rejectsWithCode(src.read(-1, 2), 'SOURCE_OUT_OF_RANGE');
      await rejectsWithCode(src.read(0.5, 2), 'SOURCE_OUT_OF_RANGE');
    }
  });

  it('the URL source falls back to a Range probe for the size when HEAD fails', async () => {
    const server = fakeServer({ u: BYTES }, { head: false });
    const src = await urlSource('u', { fetch: server.fetch, headers: { Authorization: 'Bearer t' } });
    expect(src.size).toBe(1000);
    expect(server.log[1]).toBe('GET u bytes=0-0');
  });

  it('the URL source refuses servers that ignore Range and reports HTTP errors', async () => {
    const noRanges = fakeServer({ u: BYTES }, { ranges: false });
    const src = await urlSource('u', { fetch: noRanges.fetch });
    await rejectsWithCode(src.read(10, 10), 'SOURCE_NO_RANGE_SUPPORT');
    expect(await src.read(0, 1000)).toEqual(BYTES); // the whole file is fine
    await rejectsWithCode(
      urlSource('u', { fetch: fakeServer({ u: BYTES }, { head: false, ranges: false }).fetch }),
      'SOURCE_NO_RANGE_SUPPORT',
    );
    await rejectsWithCode(urlSource('missing', { fetch: noRanges.fetch }), 'SOURCE_HTTP');
    const failing: FetchLike = async () => {
      throw new TypeError('network down');
    };
    await rejectsWithCode(urlSource('u', { fetch: failing }), 'SOURCE_HTTP');
    // a server that sends the wrong range
    const wrong: FetchLike = async (_u, init) =>
      init.method === 'HEAD'
        ? response(200, new Uint8Array(0), { 'content-length': '1000' })
        : response(206, BYTES.subarray(0, 4), { 'content-range': 'bytes 0-3/1000' });
    await rejectsWithCode((await urlSource('u', { fetch: wrong })).read(4, 4), 'SOURCE_HTTP');
    // a server that sends too few bytes
    const short: FetchLike = async (_u, init) =>
      init.method === 'HEAD'
        ? response(200, new Uint8Array(0), { 'content-length': '1000' })
        : response(206, BYTES.subarray(4, 6), {});
    await rejectsWithCode((await urlSource('u', { fetch: short })).read(4, 4), 'SOURCE_SHORT_READ');
  });

  it('SafetensorsFile opens from a Blob and from a URL with only range reads', async () => {
    const bytes = serializeSafetensors({
      a: hostTensor('F32', [2, 2], new Float32Array([1, 2, 3, 4])),
      b: hostTensor('I64', [1], new BigInt64Array([5n])),
    });
    const fromBlob = await SafetensorsFile.open(new Blob([bytes]));
    expect((await fromBlob.read('a')).data).toEqual(new Float32Array([1, 2, 3, 4]));
    const server = fakeServer({ 'https://h/m.safetensors': bytes });
    const fromUrl = await SafetensorsFile.open(
      await urlSource('https://h/m.safetensors', { fetch: server.fetch }),
    );
    expect((await fromUrl.read('b')).data).toEqual(new BigInt64Array([5n]));
    expect(server.log.every((l) => l.startsWith('HEAD') || /bytes=\d+-\d+$/.test(l))).toBe(true);
  });
});
