/**
 * useSessionStatus in a real React tree (react-test-renderer) against the running service:
 * the history is replayed, live events follow, each agent's latest state is exposed, and
 * unmounting closes the socket.
 */
import { createElement } from "react";
import { create } from "react-test-renderer";
import { expect, it } from "vitest";
import { WebSocket } from "ws";
import { PipelineProvider, useSessionStatus, type SessionStatus } from "../src/react/index.js";
import type { WebSocketFactory } from "../src/index.js";
import { agentApi, publish, service, sessionId, until, userToken } from "./support/helpers.js";

// react-test-renderer says it is deprecated on every render; nothing else here warns
const warn = console.error;
console.error = (...args: unknown[]) => {
  if (!String(args[0]).includes("react-test-renderer is deprecated")) warn(...args);
};

it("useSessionStatus follows a session and lets go on unmount", async () => {
  const api = agentApi();
  const session = sessionId("hook");
  await publish(api, session, "script_writer", 1, 0.3);
  const opened: WebSocket[] = [];
  class Recording extends WebSocket {
    constructor(url: string) {
      super(url);
      opened.push(this);
    }
  }
  let latest: SessionStatus | null = null;
  function Probe({ id }: { id: string }) {
    latest = useSessionStatus(id, {
      url: service().baseUrl,
      token: userToken(),
      WebSocket: Recording as unknown as WebSocketFactory,
    });
    return null;
  }
  const renderer = create(createElement(Probe, { id: session }));
  await until("the replayed event", () => latest?.events.length === 1);
  await publish(api, session, "narrator", 2, 0.6);
  await until("the live event", () => latest?.events.length === 2);
  const status = latest!;
  expect(status.connection).toBe("open");
  expect(status.lastSeq).toBe(2);
  expect(status.agents.narrator!.progress).toBe(0.6);
  expect(status.agents.script_writer!.progress).toBe(0.3);
  expect(status.synced).toBe(true);
  expect(status.gap).toBe(false);
  renderer.unmount();
  await until("the socket to close", () => opened[0]!.readyState === WebSocket.CLOSED);
});

it("useSessionStatus(sessionId) takes the service and the token from a PipelineProvider", async () => {
  const api = agentApi();
  const session = sessionId("hook-provider");
  await publish(api, session, "editor", 1, 0.5);
  let latest: SessionStatus | null = null;
  function Probe({ id }: { id: string }) {
    latest = useSessionStatus(id);
    return null;
  }
  const config = {
    baseUrl: service().baseUrl,
    token: userToken(),
    WebSocket: WebSocket as unknown as WebSocketFactory,
  };
  const renderer = create(createElement(PipelineProvider, { config }, createElement(Probe, { id: session })));
  await until("the replayed event", () => latest?.events.length === 1);
  expect(latest!.agents.editor!.progress).toBe(0.5);
  renderer.unmount();
});
