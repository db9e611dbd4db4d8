/**
 * Typed REST calls, typed from the service's OpenAPI document (src/generated/openapi.ts).
 *
 *   const api = new ApiClient({ baseUrl: "http://localhost:8000", token });
 *   const { seq } = await api.request("post", "/api/sessions/{session_id}/events", {
 *     path: { session_id: "render-1" }, body: { agent: "renderer", status: "running" },
 *   });
 *
 * Errors answer with the envelope `{"error": {"code", "message"}}`: they raise ApiError.
 */
import type { paths } from "./generated/openapi.js";
import { authHeaders, type Credentials } from "./auth.js";

export type { paths, components, operations } from "./generated/openapi.js";

export type HttpMethod = "get" | "post" | "put" | "patch" | "delete";

type Operation<P extends keyof paths, M extends HttpMethod> = NonNullable<paths[P][M]>;

/** The paths that have an operation for this method. */
export type PathsFor<M extends HttpMethod> = {
  [P in keyof paths]: paths[P][M] extends { responses: unknown } ? P : never;
}[keyof paths];

type JsonOf<T> = T extends { content: { "application/json": infer B } } ? B : undefined;

/** The JSON body an operation accepts. */
export type RequestBody<P extends keyof paths, M extends HttpMethod> =
  Operation<P, M> extends { requestBody: infer R } ? JsonOf<R>
  : Operation<P, M> extends { requestBody?: infer R } ? JsonOf<NonNullable<R>> | undefined
  : undefined;

type Success<R> = R extends { 200: infer A } ? JsonOf<A>
  : R extends { 201: infer A } ? JsonOf<A>
  : R extends { 202: infer A } ? JsonOf<A>
  : R extends { 204: unknown } ? undefined
  : unknown;

/** The JSON an operation answers with on success (undefined for 204). */
export type ResponseBody<P extends keyof paths, M extends HttpMethod> =
  Operation<P, M> extends { responses: infer R } ? Success<R> : never;

type PathParams<O> = O extends { parameters: { path: infer X } } ? ([X] extends [never] ? undefined : X)
  : undefined;
type QueryParams<O> = O extends { parameters: { query?: infer X } } ? ([X] extends [never] ? undefined : X)
  : undefined;

export interface RequestOptions<P extends keyof paths, M extends HttpMethod> {
  path?: PathParams<Operation<P, M>>;
  query?: QueryParams<Operation<P, M>>;
  body?: RequestBody<P, M>;
  signal?: AbortSignal;
}

/** An error answer of the service, or a network failure (status 0). */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly retryAfterS: number | null = null,
    readonly body: unknown = null,
  ) {
    super(message);
    this.name = "ApiError";
  }
}

export interface ApiClientOptions extends Credentials {
  /** The service's origin, e.g. `http://localhost:8000` (or the REST API's stage URL). */
  baseUrl: string;
  fetch?: typeof fetch;
  headers?: Record<string, string>;
}

export class ApiClient {
  readonly baseUrl: string;
  private readonly options: ApiClientOptions;
  private readonly fetchImpl: typeof fetch;

  constructor(options: ApiClientOptions) {
    this.options = options;
    this.baseUrl = options.baseUrl.replace(/\/+$/, "");
    this.fetchImpl = options.fetch ?? globalThis.fetch.bind(globalThis);
  }

  /** The URL of a path of the service, with its path and query parameters filled in. */
  url(path: string, params?: Record<string, unknown>, query?: Record<string, unknown>): string {
    const filled = path.replace(/\{(\w+)\}/g, (_, name: string) => {
      const value = params?.[name];
      if (value === undefined || value === null) throw new TypeError(`missing path parameter ${name}`);
      return encodeURIComponent(String(value));
    });
    const search = new URLSearchParams();
    for (const [key, value] of Object.entries(query ?? {})) {
      if (value !== undefined && value !== null) search.set(key, String(value));
    }
    const qs = search.toString();
    return `${this.baseUrl}${filled}${qs ? `?${qs}` : ""}`;
  }

  async request<M extends HttpMethod, P extends PathsFor<M>>(
    method: M,
    path: P,
    options: RequestOptions<P, M> = {},
  ): Promise<ResponseBody<P, M>> {
    const headers: Record<string, string> = {
      accept: "application/json",
      ...(this.options.headers ?? {}),
      ...(await authHeaders(this.options)),
    };
    let body: string | undefined;
    if (options.body !== undefined) {
      headers["content-type"] = "application/json";
      body = JSON.stringify(options.body);
    }
    const url = this.url(
      path,
      options.path as Record<string, unknown> | undefined,
      options.query as Record<string, unknown> | undefined,
    );
    let response: Response;
    try {
      response = await this.fetchImpl(url, {
        method: method.toUpperCase(),
        headers,
        body,
        signal: options.signal,
      });
    } catch (error) {
      if (options.signal?.aborted) throw error;
      throw new ApiError(0, "network_error", `${method.toUpperCase()} ${url}: ${String(error)}`);
    }
    if (!response.ok) throw await errorOf(response, method, path);
    if (response.status === 204) return undefined as ResponseBody<P, M>;
    const text = await response.text();
    return (text ? JSON.parse(text) : undefined) as ResponseBody<P, M>;
  }
}

async function errorOf(response: Response, method: string, path: string): Promise<ApiError> {
  const text = await response.text().catch(() => "");
  let body: unknown = text;
  let code = `http_${response.status}`;
  let message = `${method.toUpperCase()} ${path} answered ${response.status}`;
  try {
    body = JSON.parse(text);
    const envelope = (body as { error?: { code?: unknown; message?: unknown } }).error;
    if (envelope && typeof envelope.code === "string") code = envelope.code;
    if (envelope && typeof envelope.message === "string") message = envelope.message;
  } catch {
    // not JSON: keep the status line
  }
  const retry = Number(response.headers.get("retry-after"));
  return new ApiError(response.status, code, message, Number.isFinite(retry) && retry > 0 ? retry : null, body);
}
