/**
 * React hooks over StatusStream and InterviewCall (`@pipeline-backend/client/react`).
 * React is an optional peer dependency: only this entry point imports it.
 */
import {
  createContext,
  createElement,
  useCallback,
  useContext,
  useEffect,
  useRef,
  useState,
  type ReactNode,
} from "react";
import type { Credentials } from "../auth.js";
import { InterviewCall, type CallPhase, type InterviewCallOptions } from "../interview/call.js";
import type { InterviewEvent, InterviewResults, StartInterview, TranscriptItem } from "../interview/events.js";
import type { SessionState } from "../status/cursor.js";
import type { AgentStatusEvent } from "../status/frames.js";
import {
  StatusStream,
  type ConnectionState,
  type StatusStreamOptions,
  type StreamError,
} from "../status/stream.js";

/** Where the service is and who the caller is, for every hook below it. */
export interface PipelineConfig extends Credentials {
  /** The service's origin, e.g. `http://localhost:8000`. */
  baseUrl: string;
  /** The status WebSocket's URL when it is not the origin's `/ws` (API Gateway's `wss://…/<stage>`). */
  statusUrl?: string;
  WebSocket?: StatusStreamOptions["WebSocket"];
}

const PipelineContext = createContext<PipelineConfig | null>(null);

/** `<PipelineProvider config={{ baseUrl, token }}>`: the hooks then need no options. */
export function PipelineProvider({ config, children }: { config: PipelineConfig; children?: ReactNode }) {
  return createElement(PipelineContext.Provider, { value: config }, children);
}

export function usePipelineConfig(): PipelineConfig | null {
  return useContext(PipelineContext);
}

export interface SessionStatusOptions extends Credentials {
  /** The service's origin or the WebSocket URL (see StatusStreamOptions.url); default: the provider's. */
  url?: string;
  /** Replay the history the server holds when joining (default true). */
  replay?: boolean;
  /** Keep at most this many events in `events` (default 500). */
  maxEvents?: number;
  WebSocket?: StatusStreamOptions["WebSocket"];
}

export interface SessionStatus {
  connection: ConnectionState;
  /** Each agent's latest event. */
  agents: Record<string, AgentStatusEvent>;
  /** Events in seq order, each once (the last `maxEvents`). */
  events: AgentStatusEvent[];
  lastSeq: number;
  epoch: string | null;
  /** False until the first snapshot; true again after a `recovered: false` one */
  synced: boolean;
  /** True when a snapshot stood in for events this hook never saw. */
  gap: boolean;
  error: StreamError | null;
}

const EMPTY: SessionStatus = {
  connection: "idle",
  agents: {},
  events: [],
  lastSeq: 0,
  epoch: null,
  synced: false,
  gap: false,
  error: null,
};

/** Follows one pipeline session: its agents' latest states and its events, live. */
export function useSessionStatus(
  sessionId: string | null | undefined,
  options: SessionStatusOptions = {},
): SessionStatus {
  const config = useContext(PipelineContext);
  const merged: SessionStatusOptions = {
    token: config?.token,
    apiKey: config?.apiKey,
    WebSocket: config?.WebSocket,
    ...options,
    url: options.url ?? config?.statusUrl ?? config?.baseUrl,
  };
  const [status, setStatus] = useState<SessionStatus>(EMPTY);
  const optionsRef = useRef(merged);
  optionsRef.current = merged;
  const { url, apiKey } = merged;
  const token = typeof merged.token === "string" ? merged.token : null;

  useEffect(() => {
    setStatus(EMPTY);
    if (!sessionId) return undefined;
    if (!url) {
      setStatus({ ...EMPTY, error: { code: "no_url", message: "give options.url or a PipelineProvider", fatal: true } });
      return undefined;
    }
    const current = optionsRef.current;
    const limit = current.maxEvents ?? 500;
    const stream = new StatusStream({
      url,
      token: current.token,
      apiKey,
      WebSocket: current.WebSocket,
      autoConnect: false,
    });
    const apply = (state: SessionState): void =>
      setStatus((previous) => ({
        ...previous,
        agents: state.agents,
        lastSeq: state.lastSeq,
        epoch: state.epoch,
        synced: state.synced,
      }));
    const offs = [
      stream.on("state", (connection) => setStatus((previous) => ({ ...previous, connection }))),
      stream.on("session", apply),
      stream.on("snapshot", ({ outcome }) => {
        if (outcome === "reset") setStatus((previous) => ({ ...previous, gap: previous.synced || previous.gap }));
      }),
      stream.on("event", (event) =>
        setStatus((previous) => ({ ...previous, events: [...previous.events, event].slice(-limit) })),
      ),
      stream.on("error", (error) => setStatus((previous) => ({ ...previous, error }))),
    ];
    stream.join(sessionId, current.replay === false ? {} : { fromSeq: 0 });
    stream.connect();
    return () => {
      for (const off of offs) off();
      stream.close();
    };
  }, [sessionId, url, apiKey, token]);

  return status;
}

