/**
 * How a client proves who it is (CONTRACT §5): a JWT (`Authorization: Bearer`, `?token=` on
 * WebSockets) or an API key (`X-API-Key`, `?api_key=` on WebSockets). A token may be a
 * function so that every request and every reconnect gets a fresh one.
 */
export type TokenSource = string | (() => string | null | undefined | Promise<string | null | undefined>);

export interface Credentials {
  token?: TokenSource | null;
  apiKey?: string | null;
}

export async function resolveToken(source: TokenSource | null | undefined): Promise<string | null> {
  if (source == null) return null;
  const value = typeof source === "function" ? await source() : source;
  return value || null;
}

/** Request headers for REST calls. */
export async function authHeaders(credentials: Credentials): Promise<Record<string, string>> {
  const token = await resolveToken(credentials.token);
  if (token) return { authorization: `Bearer ${token}` };
  if (credentials.apiKey) return { "x-api-key": credentials.apiKey };
  return {};
}

/** Query parameters for a WebSocket handshake (browsers cannot set its headers). */
export async function authQuery(credentials: Credentials): Promise<Record<string, string>> {
  const token = await resolveToken(credentials.token);
  if (token) return { token };
  if (credentials.apiKey) return { api_key: credentials.apiKey };
  return {};
}
