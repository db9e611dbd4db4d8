"use client";
// A voice interview in the browser: /interview. useInterview asks for the microphone,
// negotiates WebRTC over REST (trickle ICE, the "events" data channel), plays the
// interviewer and keeps the transcript as it is spoken.
import { useEffect, useRef, useState } from "react";
import { useInterview } from "@pipeline-backend/client/react";
import { API_URL, useToken } from "../config";

export default function InterviewPage() {
  const token = useToken();
  const interview = useInterview({ baseUrl: API_URL, token });
  const [role, setRole] = useState("backend engineer");
  const voice = useRef<HTMLAudioElement>(null);

  useEffect(() => {
    if (voice.current) voice.current.srcObject = interview.remoteStream;
  }, [interview.remoteStream]);

  const live = ["starting", "created", "connecting", "active"].includes(interview.phase);
  return (
    <main style={{ maxWidth: 720, margin: "2rem auto", fontFamily: "system-ui" }}>
      <h1>Interview</h1>
      <label>
        Role <input value={role} onChange={(e) => setRole(e.target.value)} disabled={live} />
      </label>
      <button disabled={live} onClick={() => interview.start({ user_id: "candidate-1", role })}>
        Start
      </button>
      <button disabled={!live} onClick={() => interview.end()}>
        End
      </button>
      <p>
        {interview.phase}
        {interview.error && ` · ${interview.error.message}`}
      </p>
      <audio ref={voice} autoPlay />
      <ul>
        {interview.transcript.map((line, index) => (
          <li key={line.id ?? index}>
            <b>{line.role}</b>: {line.text}
            {line.interrupted && " (interrupted)"}
          </li>
        ))}
      </ul>
      {interview.results && (
        <section>
          <h2>Results</h2>
          <p>{interview.results.summary ?? "No summary (the local interviewer does not score)."}</p>
          <ul>
            {(interview.results.scores ?? []).map((score) => (
              <li key={score.criterion}>
                {score.criterion}: {score.score}/{score.max ?? 5} — “{score.evidence[0]}”
              </li>
            ))}
          </ul>
        </section>
      )}
    </main>
  );
}
