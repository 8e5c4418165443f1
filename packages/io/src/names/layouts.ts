import { QfError } from '../errors.js';
import { isCanonicalName } from './canonical.js';
import { RenameRules } from './rules.js';

/** The naming scheme of a checkpoint. */
export type CheckpointLayout = 'hf-blip2' | 'hf-instructblip' | 'lavis';

/**
 * InstructBLIP keeps the text embeddings and their LayerNorm inside `qformer.embeddings`; every other
 * name is the canonical one.
 */
const INSTRUCTBLIP = new RenameRules([
  ['qformer.embeddings.{emb}.weight', 'embeddings.{emb}.weight'],
  ['qformer.embeddings.layernorm.{p}', 'qformer.layernorm.{p}'],
  ['query_tokens', 'query_tokens'],
  ['qformer.encoder.{rest}', 'qformer.encoder.{rest}'],
  ['language_projection.{p}', 'language_projection.{p}'],
  ['vision_model.{rest}', 'vision_model.{rest}'],
  ['language_model.{rest}', 'language_model.{rest}'],
]);

/** LAVIS `Blip2Qformer` state-dict names (BERT-style module paths). */
const LAVIS = new RenameRules([
  ['Qformer.bert.embeddings.{emb}.weight', 'embeddings.{emb}.weight'],
  ['Qformer.bert.embeddings.LayerNorm.{p}', 'qformer.layernorm.{p}'],
  [
    'Qformer.bert.encoder.layer.{i}.{att}.self.{qkv}.{p}',
    'qformer.encoder.layer.{i}.{att}.attention.{qkv}.{p}',
  ],
  ['Qformer.bert.encoder.layer.{i}.{att}.output.{dl}.{p}', 'qformer.encoder.layer.{i}.{att}.output.{dl}.{p}'],
  ['Qformer.bert.encoder.layer.{i}.{ffn}.dense.{p}', 'qformer.encoder.layer.{i}.{ffn}.dense.{p}'],
  ['Qformer.bert.encoder.layer.{i}.{out}.{dl}.{p}', 'qformer.encoder.layer.{i}.{out}.{dl}.{p}'],
  ['vision_proj.{p}', 'vision_projection.{p}'],
  ['text_proj.{p}', 'text_projection.{p}'],
  ['itm_head.{p}', 'itm_head.{p}'],
  ['query_tokens', 'query_tokens'],
  ['temp', 'temp'],
  ['Qformer.cls.{rest}', 'Qformer.cls.{rest}'],
  ['ln_vision.{p}', 'vision_model.post_layernorm.{p}'],
]);

/**
 * Guesses the naming scheme from a checkpoint's tensor names: any `Qformer.bert.*`, `vision_proj.*`,
 * `text_proj.*` or `ln_vision.*` means LAVIS; any `qformer.embeddings.*` means HF InstructBLIP;
 * anything else is HF BLIP-2 (already canonical).
 */
export function detectCheckpointLayout(names: readonly string[]): CheckpointLayout {
  if (names.some((n) => /^(Qformer\.bert\.|vision_proj\.|text_proj\.|ln_vision\.)/.test(n))) return 'lavis';
  if (names.some((n) => n.startsWith('qformer.embeddings.'))) return 'hf-instructblip';
  return 'hf-blip2';
}

/**
 * Maps a checkpoint tensor name to its canonical name, or undefined for a name with no canonical
 * counterpart (buffers like `position_ids`, LAVIS `visual_encoder.*`, unknown names).
 */
export function toCanonicalName(layout: CheckpointLayout, name: string): string | undefined {
  const mapped = layout === 'hf-blip2' ? name : (layout === 'lavis' ? LAVIS : INSTRUCTBLIP).forward(name);
  return mapped !== undefined && isCanonicalName(mapped) ? mapped : undefined;
}

/**
 * Maps a canonical name to the name `layout` stores it under, or undefined when that layout has no
 * such tensor (e.g. `itm_head.*` in InstructBLIP, `language_model.*` in a LAVIS stage-1 checkpoint).
 */
export function fromCanonicalName(layout: CheckpointLayout, canonical: string): string | undefined {
  if (!isCanonicalName(canonical)) return undefined;
  if (layout === 'hf-blip2') return canonical;
  return (layout === 'lavis' ? LAVIS : INSTRUCTBLIP).backward(canonical);
}

/** Result of {@link mapCheckpointNames}. */
export interface NameMapping {
  readonly layout: CheckpointLayout;
  /** Canonical name -> checkpoint name. */
  readonly toCheckpoint: ReadonlyMap<string, string>;
  /** Checkpoint names with no canonical counterpart. */
  readonly unmapped: readonly string[];
}

/**
 * Maps every checkpoint name to canonical at once (layout detected unless given). Two checkpoint
 * names that map to the same canonical name throw QfError `NAME_COLLISION`, since one would
 * silently shadow the other.
 */
export function mapCheckpointNames(
  names: readonly string[],
  layout = detectCheckpointLayout(names),
): NameMapping {
  const toCheckpoint = new Map<string, string>();
  const unmapped: string[] = [];
  for (const name of names) {
    const canonical = toCanonicalName(layout, name);
    if (canonical === undefined) {
      unmapped.push(name);
      continue;
    }
    const prev = toCheckpoint.get(canonical);
    if (prev !== undefined) {
      throw new QfError(
        'NAME_COLLISION',
        `checkpoint names "${prev}" and "${name}" both map to "${canonical}"`,
      );
    }
    toCheckpoint.set(canonical, name);
  }
  return { layout, toCheckpoint, unmapped };
}