export type UseInterviewOptions = Partial<InterviewCallOptions>;

export interface InterviewState {
  phase: CallPhase;
  sessionId: string | null;
  /** Transcript lines as they are recognised and spoken (latest version of each line). */
  transcript: TranscriptItem[];
  events: InterviewEvent[];
  /** The interviewer's audio: put it on an <audio autoPlay> element. */
  remoteStream: MediaStream | null;
  results: InterviewResults | null;
  error: Error | null;
  start: (body: StartInterview) => Promise<void>;
  end: () => Promise<InterviewResults | null>;
}

/** Runs one interview call at a time; the call is released on unmount. */
export function useInterview(options: UseInterviewOptions = {}): InterviewState {
  const config = useContext(PipelineContext);
  const optionsRef = useRef(options);
  optionsRef.current = options;
  const configRef = useRef(config);
  configRef.current = config;
  const callRef = useRef<InterviewCall | null>(null);
  const [phase, setPhase] = useState<CallPhase>("idle");
  const [sessionId, setSessionId] = useState<string | null>(null);
  const [transcript, setTranscript] = useState<TranscriptItem[]>([]);
  const [events, setEvents] = useState<InterviewEvent[]>([]);
  const [remoteStream, setRemoteStream] = useState<MediaStream | null>(null);
  const [results, setResults] = useState<InterviewResults | null>(null);
  const [error, setError] = useState<Error | null>(null);

  useEffect(() => () => callRef.current?.release(), []);

  const start = useCallback(async (body: StartInterview) => {
    callRef.current?.release();
    const config = configRef.current;
    const baseUrl = optionsRef.current.baseUrl ?? config?.baseUrl;
    if (!baseUrl) {
      setError(new Error("give options.baseUrl or a PipelineProvider"));
      setPhase("error");
      return;
    }
    const call = new InterviewCall({
      token: config?.token,
      apiKey: config?.apiKey,
      ...optionsRef.current,
      baseUrl,
    });
    callRef.current = call;
    setTranscript([]);
    setEvents([]);
    setResults(null);
    setError(null);
    call.on("phase", setPhase);
    call.on("track", setRemoteStream);
    call.on("error", setError);
    call.on("event", (event) => {
      setEvents((previous) => [...previous, event]);
      if (event.type === "transcript") setTranscript((previous) => upsert(previous, event.item));
    });
    try {
      const started = await call.start(body);
      setSessionId(started.session_id);
    } catch {
      // reported through the "error" listener and phase "error"
    }
  }, []);

  const end = useCallback(async () => {
    const call = callRef.current;
    if (call === null || call.sessionId === null) return null;
    try {
      const final = await call.end();
      setResults(final);
      return final;
    } catch (caught) {
      setError(caught instanceof Error ? caught : new Error(String(caught)));
      return null;
    }
  }, []);

  return { phase, sessionId, transcript, events, remoteStream, results, error, start, end };
}

function upsert(lines: TranscriptItem[], item: TranscriptItem): TranscriptItem[] {
  if (item.id === undefined) return [...lines, item];
  const index = lines.findIndex((line) => line.id === item.id);
  if (index < 0) return [...lines, item];
  const copy = lines.slice();
  copy[index] = item;
  return copy;
}
