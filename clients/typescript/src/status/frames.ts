/** The status hub's WebSocket frames (CONTRACT §2.1, docs/websocket.md). */

export type AgentStatus = "queued" | "running" | "completed" | "failed" | "cancelled" | "info";

export interface AgentStatusEvent {
  type: "agent_status";
  session_id: string;
  seq: number;
  agent: string;
  status: AgentStatus;
  progress: number | null;
  message: string | null;
  data: Record<string, unknown>;
  /** ISO 8601 UTC */
  ts: string;
}

export interface ConnectedFrame {
  type: "connected";
  connection_id: string;
  session_id: string | null;
}

export interface SnapshotFrame {
  type: "snapshot";
  session_id: string;
  epoch: string;
  last_seq: number;
  recovered: boolean;
  agents: Record<string, AgentStatusEvent>;
}

export interface ErrorFrame {
  type: "error";
  code: string;
  message: string;
  request_id?: string | number | null;
}

export interface MessageFrame {
  type: "message";
  from: string;
  room?: string;
  message: unknown;
}

export type ServerFrame =
  | ConnectedFrame
  | SnapshotFrame
  | AgentStatusEvent
  | ErrorFrame
  | MessageFrame
  | { type: "pong"; request_id?: string | number | null }
  | { type: "joined"; room: string; request_id?: string | number | null }
  | { type: "left"; room: string; request_id?: string | number | null }
  | { type: "sent"; room?: string; target?: string; request_id?: string | number | null }
  | { type: "keepalive" };

/** Close codes the server uses (docs/websocket.md). */
export const CloseCode = {
  NORMAL: 1000,
  GOING_AWAY: 1001,
  TOO_BIG: 1009,
  INTERNAL: 1011,
  RESTARTING: 1012,
  TRY_AGAIN: 1013,
  SLOW_CONSUMER: 4008,
  UNAUTHORIZED: 4401,
  FORBIDDEN: 4403,
} as const;
