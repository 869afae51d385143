/** A tensor crossing the thread boundary; `data` is transferred, not copied. */
export interface ThreadTensor {
  type: string;
  data:
    | Float32Array
    | Float64Array
    | Int32Array
    | BigInt64Array
    | Uint8Array
    | Int8Array
    | Uint16Array
    | Int16Array
    | Uint32Array
    | BigUint64Array;
  dims: number[];
}

/** workerData of the inference thread. */
export interface ThreadInit {
  intraOpThreads: number;
}

/** Messages to the inference thread. */
export type ThreadRequest =
  | { type: 'load'; id: number; key: string; path: string }
  | { type: 'unload'; id: number; key: string }
  | { type: 'run'; id: number; key: string; feeds: Record<string, ThreadTensor> };

/** Messages from the inference thread. */
export type ThreadResponse =
  | { type: 'loaded'; id: number }
  | { type: 'result'; id: number; outputs: Record<string, ThreadTensor>; ms: number }
  | { type: 'error'; id: number; message: string };
