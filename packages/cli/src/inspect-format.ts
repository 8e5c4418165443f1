import { configLines } from './config-summary.js';
import { fmtBytes, fmtCount, fmtShape, keyValues, table } from './format.js';
import type { CheckpointParts, InspectReport, TensorRow } from './inspect.js';

function tensorTable(rows: readonly TensorRow[]): string {
  return table(
    ['name', 'dtype', 'shape', 'bytes'],
    rows.map((t) => [t.name, t.dtype, fmtShape(t.shape), fmtCount(t.bytes)]),
    [3],
  );
}

function metadataLines(metadata: Readonly<Record<string, unknown>>): string {
  const entries = Object.entries(metadata);
  if (entries.length === 0) return 'metadata: (none)\n';
  return `metadata:\n${keyValues(entries.map(([k, v]) => [`  ${k}`, typeof v === 'string' ? v : JSON.stringify(v)]))}`;
}

function partsLine(p: CheckpointParts): string {
  const yes = (b: boolean) => (b ? 'yes' : 'no');
  return [
    `query tokens ${yes(p.queryTokens)}`,
    `text path ${yes(p.textPath)}`,
    `ITC/ITM heads ${yes(p.retrievalHeads)}`,
    `language projection ${yes(p.languageProjection)}`,
    `vision tower ${yes(p.visionTower)}`,
    `language model ${yes(p.languageModel)}`,
    `unmapped tensors ${p.unmapped}`,
  ].join(', ');
}

/** The human-readable form of an inspect report. */
export function formatInspect(r: InspectReport): string {
  if (r.kind === 'config') return `${r.path}: model config\n${keyValues(configLines(r.config))}`;
  if (r.kind === 'safetensors') {
    return (
      `${r.path}: safetensors, ${r.tensors.length} tensors, ${fmtBytes(r.tensorBytes)} of data (file ${fmtBytes(r.fileBytes)})\n` +
      metadataLines(r.metadata) +
      tensorTable(r.tensors)
    );
  }
  return (
    `${r.path}: HF model directory\n` +
    keyValues([
      ...configLines(r.config),
      ['weights', `${r.weights.files.join(', ')} (${r.tensors.length} tensors, ${fmtBytes(r.tensorBytes)})`],
      ['layout', r.layout],
      ['checkpoint holds', partsLine(r.parts)],
    ]) +
    metadataLines(r.metadata) +
    tensorTable(r.tensors)
  );
}
