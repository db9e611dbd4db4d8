/** What the interview's `events` data channel carries (docs/interview.md), and its REST shapes. */

export type InterviewStatus = "created" | "connecting" | "active" | "ended" | "failed" | "expired";

export interface TranscriptItem {
  id?: string;
  role: "candidate" | "interviewer";
  text: string;
  /** ISO 8601 UTC */
  start?: string | null;
  end?: string | null;
  interrupted?: boolean;
  final?: boolean;
}

export type InterviewEvent =
  | { type: "state"; status: InterviewStatus; reason?: string | null }
  | { type: "transcript"; item: TranscriptItem }
  | { type: "heartbeat"; ts: number }
  | { type: "pong"; ts: number }
  | { type: "question"; index: number }
  /** the candidate began to speak (ISO 8601 UTC), before anything is transcribed */
  | { type: "speech_started"; ts: string }
  /** a real interruption: the reply was cut; `heard` is the line as far as it played */
  | { type: "barge_in"; dropped_ms: number; heard?: string }
  /** speech over the interviewer that was a backchannel or noise: its line went on */
  | { type: "resumed"; held_ms: number; words: string }
  | { type: "turn_metrics"; metrics: Record<string, number | null> }
  | { type: "interviewer"; [key: string]: unknown }
  | { type: "interview_complete"; reason?: "time_up" }
  | { type: "error"; code?: string; stage?: string; message?: string };

export interface IceServer {
  urls: string[] | string;
  username?: string;
  credential?: string;
}

export interface StartInterview {
  user_id: string;
  role?: string;
  job_description?: string;
  questions?: string[];
  rubric?: RubricCriterion[];
  /** follow-ups per question, 0 to 5 (default: the server's INTERVIEW_MAX_FOLLOW_UPS) */
  max_follow_ups?: number;
  language?: string;
  max_duration_s?: number;
  webhook_url?: string;
  record?: boolean;
}

export interface RubricCriterion {
  name: string;
  description: string;
  /** scores run from 1 to scale (2 to 10, default 5) */
  scale?: number;
}

/** given: from the start request; drafted: from the job description; default: neither */
export type QuestionsSource = "given" | "drafted" | "default";

export interface InterviewStarted {
  session_id: string;
  status: InterviewStatus;
  ice_servers: IceServer[];
  /** ISO 8601 UTC */
  expires_at: string;
  questions?: string[];
  questions_source?: QuestionsSource;
}

export interface InterviewFinal {
  session_id: string;
  status: InterviewStatus;
  end_reason?: string | null;
  [key: string]: unknown;
}

export interface InterviewResults {
  session_id: string;
  status: InterviewStatus;
  transcript: (TranscriptItem & { start: string | null; end: string | null })[];
  summary: string | null;
  scores: { criterion: string; score: number; max?: number; evidence: string[] }[] | null;
  /** criteria that no quote of the candidate supported: no score rather than an unfounded one */
  unscored?: { criterion: string; reason: string }[];
  evaluation_notes?: string[];
  plan?: {
    role: string | null;
    questions: string[];
    questions_source: QuestionsSource;
    max_follow_ups: number;
    max_duration_s: number;
    rubric: Required<RubricCriterion>[];
  };
  metrics: Record<string, unknown>;
  evaluation?: "pending" | "ready" | "failed" | "none";
  recording_url?: string | null;
  [key: string]: unknown;
}
