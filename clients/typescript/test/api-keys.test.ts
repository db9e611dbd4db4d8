/**
 * API keys (CONTRACT §5) against the real service, whose keys were made with the real CLI
 * (`pipeline-backend apikey create`) in the suite's own Redis: ApiClient publishes with an
 * agent's key (`X-API-Key`), and StatusStream follows sessions with a key (`?api_key=`),
 * natively and through the API Gateway stand-in (CONNECT passes `api_key` on). The service
 * runs with auth on, so a stream without a credential, or with a key it does not know, is
 * refused with 4401: were the key ignored, these tests would fail.
 */
import { afterEach, describe, expect, it } from "vitest";
import { WebSocket } from "ws";
import { ApiClient, ApiError, StatusStream, type AgentStatusEvent, type WebSocketFactory } from "../src/index.js";
import { createApiKey, runCli } from "./support/service.js";
import { publish, recordingWebSocket, service, sessionId, until, userToken } from "./support/helpers.js";

const streams: StatusStream[] = [];
afterEach(() => {
  for (const stream of streams.splice(0)) stream.close();
});

const keys = () => service().apiKeys;
const keyApi = (apiKey: string) => new ApiClient({ baseUrl: service().baseUrl, apiKey });

/** The `ws` WebSocket, noting each handshake's refusal status and each socket's close code. */
function handshakeRecordingWebSocket() {
  const { Socket, sockets } = recordingWebSocket();
  const outcomes: string[] = [];
  class Noting extends (Socket as unknown as typeof WebSocket) {
    constructor(url: string) {
      super(url);
      const index = outcomes.push("pending") - 1;
      this.on("unexpected-response", (_request, response) => {
        outcomes[index] = `http ${response.statusCode}`;
        response.resume();
        this.terminate(); // what `ws` does when nobody listens: error, then close 1006
      });
      this.on("close", (code) => {
        if (outcomes[index] === "pending") outcomes[index] = `close ${code}`;
      });
    }
  }
  return { Socket: Noting as unknown as WebSocketFactory, sockets, outcomes };
}

function follow(mode: "native" | "gateway", sessions: string[], apiKey?: string) {
  const { Socket, sockets, outcomes } = handshakeRecordingWebSocket();
  const stream = new StatusStream({
    url: mode === "native" ? service().baseUrl : service().gatewayUrl,
    apiKey,
    WebSocket: Socket,
    autoConnect: false,
    backoff: { initialMs: 50, maxMs: 100 },
  });
  for (const session of sessions) stream.join(session, { fromSeq: 0 });
  const events: AgentStatusEvent[] = [];
  const errors: string[] = [];
  stream.on("event", (event) => events.push(event));
  stream.on("error", (error) => errors.push(`${error.code}:${error.sessionId ?? ""}:${error.fatal}`));
  stream.connect();
  streams.push(stream);
  return { stream, sockets, outcomes, events, errors };
}

describe("ApiClient with an API key", () => {
  it("publishes as an agent with its key, and is refused without one", async () => {
    const session = sessionId("key-publish");
    const seq = await publish(keyApi(keys().agent), session, "renderer", 1);
    expect(seq).toBe(1);

    const anonymous = new ApiClient({ baseUrl: service().baseUrl });
    const refused = await publish(anonymous, session, "renderer", 2).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(ApiError);
    expect((refused as ApiError).status).toBe(401);

    const unknown = await publish(keyApi(`pbk_${"A".repeat(43)}`), session, "renderer", 2).catch((e: unknown) => e);
    expect(unknown).toBeInstanceOf(ApiError);
    expect([(unknown as ApiError).status, (unknown as ApiError).code]).toEqual([401, "invalid_api_key"]);

    // the key's role counts: a user's key may not publish agent events
    const asUser = await publish(keyApi(keys().user), session, "renderer", 2).catch((e: unknown) => e);
    expect((asUser as ApiError).status).toBe(403);

    const detail = await keyApi(keys().agent).request("get", "/api/sessions/{session_id}", {
      path: { session_id: session },
    });
    expect(detail.last_seq).toBe(1);
  });
});

