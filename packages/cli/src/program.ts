import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { type CliBackendName, backendOption, threadsOption } from './backend.js';
import { captionCommand } from './caption.js';
import { demoCommand } from './demo.js';
import { describeError } from './errors.js';
import { exportOnnxCommand } from './export-onnx.js';
import { formatInspect } from './inspect-format.js';
import { inspectPath } from './inspect.js';
import { runCommand } from './run.js';
import { type CliStreams, processStreams } from './streams.js';
import { VERSION } from './version.js';

function intOption(min: number, max: number): (value: string) => number {
  return (value) => {
    const n = Number(value);
    if (!/^\d+$/.test(value.trim()) || !Number.isSafeInteger(n) || n < min || n > max) {
      throw new InvalidArgumentError(`expected an integer in ${min}..${max}, got "${value}"`);
    }
    return n;
  };
}

function examples(...lines: string[]): string {
  return `\nExamples:\n${lines.map((l) => `  $ ${l}`).join('\n')}\n`;
}

function addRun(program: Command, streams: CliStreams): void {
  program
    .command('run')
    .summary(
      'run the Q-Former (or a whole BLIP-2 model) of an HF model directory on inputs from a safetensors file',
    )
    .description(
      [
        'Run the Q-Former of an HF model directory on the named inputs of a safetensors file and write every output (F32) to --out, atomically.',
        'Backends: tfjs-cpu, tfjs-wasm (TensorFlow.js), onnx (the same model recorded as ONNX graphs and run by ONNX Runtime through onnxruntime-node; --threads sets its threads per operator).',
        'Inputs: image_embeds [B,N,E] (float), image_attention_mask [B,N] (optional), input_ids [B,T] (I64 or I32), attention_mask [B,T] (optional).',
        'Outputs, as far as the inputs and the checkpoint allow: query_output, image_feats, language_projection, text_output, text_feat, multimodal_output, itm_logits, itc_logits.',
        "Whole BLIP-2 / InstructBLIP models: inputs pixel_values [B,3,S,S] (float), input_ids and attention_mask [B,T] (LM prompt), qformer_input_ids and qformer_attention_mask [B,Tq] (InstructBLIP, required there), labels [B,L] (optional), decoder_input_ids (T5, optional). Outputs: vision_output, query_output, language_projection, qformer_output (InstructBLIP), inputs_embeds, lm_attention_mask, logits, loss (with labels), encoder_last_hidden_state (T5); with --generate N also generated_ids (I64, HF generate's sequences).",
      ].join('\n\n'),
    )
    .argument('<model-dir>', 'HF model directory (config.json + model.safetensors or a sharded index)')
    .requiredOption('-i, --inputs <file>', 'safetensors file with the named inputs')
    .requiredOption('-o, --out <file>', 'safetensors file to write the outputs to (written atomically)')
    .addOption(backendOption())
    .addOption(threadsOption(intOption(1, 1024)))
    .option('--strict', 'fail when the checkpoint holds tensors the Q-Former does not use')
    .option(
      '--hidden-states',
      "also write every layer's hidden states ({query,text,multimodal}_hidden_states.<i>; whole models: {vision,qformer}_hidden_states.<i>)",
    )
    .option(
      '--generate <n>',
      'whole BLIP-2 / InstructBLIP models: also generate n new tokens (greedy) and write generated_ids',
      intOption(1, 4096),
    )
    .addHelpText(
      'after',
      examples(
        'qf run ./blip2-model --inputs inputs.safetensors --out outputs.safetensors',
        'qf run ./qf-demo-out -i ./qf-demo-out/samples/inputs.safetensors -o run.safetensors --backend tfjs-wasm',
        'qf run ./blip2-model -i inputs.safetensors -o outputs.safetensors --backend onnx --threads 4',
        'qf run ./blip2-opt-model -i pixels.safetensors -o out.safetensors --generate 20',
      ),
    )
    .action(
      async (
        modelDir: string,
        opts: {
          inputs: string;
          out: string;
          backend: CliBackendName;
          threads?: number;
          strict?: boolean;
          hiddenStates?: boolean;
          generate?: number;
        },
      ) => {
        await runCommand(modelDir, opts, streams);
      },
    );
}

