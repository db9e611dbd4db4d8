import { inject } from "vitest";
import { WebSocket } from "ws";
import { ApiClient } from "../../src/index.js";
import type { WebSocketFactory, WebSocketLike } from "../../src/index.js";
import { mintToken } from "./jwt.js";

export const service = () => inject("service");

export function agentApi(): ApiClient {
  const { baseUrl, jwtSecret } = service();
  return new ApiClient({ baseUrl, token: mintToken(jwtSecret, "test-agent", "agent") });
}

export function userToken(sub = "viewer", role = "service"): string {
  return mintToken(service().jwtSecret, sub, role);
}

let counter = 0;
export function sessionId(prefix: string): string {
  counter += 1;
  return `${prefix}-${process.pid}-${Date.now().toString(36)}-${counter}`;
}

export async function publish(api: ApiClient, session: string, agent: string, n: number, progress = 0.5): Promise<number> {
  const answer = await api.request("post", "/api/sessions/{session_id}/events", {
    path: { session_id: session },
    body: { agent, status: "running", progress, message: `step ${n}` },
  });
  return answer.seq;
}

/** The `ws` package's WebSocket, remembering every socket it opened (so a test can kill one). */
export function recordingWebSocket(): { Socket: WebSocketFactory; sockets: WebSocket[] } {
  const sockets: WebSocket[] = [];
  class Recording extends WebSocket {
    constructor(url: string) {
      super(url);
      sockets.push(this);
    }
  }
  return { Socket: Recording as unknown as WebSocketFactory & (new (url: string) => WebSocketLike), sockets };
}

export async function until<T>(what: string, probe: () => T | undefined | null | false, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = probe();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
