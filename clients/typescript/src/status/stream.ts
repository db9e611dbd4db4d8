/**
 * StatusStream: follow pipeline sessions over the status hub's WebSocket, natively
 * (`ws://host:8000/ws`) or through API Gateway (`wss://<api>/<stage>`), and never miss or
 * repeat an event across drops.
 *
 *   const stream = new StatusStream({ url: "http://localhost:8000", token, sessions: ["render-1"] });
 *   stream.on("event", (e) => console.log(e.seq, e.agent, e.status));
 *   stream.session("render-1")?.agents.narrator?.progress;
 *
 * The same code serves both transports: the socket opens with no session in its URL
 * (API Gateway refuses any path after the stage) and joins each session by action,
 * with `last_seq` and `epoch` once it has seen some. After a drop it reconnects with
 * exponential backoff and jitter and resumes every session where it stopped; the
 * server replays what was missed (`recovered: true`) or sends a snapshot that stands in
 * for it (`recovered: false`). Events are deduplicated by seq per session and epoch.
 */
import { authQuery } from "../auth.js";
import { backoffDelay } from "../backoff.js";
import { Emitter } from "../emitter.js";
import { SessionCursor, type SessionState } from "./cursor.js";
import { CloseCode, type AgentStatusEvent, type ErrorFrame, type ServerFrame, type SnapshotFrame } from "./frames.js";
import {
  statusSocketUrl,
  type ConnectionState,
  type JoinOptions,
  type StatusStreamEvents,
  type StatusStreamOptions,
  type StreamError,
  type WebSocketFactory,
  type WebSocketLike,
} from "./options.js";

export * from "./options.js";

const OPEN = 1;
const CLIENT_GAVE_UP = 4000;

export class StatusStream extends Emitter<StatusStreamEvents> {
  private readonly options: StatusStreamOptions;
  private readonly cursors = new Map<string, SessionCursor>();
  private socket: WebSocketLike | null = null;
  private connectionState: ConnectionState = "idle";
  private attempt = 0;
  private stopped = false;
  private retryTimer: ReturnType<typeof setTimeout> | null = null;
  private pingTimer: ReturnType<typeof setInterval> | null = null;
  private deadTimer: ReturnType<typeof setTimeout> | null = null;
  private connectionId: string | null = null;
  private opening = false;

  constructor(options: StatusStreamOptions) {
    super();
    this.options = options;
    for (const session of options.sessions ?? []) this.cursors.set(session, new SessionCursor(session));
    if (options.autoConnect !== false) this.connect();
  }

  get state(): ConnectionState {
    return this.connectionState;
  }

  /** The server's id for the current connection (the target of `sendMessage`). */
  get connection(): string | null {
    return this.connectionId;
  }

  /** A session's agents, epoch and last seq; undefined when not joined. */
  session(sessionId: string): SessionState | undefined {
    return this.cursors.get(sessionId)?.state();
  }

  get sessions(): string[] {
    return [...this.cursors.keys()];
  }

  connect(): void {
    if (this.socket !== null || this.retryTimer !== null || this.opening) return;
    this.stopped = false;
    void this.open();
  }

  /** Follow a session (now, and after every reconnect). */
  join(sessionId: string, options: JoinOptions = {}): void {
    if (this.cursors.has(sessionId)) return;
    const cursor = new SessionCursor(sessionId, options.fromSeq ?? null, options.epoch ?? null);
    this.cursors.set(sessionId, cursor);
    this.sendJoin(cursor);
  }

  leave(sessionId: string): void {
    if (!this.cursors.delete(sessionId)) return;
    this.sendFrame({ action: "leaveRoom", room: sessionId, request_id: `leave:${sessionId}` });
  }

  /** Send `message` to every other member of a room. */
  broadcast(room: string, message: unknown): void {
    this.sendFrame({ action: "broadcast", room, message });
  }

