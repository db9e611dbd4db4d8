/** StatusStream's options, events and socket shape. */
import type { Credentials } from "../auth.js";
import type { BackoffOptions } from "../backoff.js";
import type { SessionState, SnapshotOutcome } from "./cursor.js";
import type { AgentStatusEvent, MessageFrame, SnapshotFrame } from "./frames.js";

/** What StatusStream needs of a WebSocket: the browser's, Node 22's, or the `ws` package's. */
export interface WebSocketLike {
  readonly readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  onopen: ((event: unknown) => void) | null;
  onmessage: ((event: { data: unknown }) => void) | null;
  onclose: ((event: { code: number; reason: string }) => void) | null;
  onerror: ((event: unknown) => void) | null;
}

export type WebSocketFactory = new (url: string) => WebSocketLike;

export type ConnectionState = "idle" | "connecting" | "open" | "reconnecting" | "closed";

export interface StreamError {
  code: string;
  message: string;
  sessionId?: string;
  /** True when the stream (or that session) stopped because of it. */
  fatal: boolean;
}

export interface SnapshotApplied {
  sessionId: string;
  snapshot: SnapshotFrame;
  /** "reset": the snapshot stands in for missed events; "resumed": the replay follows. */
  outcome: SnapshotOutcome;
}

export interface StatusStreamEvents extends Record<string, unknown> {
  /** Each agent_status event, once, in seq order per session. */
  event: AgentStatusEvent;
  snapshot: SnapshotApplied;
  /** The session's state after any change (snapshot or event). */
  session: SessionState;
  state: ConnectionState;
  error: StreamError;
  /** `broadcast` and `sendMessage` deliveries from other clients. */
  message: MessageFrame;
}

export interface JoinOptions {
  /** Replay the history after this seq (0: all the server still holds). Default: from now. */
  fromSeq?: number;
  /** The epoch `fromSeq` belongs to. */
  epoch?: string;
}

export interface StatusStreamOptions extends Credentials {
  /**
   * `http(s)://host[:port]` (the service's origin: `/ws` is appended), or a WebSocket URL
   * used as given: `ws(s)://host/ws` natively, `wss://<api-id>.execute-api.<region>.amazonaws.com/<stage>`
   * through API Gateway.
   */
  url: string;
  /** Sessions to join on connect. */
  sessions?: string[];
  /** The WebSocket class (default: the platform's `WebSocket`). */
  WebSocket?: WebSocketFactory;
  backoff?: BackoffOptions;
  /** `{"action":"ping"}` this often, ms (default 60 000; API Gateway drops idle sockets at 10 min). */
  pingIntervalMs?: number;
  /** No frame this long after a ping, or after opening, ms: the socket is presumed dead (default 15 000). */
  deadAfterMs?: number;
  /** Connect in the constructor (default true). */
  autoConnect?: boolean;
}


export function statusSocketUrl(url: string): string {
  const parsed = new URL(url);
  if (parsed.protocol === "http:" || parsed.protocol === "https:") {
    parsed.protocol = parsed.protocol === "https:" ? "wss:" : "ws:";
    if (parsed.pathname === "" || parsed.pathname === "/") parsed.pathname = "/ws";
  }
  return parsed.toString();
}
