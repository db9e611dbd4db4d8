/**
 * StatusStream against the real service: publish over REST, kill the socket under the
 * client, and check the client resumes with last_seq and epoch without a gap or a repeat;
 * natively and through the API Gateway stand-in (the service's bridge, @connections).
 */
import { afterEach, describe, expect, it } from "vitest";
import { ApiClient, StatusStream, type AgentStatusEvent, type SnapshotApplied } from "../src/index.js";
import { agentApi, publish, recordingWebSocket, service, sessionId, until, userToken } from "./support/helpers.js";

const streams: StatusStream[] = [];
afterEach(() => {
  for (const stream of streams.splice(0)) stream.close();
});

function open(
  mode: "native" | "gateway",
  sessions: string[],
  token = userToken(),
  backoff = { initialMs: 800, maxMs: 2000 },
) {
  const { Socket, sockets } = recordingWebSocket();
  const url = mode === "native" ? service().baseUrl : service().gatewayUrl;
  const stream = new StatusStream({
    url,
    token,
    WebSocket: Socket,
    autoConnect: false,
    backoff,
  });
  for (const session of sessions) stream.join(session, { fromSeq: 0 });
  const events: AgentStatusEvent[] = [];
  const snapshots: SnapshotApplied[] = [];
  stream.on("event", (event) => events.push(event));
  stream.on("snapshot", (snapshot) => snapshots.push(snapshot));
  stream.connect();
  streams.push(stream);
  return { stream, sockets, events, snapshots };
}

const seqs = (events: AgentStatusEvent[], session: string) =>
  events.filter((e) => e.session_id === session).map((e) => e.seq);
const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

describe.each(["native", "gateway"] as const)("StatusStream (%s)", (mode) => {
  it("replays, follows live events and exposes each agent's latest state", async () => {
    const api = agentApi();
    const session = sessionId(`live-${mode}`);
    await publish(api, session, "script_writer", 1, 0.1);
    await publish(api, session, "narrator", 2, 0.2);
    const { stream, events } = open(mode, [session]);
    await until("the replay", () => events.length === 2);
    await publish(api, session, "script_writer", 3, 0.9);
    await until("the live event", () => events.length === 3);
    expect(seqs(events, session)).toEqual([1, 2, 3]);
    const state = stream.session(session)!;
    expect(state.lastSeq).toBe(3);
    expect(state.epoch).toMatch(/.+/);
    expect(state.agents.script_writer!.progress).toBe(0.9);
    expect(state.agents.narrator!.seq).toBe(2);
    expect(stream.state).toBe("open");
    expect(stream.connection).toMatch(/.+/);
  });

  it("resumes after the socket dies, with no gap and no repeat", async () => {
    const api = agentApi();
    const session = sessionId(`drop-${mode}`);
    const { stream, sockets, events, snapshots } = open(mode, [session]);
    await until("the first snapshot", () => snapshots.length === 1);
    for (let n = 1; n <= 3; n += 1) await publish(api, session, "editor", n);
    await until("three events", () => events.length === 3);

    sockets.at(-1)!.terminate(); // the TCP connection dies without a close frame
    await until("reconnecting", () => stream.state === "reconnecting");
    for (let n = 4; n <= 8; n += 1) await publish(api, session, "editor", n); // while it is down
    await until("the events missed while down", () => events.length === 8, 15_000);
    await publish(api, session, "publisher", 9);
    await until("the next live event", () => events.length === 9);

    expect(sockets.length).toBe(2);
    expect(seqs(events, session)).toEqual(range(1, 9));
    const resumed = snapshots.at(-1)!;
    expect(resumed.outcome).toBe("resumed"); // recovered: true, the replay filled the gap
    expect(resumed.snapshot.recovered).toBe(true);
    expect(stream.session(session)!.agents.publisher!.seq).toBe(9);
  });

  it("never delivers an event twice while the socket keeps dying under a publisher", async () => {
    const api = agentApi();
    const session = sessionId(`storm-${mode}`);
    const { stream, sockets, events, snapshots } = open(mode, [session], userToken(), {
      initialMs: 100,
      maxMs: 300,
    });
    await until("the first snapshot", () => snapshots.length === 1);
    const total = 40;
    const publisher = (async () => {
      for (let n = 1; n <= total; n += 1) {
        await publish(api, session, n % 2 ? "illustrator" : "narrator", n);
        await new Promise((resolve) => setTimeout(resolve, 25));
      }
    })();
    for (let kill = 0; kill < 3; kill += 1) {
      const before = events.length;
      await until("progress before the next kill", () => events.length > before && stream.state === "open");
      sockets.at(-1)!.terminate();
    }
    await publisher;
    await until("every event", () => events.length >= total, 20_000);
    await new Promise((resolve) => setTimeout(resolve, 300)); // anything extra would show now
    const delivered = seqs(events, session);
    expect(new Set(delivered).size).toBe(delivered.length); // never twice
    expect(delivered).toEqual([...delivered].sort((a, b) => a - b)); // in order
    expect(delivered.at(-1)).toBe(total);
    // no gap, unless a recovered:false snapshot stood in for it (the history holds 20)
    const standIns = snapshots.filter((s) => s.outcome === "reset").map((s) => s.snapshot.last_seq);
    for (const seq of range(1, total).filter((n) => !delivered.includes(n))) {
      expect(standIns.some((last) => last >= seq)).toBe(true);
    }
    expect(sockets.length).toBeGreaterThanOrEqual(4);
  });

  it("applies a recovered:false snapshot when the history no longer holds the gap", async () => {
    const api = agentApi();
    const session = sessionId(`gap-${mode}`);
    for (let n = 1; n <= 30; n += 1) await publish(api, session, `agent${n % 3}`, n); // history holds 20
    const first = open(mode, [session]);
    await until("the snapshot", () => first.snapshots.length === 1);
    const epoch = first.stream.session(session)!.epoch!;
    first.stream.close();

    const { Socket } = recordingWebSocket();
    const url = mode === "native" ? service().baseUrl : service().gatewayUrl;
    const stream = new StatusStream({ url, token: userToken(), WebSocket: Socket, autoConnect: false });
    streams.push(stream);
    const snapshots: SnapshotApplied[] = [];
    const events: AgentStatusEvent[] = [];
    stream.on("snapshot", (s) => snapshots.push(s));
    stream.on("event", (e) => events.push(e));
    stream.join(session, { fromSeq: 2, epoch }); // seq 3.. fell out of the history
    stream.connect();
    await until("the snapshot", () => snapshots.length === 1);
    expect(snapshots[0]!.snapshot.recovered).toBe(false);
    expect(snapshots[0]!.outcome).toBe("reset");
    const state = stream.session(session)!;
    expect(state.lastSeq).toBe(30);
    expect(Object.keys(state.agents).sort()).toEqual(["agent0", "agent1", "agent2"]);
    expect(state.agents.agent0!.seq).toBe(30);
    await publish(api, session, "agent1", 31);
    await until("the live event", () => events.length === 1);
    expect(events.map((e) => e.seq)).toEqual([31]);
  });

  it("starts afresh when the epoch it resumes from is not the session's", async () => {
    const api = agentApi();
    const session = sessionId(`epoch-${mode}`);
    for (let n = 1; n <= 3; n += 1) await publish(api, session, "narrator", n);
    const { Socket } = recordingWebSocket();
    const url = mode === "native" ? service().baseUrl : service().gatewayUrl;
    const stream = new StatusStream({ url, token: userToken(), WebSocket: Socket, autoConnect: false });
    streams.push(stream);
    const snapshots: SnapshotApplied[] = [];
    stream.on("snapshot", (s) => snapshots.push(s));
    stream.join(session, { fromSeq: 1, epoch: "an-old-epoch" });
    stream.connect();
    await until("the snapshot", () => snapshots.length === 1);
    expect(snapshots[0]!.snapshot.recovered).toBe(false);
    expect(stream.session(session)!.lastSeq).toBe(3);
    expect(stream.session(session)!.epoch).not.toBe("an-old-epoch");
  });

  it("reports a session the token may not follow, and keeps the others", async () => {
    const api = agentApi();
    const theirs = sessionId(`theirs-${mode}`);
    // a session owned by someone else: created by "owner" over REST
    const owner = new ApiClient({
      baseUrl: service().baseUrl,
      token: userToken("owner", "user"),
    });
    await owner.request("post", "/api/sessions", { body: { prompt: "a cat", session_id: theirs } });
    const { stream, events } = open(mode, [theirs], userToken("stranger", "user"));
    const errors: string[] = [];
    stream.on("error", (e) => errors.push(`${e.code}:${e.sessionId}:${e.fatal}`));
    await until("the refusal", () => errors.length === 1);
    expect(errors[0]).toBe(`forbidden_session:${theirs}:true`);
    expect(stream.sessions).toEqual([]);
    await publish(api, theirs, "narrator", 1);
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(events).toEqual([]);
  });
});

