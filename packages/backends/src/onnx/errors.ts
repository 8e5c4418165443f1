import { QfError } from '@qf/io';

/**
 * Codes of {@link OnnxBackendError}:
 * - `ONNX_DISPOSED`: the backend, a session or a parameter store was used after `dispose()`;
 * - `ONNX_TRACE`: model code did something the recorder cannot express (a symbol from another graph,
 *   a non-parameter weight where a parameter is required, a bad axis);
 * - `ONNX_RUNTIME`: ONNX Runtime failed to create a session or to run it (the cause is attached);
 * - `ONNX_EXPORT`: an export option or part is invalid for this model.
 */
export type OnnxErrorCode = 'ONNX_DISPOSED' | 'ONNX_TRACE' | 'ONNX_RUNTIME' | 'ONNX_EXPORT';

/** A typed error of the ONNX backend (a `QfError`, so callers can branch on `code`). */
export class OnnxBackendError extends QfError {
  declare readonly code: OnnxErrorCode;
  // biome-ignore lint/complexity/noUselessConstructor: narrows `code` to OnnxErrorCode
  constructor(code: OnnxErrorCode, message: string, options?: ErrorOptions) {
    super(code, message, options);
  }
}
