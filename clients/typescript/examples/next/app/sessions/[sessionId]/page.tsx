"use client";
// A video generation, live: /sessions/<id>. The hook replays the history, then follows
// the session, resuming after any drop without losing or repeating an event.
import { useState, type FormEvent } from "react";
import { ApiClient, ApiError } from "@pipeline-backend/client";
import { useSessionStatus } from "@pipeline-backend/client/react";
import { API_URL, useToken } from "../../config";

const PIPELINE = ["script_writer", "narrator", "illustrator", "editor", "publisher"];

export default function SessionPage({ params }: { params: { sessionId: string } }) {
  const token = useToken();
  const [sessionId, setSessionId] = useState(params.sessionId);
  const status = useSessionStatus(sessionId, { url: API_URL, token });
  const [problem, setProblem] = useState<string | null>(null);
  const api = new ApiClient({ baseUrl: API_URL, token });

  async function create(event: FormEvent<HTMLFormElement>) {
    event.preventDefault();
    const prompt = String(new FormData(event.currentTarget).get("prompt") ?? "");
    try {
      const created = await api.request("post", "/api/sessions", { body: { prompt } });
      setSessionId(String(created.session_id));
    } catch (error) {
      setProblem(error instanceof ApiError ? `${error.code}: ${error.message}` : String(error));
    }
  }

  async function cancel() {
    try {
      await api.request("post", "/api/sessions/{session_id}/cancel", { path: { session_id: sessionId } });
    } catch (error) {
      setProblem(error instanceof ApiError ? `${error.code}: ${error.message}` : String(error));
    }
  }

  const final = status.agents.pipeline;
  const outputs = (final?.data as { outputs?: { video_url?: string } } | undefined)?.outputs;
  const agents = [...PIPELINE, ...Object.keys(status.agents).filter((a) => !PIPELINE.includes(a))];

  return (
    <main style={{ maxWidth: 720, margin: "2rem auto", fontFamily: "system-ui" }}>
      <form onSubmit={create}>
        <input name="prompt" placeholder="A 30-second video about…" style={{ width: "70%" }} />
        <button type="submit">Generate</button>
      </form>
      <h1>Session {sessionId}</h1>
      <p>
        {status.connection}
        {status.gap && " · some events were missed; the state below is current"}
        {status.error && ` · ${status.error.code}: ${status.error.message}`}
        {problem && ` · ${problem}`}
      </p>
      <table>
        <tbody>
          {agents.map((agent) => {
            const latest = status.agents[agent];
            return (
              <tr key={agent}>
                <td>{agent}</td>
                <td>{latest?.status ?? "waiting"}</td>
                <td>
                  <progress value={latest?.progress ?? 0} max={1} />
                </td>
                <td>{latest?.message}</td>
              </tr>
            );
          })}
        </tbody>
      </table>
      <button onClick={cancel} disabled={final !== undefined}>
        Cancel
      </button>
      {outputs?.video_url && <video src={outputs.video_url} controls style={{ width: "100%" }} />}
      <ol>
        {status.events.map((event) => (
          <li key={event.seq} value={event.seq}>
            {event.ts} {event.agent} {event.status} {event.message}
          </li>
        ))}
      </ol>
    </main>
  );
}
