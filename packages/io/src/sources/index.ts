export type { ByteSource } from './types.js';
export { checkReadLength, checkReadRange } from './types.js';
export { bufferSource } from './buffer.js';
export { blobSource } from './blob.js';
export { type FetchLike, type FetchResponseLike, type UrlSourceOptions, urlSource } from './url.js';
export { type ByteSourceInput, toByteSource } from './input.js';
