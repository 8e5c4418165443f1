import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { goldenDir } from '../../../test-utils/parity.js';
import {
  conditionalGenerationLayout,
  fileLayout,
  imageTextRetrievalLayout,
  type Layout,
} from './hf-layout.js';

const sorted = (m: Layout) => [...m].sort(([a], [b]) => (a < b ? -1 : 1));
const config = async (dir: string) => JSON.parse(await readFile(join(dir, 'config.json'), 'utf8'));

// The layout table is checked against checkpoints HF transformers wrote itself, before the demo's
// checkpoint is checked against the table (run.test.ts).
describe('HF BLIP-2 layout table', () => {
  it('is exactly what Blip2ForConditionalGeneration (OPT) saved in golden/blip2_opt_tiny', async () => {
    const dir = join(goldenDir, 'blip2_opt_tiny', 'hf');
    const saved = await fileLayout(join(dir, 'model.safetensors'));
    expect(saved.size).toBeGreaterThan(100);
    expect(sorted(conditionalGenerationLayout(await config(dir), 'always'))).toEqual(sorted(saved));
  });

  it('is exactly what Blip2ForImageTextRetrieval saved in golden/stage1_losses (LAVIS extras aside)', async () => {
    const dir = join(goldenDir, 'stage1_losses', 'hf');
    const saved = await fileLayout(join(dir, 'model.safetensors'));
    // The case keeps LAVIS's `temp` and ITG head (`Qformer.cls.*`) and has no vision tower.
    const hf = new Map([...saved].filter(([n]) => n !== 'temp' && !n.startsWith('Qformer.cls.')));
    expect(hf.size).toBeGreaterThan(50);
    expect(sorted(imageTextRetrievalLayout(await config(dir), false))).toEqual(sorted(hf));
  });
});
