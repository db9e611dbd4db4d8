/**
 * One session's position in its history, and what to do with each frame: the pure core
 * of StatusStream (no socket), so its rules are testable on their own.
 *
 * - A snapshot with `recovered: true` is followed by every event after our `last_seq`:
 *   keep the cursor, refresh the agents, and let the replay through.
 * - A snapshot with `recovered: false`, or one from another epoch, or the first one
 *   (when we asked for no replay) stands in for what was missed: the cursor jumps to
 *   its `last_seq` and its agents replace ours.
 * - An event is delivered only when its seq is past the cursor: never twice.
 * - The epoch of an empty history (last_seq 0) is not kept: the first event starts a new
 *   one that only the next snapshot tells, so until then a resume sends no epoch.
 */
import type { AgentStatusEvent, SnapshotFrame } from "./frames.js";

export interface SessionState {
  sessionId: string;
  epoch: string | null;
  /** The highest seq delivered (or stood in for by a snapshot). */
  lastSeq: number;
  /** Each agent's latest event. */
  agents: Record<string, AgentStatusEvent>;
  /** False until the first snapshot arrives. */
  synced: boolean;
}

export type SnapshotOutcome = "resumed" | "reset";

export class SessionCursor {
  epoch: string | null = null;
  lastSeq: number | null;
  agents: Record<string, AgentStatusEvent> = {};
  synced = false;

  /** @param fromSeq replay from this seq (0: the whole history held); null: from now on */
  constructor(
    readonly sessionId: string,
    fromSeq: number | null = null,
    epoch: string | null = null,
  ) {
    this.lastSeq = fromSeq;
    this.epoch = epoch;
  }

  /** What to send in `joinRoom` so the server replays what we have not seen. */
  resumeFields(): { last_seq?: number; epoch?: string } {
    const fields: { last_seq?: number; epoch?: string } = {};
    if (this.lastSeq !== null) fields.last_seq = this.lastSeq;
    if (this.lastSeq !== null && this.epoch !== null) fields.epoch = this.epoch;
    return fields;
  }

  applySnapshot(snapshot: SnapshotFrame): SnapshotOutcome {
    const sameEpoch = this.epoch === null || this.epoch === snapshot.epoch;
    const resumed = snapshot.recovered && sameEpoch && this.lastSeq !== null;
    // An empty history's epoch is a placeholder: the first publish starts a new one, which
    // no event carries, so resuming with it would look like a lost history.
    this.epoch = snapshot.last_seq === 0 ? null : snapshot.epoch;
    this.synced = true;
    if (!resumed) {
      this.lastSeq = snapshot.last_seq;
      this.agents = { ...snapshot.agents };
      return "reset";
    }
    for (const [agent, event] of Object.entries(snapshot.agents)) {
      // the replay that follows brings the rest; keep what is newest
      const mine = this.agents[agent];
      if (mine === undefined || mine.seq < event.seq) this.agents[agent] = event;
    }
    return "resumed";
  }

  /** True when the event is new (and now recorded); false for a duplicate or a stray. */
  applyEvent(event: AgentStatusEvent): boolean {
    if (!this.synced || this.lastSeq === null || event.seq <= this.lastSeq) return false;
    this.lastSeq = event.seq;
    const mine = this.agents[event.agent];
    if (mine === undefined || mine.seq < event.seq) this.agents[event.agent] = event;
    return true;
  }

  state(): SessionState {
    return {
      sessionId: this.sessionId,
      epoch: this.epoch,
      lastSeq: this.lastSeq ?? 0,
      agents: { ...this.agents },
      synced: this.synced,
    };
  }
}