  /** Send `message` to one connection that shares a room with this one. */
  sendMessage(targetId: string, message: unknown): void {
    this.sendFrame({ action: "sendMessage", targetId, message });
  }

  /** Stop for good: no reconnects. */
  close(): void {
    this.stopped = true;
    if (this.retryTimer !== null) clearTimeout(this.retryTimer);
    this.retryTimer = null;
    this.clearTimers();
    const socket = this.socket;
    this.socket = null;
    if (socket !== null) {
      socket.onclose = null;
      socket.onmessage = null;
      socket.close(1000, "client closed");
    }
    this.setState("closed");
  }

  /**
   * Every event as an async iterator (ends when `signal` aborts or the stream is closed).
   * Events are buffered from the moment this is called.
   */
  async *events(signal?: AbortSignal): AsyncGenerator<AgentStatusEvent, void, undefined> {
    const queue: AgentStatusEvent[] = [];
    let wake: (() => void) | null = null;
    const poke = (): void => {
      wake?.();
      wake = null;
    };
    const offEvent = this.on("event", (event) => {
      queue.push(event);
      poke();
    });
    const offState = this.on("state", (state) => {
      if (state === "closed") poke();
    });
    signal?.addEventListener("abort", poke, { once: true });
    try {
      while (!signal?.aborted) {
        const next = queue.shift();
        if (next !== undefined) {
          yield next;
          continue;
        }
        if (this.connectionState === "closed") return;
        await new Promise<void>((resolve) => {
          wake = resolve;
        });
      }
    } finally {
      offEvent();
      offState();
      signal?.removeEventListener("abort", poke);
    }
  }

  private async open(): Promise<void> {
    this.opening = true;
    try {
      await this.openSocket();
    } finally {
      this.opening = false;
    }
  }

  private async openSocket(): Promise<void> {
    this.setState(this.attempt === 0 ? "connecting" : "reconnecting");
    let url: URL;
    try {
      url = new URL(statusSocketUrl(this.options.url));
    } catch (error) {
      this.fail({ code: "invalid_url", message: String(error), fatal: true });
      return;
    }
    try {
      for (const [key, value] of Object.entries(await authQuery(this.options))) {
        url.searchParams.set(key, value);
      }
    } catch (error) {
      // the token function failed (an auth provider briefly away): try again later
      this.emit("error", { code: "token_unavailable", message: String(error), fatal: false });
      this.onDrop(0, "");
      return;
    }
    if (this.stopped) return;
    const Socket = this.options.WebSocket ?? (globalThis.WebSocket as unknown as WebSocketFactory | undefined);
    if (Socket === undefined) {
      this.fail({ code: "no_websocket", message: "no WebSocket class: pass options.WebSocket", fatal: true });
      return;
    }
    const socket = new Socket(url.toString());
    this.socket = socket;
    this.armDeadTimer();
    socket.onopen = () => {
      if (this.socket !== socket) return;
      this.setState("open");
      for (const cursor of this.cursors.values()) this.sendJoin(cursor);
      if (this.cursors.size === 0) this.sendFrame({ action: "ping" }); // API Gateway greets on a frame
      this.startPings();
    };
    socket.onmessage = (event) => {
      if (this.socket !== socket) return;
      this.armDeadTimer(false);
      this.handle(typeof event.data === "string" ? event.data : String(event.data));
    };
    socket.onerror = () => {
      // onclose follows and decides
    };
    socket.onclose = (event) => {
      if (this.socket !== socket) return;
      this.socket = null;
      this.connectionId = null;
      this.clearTimers();
      this.onDrop(event.code, event.reason);
    };
  }