function addCaption(program: Command, streams: CliStreams): void {
  program
    .command('caption')
    .summary('caption images with a whole BLIP-2 / InstructBLIP model directory')
    .description(
      [
        'Caption (or, with --prompt, answer about) images with a whole HF BLIP-2 (Blip2ForConditionalGeneration) or InstructBLIP model directory: config.json, weights (model.safetensors or shards) and the tokenizer (tokenizer.json; InstructBLIP also qformer_tokenizer/tokenizer.json).',
        'Images (PNG, JPEG, WebP...) are decoded to RGB and preprocessed as BlipImageProcessor does (bicubic resize to image_size, CLIP mean/std), then captioned in one batch: greedy search, or beam search with --beams. Prints one caption per image, in order (--json: a JSON array of {image, caption, ids}, ids being the generate output row). Timings go to stderr.',
        'InstructBLIP needs --prompt: it is both the LM prompt and the Q-Former instruction.',
      ].join('\n\n'),
    )
    .argument('<model-dir>', 'HF model directory of a whole BLIP-2 / InstructBLIP model with its tokenizer')
    .argument('<image...>', 'image files (PNG, JPEG, ...)')
    .option('--prompt <text>', 'LM prompt for every image, e.g. "Question: what is shown? Answer:"')
    .addOption(backendOption())
    .addOption(threadsOption(intOption(1, 1024)))
    .option('--beams <n>', 'beam search width (default 1: greedy)', intOption(1, 64))
    .option(
      '--max-new-tokens <n>',
      'most new tokens per caption (default: as HF generate)',
      intOption(1, 4096),
    )
    .option('--json', 'print a JSON array of {image, caption, ids}')
    .option('--strict', 'fail when the checkpoint holds tensors the model does not use')
    .addHelpText(
      'after',
      examples(
        'qf caption ./blip2-opt-2.7b photo.jpg',
        'qf caption ./blip2-flan-t5-xl a.png b.png --prompt "Question: what colour is it? Answer:" --beams 3',
        'qf caption ./instructblip-flan-t5 photo.jpg --prompt "Describe the image in detail." --json',
      ),
    )
    .action(
      async (
        modelDir: string,
        images: string[],
        opts: {
          prompt?: string;
          backend: CliBackendName;
          threads?: number;
          beams?: number;
          maxNewTokens?: number;
          json?: boolean;
          strict?: boolean;
        },
      ) => {
        await captionCommand(modelDir, images, opts, streams);
      },
    );
}

function addInspect(program: Command, streams: CliStreams): void {
  program
    .command('inspect')
    .summary('describe a safetensors file, a config.json or an HF model directory')
    .description(
      'Describe a safetensors file (tensors: name, dtype, shape, bytes; metadata), a config .json file, or an HF model directory (also its parsed config, detected checkpoint layout and which Q-Former parts it holds).',
    )
    .argument('<file-or-dir>', 'a .safetensors file, a config .json file or an HF model directory')
    .option('--json', 'print machine-readable JSON')
    .addHelpText('after', examples('qf inspect ./blip2-model', 'qf inspect outputs.safetensors --json'))
    .action(async (target: string, opts: { json?: boolean }) => {
      const report = await inspectPath(target);
      streams.out(opts.json ? `${JSON.stringify(report, null, 2)}\n` : formatInspect(report));
    });
}

