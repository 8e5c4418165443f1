import { QFormerModel } from '@qf/core';
import { createTfjsBackend } from '@qf/backends/tfjs';
import type { HostTensor } from '@qf/io';
import { describe, expect, it } from 'vitest';
import { expectClose } from './helpers.js';
import { drawRandomCase } from './random-case.js';

describe('tfjs-cpu vs tfjs-wasm on random configs', () => {
  for (const seed of [11, 12, 13, 14, 15, 16]) {
    it(`seed ${seed}: every output agrees`, async () => {
      const { spec, tensors, inputs } = drawRandomCase(seed);
      const results: Record<string, HostTensor>[] = [];
      for (const name of ['cpu', 'wasm'] as const) {
        const model = QFormerModel.fromTensors(await createTfjsBackend(name), spec, tensors);
        results.push(await model.run(inputs, { hiddenStates: true }));
        model.dispose();
      }
      const [cpu, wasm] = results as [Record<string, HostTensor>, Record<string, HostTensor>];
      expect(Object.keys(wasm).sort()).toEqual(Object.keys(cpu).sort());
      expect(Object.keys(cpu)).toContain('itc_logits');
      for (const k of Object.keys(cpu)) expectClose(k, wasm[k], cpu[k]);
    });
  }
});
