export { ApiClient, ApiError } from "./http.js";
export type {
  ApiClientOptions,
  HttpMethod,
  PathsFor,
  RequestBody,
  RequestOptions,
  ResponseBody,
  paths,
  components,
  operations,
} from "./http.js";
export type { Credentials, TokenSource } from "./auth.js";
export { backoffDelay } from "./backoff.js";
export type { BackoffOptions } from "./backoff.js";
export { Emitter } from "./emitter.js";
export { StatusStream, statusSocketUrl } from "./status/stream.js";
export type {
  ConnectionState,
  JoinOptions,
  SnapshotApplied,
  StatusStreamEvents,
  StatusStreamOptions,
  StreamError,
  WebSocketFactory,
  WebSocketLike,
} from "./status/stream.js";
export { SessionCursor } from "./status/cursor.js";
export type { SessionState } from "./status/cursor.js";
export { CloseCode } from "./status/frames.js";
export type {
  AgentStatus,
  AgentStatusEvent,
  ConnectedFrame,
  ErrorFrame,
  MessageFrame,
  ServerFrame,
  SnapshotFrame,
} from "./status/frames.js";
export { InterviewCall } from "./interview/call.js";
export type { CallPhase, InterviewCallEvents, InterviewCallOptions } from "./interview/call.js";
export type {
  IceServer,
  InterviewEvent,
  InterviewFinal,
  InterviewResults,
  InterviewStarted,
  InterviewStatus,
  QuestionsSource,
  RubricCriterion,
  StartInterview,
  TranscriptItem,
} from "./interview/events.js";