function addDemo(program: Command, streams: CliStreams): void {
  const steps = intOption(0, 1_000_000);
  program
    .command('demo')
    .summary('train a miniature BLIP-2 end to end on synthetic shapes (no network) and print its figures')
    .description(
      [
        'The built-in `shapes` recipe (@qf/demo): generates a synthetic image-caption set from --seed, pre-trains a tiny BLIP-2 vision tower on an auxiliary objective (the slots of each scene description) and freezes it, pre-trains a tiny OPT on the captions and freezes it, then trains a Q-Former from untrained weights: stage 1 (ITC + ITM + ITG) and stage 2 (the loss of the frozen LM through the projector).',
        'Prints held-out test figures: image-to-text and text-to-image R@1/R@5 with ITC alone and after ITM re-ranking, caption exact match and token accuracy, sample captions, and steps/s per phase; progress bars go to stderr (plain lines when it is not a terminal).',
        'Writes an HF checkpoint directory to --out (config.json + model.safetensors with vision_model.*, qformer.*, language_projection.*, language_model.* and the retrieval heads; tokenizer.json and qformer_tokenizer/; demo.json with the figures; samples/), replaced atomically. `qf run`, `qf caption` and the browser example load it.',
        'The default recipe takes a few minutes on 2 CPU cores; --quick is a small smoke configuration that does not reach the targets.',
      ].join('\n\n'),
    )
    .option('-o, --out <dir>', 'checkpoint directory to write', 'qf-demo-out')
    .addOption(
      new Option('-b, --backend <name>', 'tfjs backend to train on (wasm: measured fastest here)')
        .choices(['tfjs-wasm', 'tfjs-cpu'])
        .default('tfjs-wasm'),
    )
    .option('--seed <n>', 'seed of the data and every initialisation', intOption(0, 2 ** 32 - 1), 0)
    .option(
      '--workers <n>',
      'threads for the image encoder pre-training: 2 (default) splits each batch with a worker thread, 1 trains on one thread',
      intOption(1, 2),
    )
    .option('--quick', 'small, fast smoke configuration (tests, CI); far from the targets')
    .option('--json', 'print the final figures, timings and steps/s as one JSON object on stdout')
    .option('--validate', 'also evaluate on the validation split')
    .option(
      '--train-size <n>',
      'training examples (image encoder and LM pre-training)',
      intOption(16, 200_000),
    )
    .option(
      '--qformer-train-size <n>',
      'the Q-Former stages train on the first n of them',
      intOption(16, 200_000),
    )
    .option('--test-size <n>', 'test examples = retrieval candidates', intOption(2, 1000))
    .option('--batch <n>', 'batch size of the Q-Former stages', intOption(2, 4096))
    .option('--steps-encoder <n>', 'image encoder pre-training steps', steps)
    .option('--steps-lm <n>', 'LM pre-training steps', steps)
    .option('--steps-stage1 <n>', 'stage 1 steps', steps)
    .option('--steps-stage2 <n>', 'stage 2 steps', steps)
    .option('--queries <n>', 'Q-Former query tokens', intOption(1, 64))
    .option('--vision-hidden <n>', 'vision tower width (multiple of 16)', intOption(16, 1024))
    .option('--qformer-hidden <n>', 'Q-Former width (multiple of 16)', intOption(16, 1024))
    .option('--lm-hidden <n>', 'OPT width (multiple of 16)', intOption(16, 1024))
    .option(
      '--encoder-from <path>',
      'reuse the frozen image encoder of an earlier checkpoint (skips its pre-training)',
    )
    .option('--lm-from <path>', 'reuse the frozen LM of an earlier checkpoint (skips its pre-training)')
    .addHelpText(
      'after',
      examples(
        'qf demo',
        'qf demo --out /tmp/qf-demo --seed 7 --json',
        'qf demo --quick --json',
        'qf demo --steps-stage2 800 --workers 1',
      ),
    )
    .action(
      async (opts: {
        out: string;
        backend: 'tfjs-wasm' | 'tfjs-cpu';
        seed: number;
        quick?: boolean;
        json?: boolean;
        validate?: boolean;
        trainSize?: number;
        qformerTrainSize?: number;
        workers?: number;
        testSize?: number;
        batch?: number;
        stepsEncoder?: number;
        stepsLm?: number;
        stepsStage1?: number;
        stepsStage2?: number;
        queries?: number;
        visionHidden?: number;
        qformerHidden?: number;
        lmHidden?: number;
        encoderFrom?: string;
        lmFrom?: string;
      }) => {
        await demoCommand(opts, streams);
      },
    );
}

/** `--part query text`, `--part query,text` and `--part query --part text` all collect. */
function collectParts(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), ...value.split(',').filter((v) => v.trim() !== '')];
}