describe("StatusStream auth", () => {
  it("stops for good on a refused token instead of hammering the server", async () => {
    const { Socket, sockets } = recordingWebSocket();
    const stream = new StatusStream({
      url: service().baseUrl,
      token: "not-a-token",
      WebSocket: Socket,
      backoff: { initialMs: 50 },
    });
    streams.push(stream);
    const errors: string[] = [];
    stream.on("error", (e) => errors.push(`${e.code}:${e.fatal}`));
    await until("the refusal", () => errors.length === 1);
    expect(errors).toEqual(["unauthorized:true"]);
    expect(stream.state).toBe("closed");
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(sockets.length).toBe(1);
  });

  it("asks a token function for a fresh token on every reconnect", async () => {
    const { Socket, sockets } = recordingWebSocket();
    let calls = 0;
    const stream = new StatusStream({
      url: service().gatewayUrl,
      token: async () => {
        calls += 1;
        return userToken(`refreshing-${calls}`, "service");
      },
      WebSocket: Socket,
      backoff: { initialMs: 50, maxMs: 100 },
    });
    streams.push(stream);
    const session = sessionId("refresh");
    stream.join(session);
    await until("the first snapshot", () => stream.session(session)?.synced);
    sockets.at(-1)!.terminate();
    await until("the second socket", () => sockets.length === 2 && stream.state === "open");
    expect(calls).toBe(2);
    const token = new URL(sockets[1]!.url).searchParams.get("token")!;
    const claims = JSON.parse(Buffer.from(token.split(".")[1]!, "base64url").toString());
    expect(claims.sub).toBe("refreshing-2");
  });

  it("iterates events with for await", async () => {
    const api = agentApi();
    const session = sessionId("iterate");
    const stream = new StatusStream({ url: service().baseUrl, token: userToken(), WebSocket: recordingWebSocket().Socket });
    streams.push(stream);
    stream.join(session, { fromSeq: 0 });
    const controller = new AbortController();
    const seen: number[] = [];
    const reading = (async () => {
      for await (const event of stream.events(controller.signal)) {
        seen.push(event.seq);
        if (seen.length === 3) controller.abort();
      }
    })();
    for (let n = 1; n <= 3; n += 1) await publish(api, session, "narrator", n);
    await reading;
    expect(seen).toEqual([1, 2, 3]);
  });
});
