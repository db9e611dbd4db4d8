/** The resume rules of SessionCursor and the backoff, without a socket. */
import { describe, expect, it } from "vitest";
import { SessionCursor, backoffDelay, type AgentStatusEvent, type SnapshotFrame } from "../src/index.js";

const event = (seq: number, agent = "narrator"): AgentStatusEvent => ({
  type: "agent_status",
  session_id: "s",
  seq,
  agent,
  status: "running",
  progress: null,
  message: null,
  data: {},
  ts: "2026-11-22T10:00:00.000Z",
});
const snapshot = (last_seq: number, recovered: boolean, epoch = "e1", agents = {}): SnapshotFrame => ({
  type: "snapshot",
  session_id: "s",
  epoch,
  last_seq,
  recovered,
  agents,
});

describe("SessionCursor", () => {
  it("drops events before the first snapshot and repeats after it", () => {
    const cursor = new SessionCursor("s");
    expect(cursor.applyEvent(event(1))).toBe(false);
    cursor.applySnapshot(snapshot(3, false));
    expect(cursor.applyEvent(event(3))).toBe(false);
    expect(cursor.applyEvent(event(4))).toBe(true);
    expect(cursor.applyEvent(event(4))).toBe(false);
    expect(cursor.resumeFields()).toEqual({ last_seq: 4, epoch: "e1" });
  });

  it("keeps its place through a recovered snapshot and lets the replay through", () => {
    const cursor = new SessionCursor("s");
    cursor.applySnapshot(snapshot(2, false));
    expect(cursor.applySnapshot(snapshot(5, true, "e1", { narrator: event(5) }))).toBe("resumed");
    expect(cursor.lastSeq).toBe(2);
    expect([3, 4, 5, 5].map((seq) => cursor.applyEvent(event(seq)))).toEqual([true, true, true, false]);
  });

  it("jumps to a snapshot that is not recovered, or of another epoch", () => {
    const cursor = new SessionCursor("s", 2, "e1");
    expect(cursor.applySnapshot(snapshot(9, false, "e1", { editor: event(9, "editor") }))).toBe("reset");
    expect(cursor.lastSeq).toBe(9);
    expect(Object.keys(cursor.agents)).toEqual(["editor"]);
    expect(cursor.applySnapshot(snapshot(1, true, "e2"))).toBe("reset");
    expect(cursor.state()).toMatchObject({ lastSeq: 1, epoch: "e2" });
  });

  it("forgets the placeholder epoch of an empty history", () => {
    const cursor = new SessionCursor("s");
    cursor.applySnapshot(snapshot(0, false, "0"));
    cursor.applyEvent(event(1));
    expect(cursor.resumeFields()).toEqual({ last_seq: 1 });
  });
});

describe("backoffDelay", () => {
  it("grows, is capped, and is jittered within [ceiling/2, ceiling]", () => {
    expect(backoffDelay(0, { initialMs: 100 }, () => 0)).toBe(50);
    expect(backoffDelay(0, { initialMs: 100 }, () => 1)).toBe(100);
    expect(backoffDelay(3, { initialMs: 100 }, () => 1)).toBe(800);
    expect(backoffDelay(30, { initialMs: 100, maxMs: 5000 }, () => 1)).toBe(5000);
  });
});