function addExportOnnx(program: Command, streams: CliStreams): void {
  program
    .command('export-onnx')
    .summary('export the Q-Former, or a whole BLIP-2 / InstructBLIP model, as ONNX files')
    .description(
      [
        'Export the Q-Former of an HF model directory (HF BLIP-2, InstructBLIP or LAVIS names) as ONNX files (opset 17, dynamic axes batch, num_image_tokens, text_length; num_texts for rerank) that any ONNX Runtime can load, plus a manifest (qformer_onnx.json) listing every input and output with its dtype and dims.',
        [
          'Parts (default: every part the checkpoint supports):',
          '  query       image_embeds [batch, num_image_tokens, E]',
          '              (+ image_attention_mask [batch, num_image_tokens], --image-mask)',
          '              -> query_output, image_feats, language_projection',
          '  text        input_ids, attention_mask [batch, text_length]',
          '              -> text_output, text_feat',
          '  multimodal  all inputs -> multimodal_output, itm_logits, itc_logits',
          '  full        all inputs -> every output above',
          '  rerank      one image: image_embeds [1, num_image_tokens, E]',
          '              (+ image_attention_mask [1, num_image_tokens], --image-mask)',
          '              vs input_ids, attention_mask [num_texts, text_length]',
          '              -> itm_logits [num_texts, 2], multimodal_output',
          '              (the image cross-attention K/V computed once for all texts)',
          'Heads (image_feats, text_feat, itm/itc logits, language_projection) appear',
          'where the checkpoint has them; text parts need the Q-Former text path,',
          'rerank also the retrieval heads (itm_head).',
        ].join('\n'),
        [
          'Whole BLIP-2 / InstructBLIP model directories (vision tower + Q-Former + OPT or T5 LM),',
          'with --part naming any of these (files blip2_<part>.onnx + manifest.json):',
          '  vision             pixel_values [batch, 3, S, S] -> vision_output',
          '  qformer_projector  image_embeds (+ InstructBLIP qformer_input_ids, qformer_attention_mask)',
          '                     -> query_output, language_projection (the soft prompt)',
          '  lm                 OPT: lm_prefill (soft_prompt, lm_input_ids, lm_attention_mask,',
          '                     position_ids -> logits, present_key/value.{i}) and lm_step',
          '                     (one token + past_key/value.{i} -> logits, present);',
          '                     T5: t5_encoder (-> encoder_last_hidden_state, cross.{i}.key/value),',
          '                     t5_decoder_first, t5_decoder_step (past/present.{i}.key/value)',
          '  all                every part above',
          'Greedy/beam generation runs from these files on onnxruntime-node (openBlip2Onnx in',
          '@qf/backends/onnx/node). Without --part such a directory exports its Q-Former (query).',
        ].join('\n'),
        'Files are staged in a temporary directory next to --out and renamed into place, so a failed export leaves nothing behind. Needs no ONNX Runtime.',
      ].join('\n\n'),
    )
    .argument('<model-dir>', 'HF model directory (config.json + model.safetensors or a sharded index)')
    .requiredOption(
      '-o, --out <dir>',
      'directory to write qformer_<part>.onnx and qformer_onnx.json (whole model: blip2_<part>.onnx and manifest.json) to',
    )
    .option(
      '-p, --part <name...>',
      'part(s) to export: query, text, multimodal, full, rerank; or, for a whole BLIP-2 / InstructBLIP directory, vision, qformer_projector, lm, all (repeat or comma-separate)',
      collectParts,
    )
    .option(
      '--fp16',
      'store weights as float16 (half the size; Cast to float32 at load, compute stays float32)',
    )
    .option(
      '--int8',
      'quantize MatMul weights to int8 (com.microsoft.DynamicQuantizeMatMul: ONNX Runtime only)',
    )
    .option('--external-data', "put each part's weights in <file>.onnx.data (default: only past 2 GB)")
    .option('--image-mask', 'add an image_attention_mask input to the parts that read the image')
    .option('--strict', 'fail when the checkpoint holds tensors the Q-Former does not use')
    .addHelpText(
      'after',
      examples(
        'qf export-onnx ./blip2-model --out ./onnx',
        'qf export-onnx ./blip2-model --out ./onnx --part query text --fp16',
        'qf export-onnx ./blip2-model --out ./onnx-int8 --part query --int8 --external-data',
        'qf export-onnx ./blip2-model --out ./onnx-rerank --part rerank',
        'qf export-onnx ./blip2-opt-model --out ./blip2-onnx --part all --fp16',
      ),
    )
    .action(
      async (
        modelDir: string,
        opts: {
          out: string;
          part?: string[];
          fp16?: boolean;
          int8?: boolean;
          externalData?: boolean;
          imageMask?: boolean;
          strict?: boolean;
        },
      ) => {
        await exportOnnxCommand(modelDir, { ...opts, parts: opts.part }, streams);
      },
    );
}

/**
 * The `qf` command tree. Output goes to `streams`; commander never exits the process (errors,
 * `--help` and `--version` surface as a CommanderError that {@link main} turns into an exit code).
 */
export function buildProgram(streams: CliStreams = processStreams()): Command {
  const program = new Command('qf')
    .description(
      'Run, inspect, demo and export (ONNX) BLIP-2 Q-Formers, and caption images with whole BLIP-2 / InstructBLIP models (qformer-ts).',
    )
    .version(VERSION, '-V, --version', 'print the version')
    .exitOverride()
    .configureOutput({ writeOut: (s) => streams.out(s), writeErr: (s) => streams.err(s) })
    .showHelpAfterError('(run with --help for usage)')
    .addHelpText(
      'after',
      examples(
        'qf demo',
        'qf inspect ./qf-demo-out',
        'qf run ./qf-demo-out -i ./qf-demo-out/samples/inputs.safetensors -o out.safetensors',
        'qf caption ./blip2-opt-model photo.jpg',
        'qf export-onnx ./qf-demo-out --out ./qf-demo-out/onnx',
      ),
    );
  addRun(program, streams);
  addCaption(program, streams);
  addInspect(program, streams);
  addDemo(program, streams);
  addExportOnnx(program, streams);
  return program;
}

/**
 * Runs `qf` with the user's arguments (`process.argv.slice(2)`) and resolves to the exit code: 0 on
 * success, 1 on any error (reported on `streams.err`). Never calls `process.exit`.
 */
export async function main(argv: readonly string[], streams: CliStreams = processStreams()): Promise<number> {
  const program = buildProgram(streams);
  try {
    await program.parseAsync([...argv], { from: 'user' });
    return 0;
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode;
    streams.err(`${describeError(err)}\n`);
    return 1;
  }
}
