import { seg, type CallOptions, type Transport } from './transport.js';
import type {
  V2InferRequest,
  V2InferResponse,
  V2ModelMetadata,
  V2ServerMetadata,
} from './types.js';

function modelPath(model: string, version?: string): string {
  const base = `/v2/models/${seg(model)}`;
  return version ? `${base}/versions/${seg(version)}` : base;
}

/** The Open Inference Protocol (KServe V2 / Triton HTTP) routes under `/v2`. */
export class V2Client {
  constructor(private readonly http: Transport) {}

  /** GET /v2: server name, version and extensions. */
  serverMetadata(options: CallOptions = {}): Promise<V2ServerMetadata> {
    return this.http.json({ path: '/v2', ...options });
  }

  /** GET /v2/health/live. */
  async live(options: CallOptions = {}): Promise<boolean> {
    const body = await this.http.json<{ live?: boolean }>({ path: '/v2/health/live', ...options });
    return body.live === true;
  }

  /** GET /v2/health/ready; false (not an error) when the server answers 503. */
  async ready(options: CallOptions = {}): Promise<boolean> {
    const body = await this.http.json<{ ready?: boolean }>({
      path: '/v2/health/ready',
      accept: [503],
      ...options,
    });
    return body.ready === true;
  }

  /** GET /v2/models/{m}[/versions/{v}]: the model's tensors. */
  modelMetadata(model: string, version?: string, options: CallOptions = {}) {
    return this.http.json<V2ModelMetadata>({ path: modelPath(model, version), ...options });
  }

  /** GET /v2/models/{m}[/versions/{v}]/ready. */
  async modelReady(model: string, version?: string, options: CallOptions = {}): Promise<boolean> {
    const body = await this.http.json<{ ready?: boolean }>({
      path: `${modelPath(model, version)}/ready`,
      accept: [503],
      ...options,
    });
    return body.ready === true;
  }

  /** POST /v2/models/{m}[/versions/{v}]/infer. */
  infer(
    model: string,
    request: V2InferRequest,
    options: CallOptions & { version?: string } = {},
  ): Promise<V2InferResponse> {
    const { version, ...call } = options;
    return this.http.json({
      method: 'POST',
      path: `${modelPath(model, version)}/infer`,
      json: request,
      ...call,
    });
  }
}
