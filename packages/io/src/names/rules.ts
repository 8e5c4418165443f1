/**
 * Bidirectional rename rules written as pairs of templates. A template is a dotted name whose
 * `{placeholders}` match one dotted segment from a fixed set (`{i}` a layer index, `{p}` weight|bias,
 * ...) or, for `{rest}`, the remaining segments. The same pair maps both ways.
 */

const SLOTS: Readonly<Record<string, string>> = {
  i: '\\d+',
  p: 'weight|bias',
  att: 'attention|crossattention',
  qkv: 'query|key|value',
  dl: 'dense|LayerNorm',
  ffn: 'intermediate|intermediate_query',
  out: 'output|output_query',
  emb: 'word_embeddings|position_embeddings',
  rest: '[^.].*',
};

interface Compiled {
  readonly re: RegExp;
  readonly slots: readonly string[];
}

function compile(template: string): Compiled {
  const slots: string[] = [];
  const source = template
    .split(/(\{[a-z]+\})/)
    .map((part) => {
      const m = /^\{([a-z]+)\}$/.exec(part);
      if (!m) return part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
      const slot = m[1]!;
      const pattern = SLOTS[slot];
      if (pattern === undefined) throw new Error(`unknown template slot {${slot}}`);
      slots.push(slot);
      return `(${pattern})`;
    })
    .join('');
  return { re: new RegExp(`^${source}$`), slots };
}

function fill(template: string, values: ReadonlyMap<string, string>): string {
  return template.replace(/\{([a-z]+)\}/g, (_, slot: string) => values.get(slot) ?? '');
}

/** A compiled list of template pairs `[checkpoint name, canonical name]`. */
export class RenameRules {
  readonly #pairs: readonly { from: Compiled; to: Compiled; fromT: string; toT: string }[];

  constructor(pairs: readonly (readonly [string, string])[]) {
    this.#pairs = pairs.map(([a, b]) => ({ from: compile(a), to: compile(b), fromT: a, toT: b }));
  }

  /** Checkpoint name -> canonical name by the first matching rule, or undefined. */
  forward(name: string): string | undefined {
    for (const r of this.#pairs) {
      const m = r.from.re.exec(name);
      if (m) return fill(r.toT, new Map(r.from.slots.map((s, k) => [s, m[k + 1]!])));
    }
    return undefined;
  }

  /** Canonical name -> checkpoint name by the first matching rule, or undefined. */
  backward(name: string): string | undefined {
    for (const r of this.#pairs) {
      const m = r.to.re.exec(name);
      if (m) return fill(r.fromT, new Map(r.to.slots.map((s, k) => [s, m[k + 1]!])));
    }
    return undefined;
  }
}