describe.each(["native", "gateway"] as const)("StatusStream with an API key (%s)", (mode) => {
  it("follows a session with a service's key, sent as ?api_key=", async () => {
    const agent = keyApi(keys().agent);
    const session = sessionId(`key-follow-${mode}`);
    await publish(agent, session, "renderer", 1);
    const { stream, sockets, events } = follow(mode, [session], keys().service);
    await until("the replayed event", () => events.length === 1);
    await publish(agent, session, "renderer", 2);
    await until("the live event", () => events.length === 2);
    expect(events.map((e) => [e.seq, e.agent])).toEqual([[1, "renderer"], [2, "renderer"]]);
    expect(stream.state).toBe("open");
    const query = new URL(sockets[0]!.url).searchParams;
    expect(query.get("api_key")).toBe(keys().service);
    expect(query.has("token")).toBe(false);
  });

  it("is refused without a key or with an unknown one", async () => {
    const agent = keyApi(keys().agent);
    const session = sessionId(`key-refused-${mode}`);
    for (const apiKey of [undefined, `pbk_${"B".repeat(43)}`]) {
      const { stream, sockets, outcomes, events, errors } = follow(mode, [session], apiKey);
      if (mode === "native") {
        // the service closes the socket with 4401: StatusStream stops for good
        await until("the refusal", () => errors.length === 1);
        expect(errors).toEqual(["unauthorized::true"]);
        expect(stream.state).toBe("closed");
        await new Promise((resolve) => setTimeout(resolve, 200));
        expect(sockets.length).toBe(1); // no reconnect loop
      } else {
        // through API Gateway the refusal is the CONNECT's answer (401), so the handshake
        // fails; a browser cannot see that status, and StatusStream backs off and retries
        await until("two refused handshakes", () => outcomes.length >= 2 && outcomes[1] !== "pending");
        expect(outcomes.slice(0, 2)).toEqual(["http 401", "http 401"]);
        await publish(agent, session, "renderer", 1);
        await new Promise((resolve) => setTimeout(resolve, 200));
        expect(stream.state).not.toBe("open");
        expect(events).toEqual([]);
        stream.close();
      }
    }
  });

  it("acts as the key's name: a user's key follows that user's session, not another's", async () => {
    const alice = keyApi(keys().user); // named ts-alice, role user
    const hers = sessionId(`key-hers-${mode}`);
    const theirs = sessionId(`key-theirs-${mode}`);
    await alice.request("post", "/api/sessions", { body: { prompt: "a cat", session_id: hers } });
    const owner = new ApiClient({ baseUrl: service().baseUrl, token: userToken("owner", "user") });
    await owner.request("post", "/api/sessions", { body: { prompt: "a dog", session_id: theirs } });
    const { stream, errors } = follow(mode, [hers, theirs], keys().user);
    await until("the refusal of the other's session", () => errors.length === 1);
    expect(errors).toEqual([`forbidden_session:${theirs}:true`]);
    await until("her own session's snapshot", () => stream.session(hers)?.synced);
    expect(stream.sessions).toEqual([hers]);
  });
});

describe("a revoked API key", () => {
  it("stops opening streams within the service's cache time (2 s)", async () => {
    const { storeEnv } = service();
    const created = await createApiKey("ts-rotated", "service", storeEnv);
    const session = sessionId("key-revoked");
    const first = follow("native", [session], created.key);
    await until("the stream with the fresh key", () => first.stream.session(session)?.synced);
    first.stream.close();

    await runCli(["apikey", "revoke", created.id], storeEnv);
    const deadline = Date.now() + 5_000; // the contract allows 5 s
    for (;;) {
      const attempt = follow("native", [session], created.key);
      await until("an answer", () => attempt.errors.length > 0 || attempt.stream.session(session)?.synced);
      attempt.stream.close();
      if (attempt.errors.length > 0) {
        expect(attempt.errors).toEqual(["unauthorized::true"]);
        break;
      }
      if (Date.now() > deadline) throw new Error("the revoked key still opens streams after 5 s");
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
  });
});