  private onDrop(code: number, reason: string): void {
    if (this.stopped) return;
    const refreshable = typeof this.options.token === "function";
    if ((code === CloseCode.UNAUTHORIZED && !refreshable) || code === CloseCode.FORBIDDEN) {
      this.fail({
        code: code === CloseCode.UNAUTHORIZED ? "unauthorized" : "forbidden",
        message: reason || `closed with ${code}`,
        fatal: true,
      });
      return;
    }
    const delay = backoffDelay(this.attempt, this.options.backoff);
    this.attempt += 1;
    this.setState("reconnecting");
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      if (!this.stopped) void this.open();
    }, delay);
  }

  private handle(text: string): void {
    let frame: ServerFrame;
    try {
      frame = JSON.parse(text) as ServerFrame;
    } catch {
      return;
    }
    switch (frame.type) {
      case "connected":
        this.connectionId = frame.connection_id;
        return;
      case "snapshot":
        this.onSnapshot(frame);
        return;
      case "agent_status":
        this.onEvent(frame);
        return;
      case "error":
        this.onError(frame);
        return;
      case "message":
        this.emit("message", frame);
        return;
      default:
        return;
    }
  }

  private onSnapshot(snapshot: SnapshotFrame): void {
    const cursor = this.cursors.get(snapshot.session_id);
    if (cursor === undefined) return;
    const outcome = cursor.applySnapshot(snapshot);
    this.attempt = 0; // a snapshot means the connection works: the next drop starts afresh
    this.emit("snapshot", { sessionId: snapshot.session_id, snapshot, outcome });
    this.emit("session", cursor.state());
  }

  private onEvent(event: AgentStatusEvent): void {
    const cursor = this.cursors.get(event.session_id);
    if (cursor === undefined || !cursor.applyEvent(event)) return;
    this.emit("event", event);
    this.emit("session", cursor.state());
  }

  private onError(frame: ErrorFrame): void {
    const requestId = typeof frame.request_id === "string" ? frame.request_id : "";
    const sessionId = requestId.startsWith("join:") ? requestId.slice(5) : undefined;
    const fatal =
      sessionId !== undefined &&
      ["forbidden_session", "session_not_found", "invalid_room"].includes(frame.code);
    if (fatal && sessionId !== undefined) this.cursors.delete(sessionId);
    this.emit("error", { code: frame.code, message: frame.message, sessionId, fatal });
  }

  private sendJoin(cursor: SessionCursor): void {
    this.sendFrame({
      action: "joinRoom",
      room: cursor.sessionId,
      request_id: `join:${cursor.sessionId}`,
      ...cursor.resumeFields(),
    });
  }

  private sendFrame(frame: Record<string, unknown>): void {
    const socket = this.socket;
    if (socket === null || socket.readyState !== OPEN) return; // re-sent on (re)connect
    socket.send(JSON.stringify(frame));
  }

  private startPings(): void {
    const every = this.options.pingIntervalMs ?? 60_000;
    this.pingTimer = setInterval(() => {
      this.sendFrame({ action: "ping" });
      this.armDeadTimer();
    }, every);
  }

  /** Arms (or with `restart` false, only clears) the dead-socket timer. */
  private armDeadTimer(restart = true): void {
    if (this.deadTimer !== null) clearTimeout(this.deadTimer);
    this.deadTimer = null;
    if (!restart) return;
    const socket = this.socket;
    this.deadTimer = setTimeout(() => {
      if (this.socket === socket && socket !== null) {
        socket.close(CLIENT_GAVE_UP, "no answer from the server");
        // some implementations never fire onclose for a dead peer: drop it ourselves
        socket.onclose?.({ code: CLIENT_GAVE_UP, reason: "no answer from the server" });
      }
    }, this.options.deadAfterMs ?? 15_000);
  }

  private clearTimers(): void {
    if (this.pingTimer !== null) clearInterval(this.pingTimer);
    if (this.deadTimer !== null) clearTimeout(this.deadTimer);
    this.pingTimer = null;
    this.deadTimer = null;
  }

  private fail(error: StreamError): void {
    this.emit("error", error);
    this.stopped = true;
    this.clearTimers();
    this.setState("closed");
  }

  private setState(state: ConnectionState): void {
    if (this.connectionState === state) return;
    this.connectionState = state;
    this.emit("state", state);
  }
}
