import { typedArrayFromBytes } from '../bytes.js';
import type { Checkpoint, ReadOptions } from '../checkpoint/types.js';
import { type HostTensor, bf16ArrayToF32, f16ArrayToF32, hostTensor } from '../dtypes.js';
import { SourceError, TensorError } from '../errors.js';
import { type ByteSourceInput, toByteSource } from '../sources/input.js';
import type { ByteSource } from '../sources/types.js';
import { checkReadLength } from '../sources/types.js';
import { type TensorInfo, decodeHeaderText, parseSafetensorsHeader, readHeaderLength } from './header.js';

/**
 * A safetensors file opened for lazy, per-tensor reads. Opening reads and validates only the header;
 * each {@link SafetensorsFile.read} fetches one tensor's bytes from the {@link ByteSource} and copies
 * them into a fresh, aligned typed array. The file owns its source: {@link SafetensorsFile.close}
 * closes it, and so does a failed {@link SafetensorsFile.open}.
 */
export class SafetensorsFile implements Checkpoint {
  /** The `__metadata__` string map (empty when the file has none). */
  readonly metadata: Readonly<Record<string, string>>;
  /** Byte offset of the data section in the file (8 + header length). */
  readonly dataStart: number;
  readonly #source: ByteSource;
  readonly #infos: Map<string, TensorInfo>;
  #closed = false;

  private constructor(
    source: ByteSource,
    metadata: Record<string, string>,
    infos: TensorInfo[],
    dataStart: number,
  ) {
    this.#source = source;
    this.metadata = metadata;
    this.dataStart = dataStart;
    this.#infos = new Map(infos.map((t) => [t.name, t]));
  }

  /**
   * Opens a safetensors file: checks the header length against the file size before allocating the
   * header, then validates the whole header (see `parseSafetensorsHeader`) before any tensor data is
   * read. Accepts a ByteSource, bytes in memory, or a Blob/File.
   */
  static async open(input: ByteSourceInput): Promise<SafetensorsFile> {
    const source = toByteSource(input);
    try {
      const size = source.size;
      const prefix = size >= 8 ? await source.read(0, 8) : new Uint8Array(0);
      const headerLength = readHeaderLength(prefix, size);
      const headerBytes = await source.read(8, headerLength);
      checkReadLength('safetensors header', 8, headerLength, headerBytes.length);
      const dataStart = 8 + headerLength;
      const header = parseSafetensorsHeader(decodeHeaderText(headerBytes), size - dataStart);
      return new SafetensorsFile(source, { ...header.metadata }, [...header.tensors], dataStart);
    } catch (err) {
      await source.close?.().catch(() => undefined);
      throw err;
    }
  }

  /** Tensor names in file (data offset) order. */
  names(): string[] {
    return [...this.#infos.keys()];
  }

  /** Whether the file holds a tensor called `name`. */
  has(name: string): boolean {
    return this.#infos.has(name);
  }

  /** Dtype, shape, byte length and data offsets of `name`, or undefined when absent. */
  info(name: string): TensorInfo | undefined {
    return this.#infos.get(name);
  }

  /**
   * Reads one tensor. With `float32: true`, F16, BF16 and F64 are converted to F32 (integer dtypes are
   * returned unchanged). An unknown name throws TensorError `TENSOR_MISSING`.
   */
  async read(name: string, opts: ReadOptions = {}): Promise<HostTensor> {
    const info = this.#infos.get(name);
    if (info === undefined) {
      throw new TensorError(
        'TENSOR_MISSING',
        name,
        `not in this safetensors file (${this.#infos.size} tensors)`,
      );
    }
    if (this.#closed) throw new SourceError('SOURCE_CLOSED', `cannot read "${name}": the file is closed`);
    const offset = this.dataStart + info.dataOffsets[0];
    const bytes = await this.#source.read(offset, info.byteLength);
    checkReadLength(`tensor "${name}"`, offset, info.byteLength, bytes.length);
    const data = typedArrayFromBytes(info.dtype, bytes);
    if (opts.float32) {
      if (info.dtype === 'F16')
        return hostTensor('F32', info.shape, f16ArrayToF32(data as Uint16Array), name);
      if (info.dtype === 'BF16')
        return hostTensor('F32', info.shape, bf16ArrayToF32(data as Uint16Array), name);
      if (info.dtype === 'F64')
        return hostTensor('F32', info.shape, Float32Array.from(data as Float64Array), name);
    }
    return hostTensor(info.dtype, info.shape, data, name);
  }

  /** Reads every tensor (in file order) into a name -> tensor record. */
  async readAll(opts: ReadOptions = {}): Promise<Record<string, HostTensor>> {
    const entries: [string, HostTensor][] = [];
    for (const name of this.#infos.keys()) entries.push([name, await this.read(name, opts)]);
    return Object.fromEntries(entries);
  }

  /** Closes the underlying source. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#source.close?.();
  }
}
