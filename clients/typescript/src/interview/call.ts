/**
 * InterviewCall: one voice interview over WebRTC with REST signaling (CONTRACT §3).
 *
 *   const call = new InterviewCall({ baseUrl: "http://localhost:8000", token });
 *   call.on("event", (e) => e.type === "transcript" && console.log(e.item.text));
 *   call.on("track", (stream) => (audio.srcObject = stream));
 *   await call.start({ user_id: "cand-42", role: "backend engineer" });
 *   ...
 *   const results = await call.end();
 *
 * start(): POST /start (ICE servers come with it), the microphone, an RTCPeerConnection
 * with the `events` data channel opened before the offer, the offer and its answer.
 * Candidates trickle both ways: the browser's are posted as they are found (before or
 * after the answer, in order, then the end marker); the server's are in its answer.
 * Renegotiation makes a fresh peer connection on both sides (the server builds one per
 * negotiation): `restartIce()` offers again, `acceptServerOffer()` asks the server to offer
 * and answers on `rtc/answer`. end() ends the call and fetches the results.
 */
import { ApiClient, ApiError, type ApiClientOptions } from "../http.js";
import { Emitter } from "../emitter.js";
import type {
  IceServer,
  InterviewEvent,
  InterviewFinal,
  InterviewResults,
  InterviewStarted,
  InterviewStatus,
  StartInterview,
} from "./events.js";

export type CallPhase = "idle" | "starting" | InterviewStatus | "error";

export interface InterviewCallEvents extends Record<string, unknown> {
  /** Every data-channel event, typed. */
  event: InterviewEvent;
  /** The call's phase: local steps, then the server's states. */
  phase: CallPhase;
  /** The interviewer's audio. */
  track: MediaStream;
  iceConnectionState: RTCIceConnectionState;
  error: Error;
}

export interface InterviewCallOptions extends ApiClientOptions {
  /** Use this stream instead of asking for the microphone. */
  microphone?: MediaStream;
  audioConstraints?: MediaTrackConstraints | boolean;
  /** "relay" forces TURN (what the demo page's ?relay=1 does). */
  iceTransportPolicy?: RTCIceTransportPolicy;
  /** Offer again (ICE restart) once when ICE fails mid-call (default true). */
  restartOnFailure?: boolean;
  /** The RTCPeerConnection class (default: the platform's). */
  RTCPeerConnection?: typeof RTCPeerConnection;
}

type Json = Record<string, unknown>;

export class InterviewCall extends Emitter<InterviewCallEvents> {
  readonly api: ApiClient;
  sessionId: string | null = null;
  iceServers: IceServer[] = [];
  phase: CallPhase = "idle";
  final: InterviewFinal | null = null;
  results: InterviewResults | null = null;
  /** Every event received, in order. */
  readonly events: InterviewEvent[] = [];
  candidatesSent = 0;
  private readonly options: InterviewCallOptions;
  private pc: RTCPeerConnection | null = null;
  private channel: RTCDataChannel | null = null;
  private microphone: MediaStream | null = null;
  private ownsMicrophone = false;
  private signaling: Promise<unknown> = Promise.resolve();
  private restarted = false;

  constructor(options: InterviewCallOptions) {
    super();
    this.options = options;
    this.api = new ApiClient(options);
  }

  /** The current peer connection (a new one after each renegotiation). */
  get peerConnection(): RTCPeerConnection | null {
    return this.pc;
  }

  async start(body: StartInterview): Promise<InterviewStarted> {
    if (this.phase !== "idle") throw new Error(`start() in phase ${this.phase}`);
    this.setPhase("starting");
    try {
      const started = (await this.api.request("post", "/api/interview/start", {
        body: body as never,
      })) as unknown as InterviewStarted;
      this.sessionId = started.session_id;
      this.iceServers = started.ice_servers ?? (await this.fetchIceServers());
      this.microphone = this.options.microphone ?? (await this.openMicrophone());
      await this.negotiate();
      return started;
    } catch (error) {
      this.fail(error);
      if (this.sessionId !== null) {
        // free the server's side now instead of when it expires (best effort)
        const id = this.sessionId;
        void this.api
          .request("post", "/api/interview/{interview_id}/end", { path: { interview_id: id } })
          .catch(() => undefined);
      }
      throw error;
    }
  }

  /** Fresh ICE servers (TURN credentials expire after `ttl_s`). */
  async fetchIceServers(): Promise<IceServer[]> {
    const answer = (await this.api.request("get", "/api/interview/{interview_id}/ice-servers", {
      path: { interview_id: this.requireSession() },
    })) as unknown as { ice_servers: IceServer[] };
    this.iceServers = answer.ice_servers;
    return answer.ice_servers;
  }

  /** Send a JSON event on the data channel (e.g. `{type: "ping"}`). */
  send(event: Json): void {
    if (this.channel?.readyState !== "open") throw new Error("the events channel is not open");
    this.channel.send(JSON.stringify(event));
  }

  /** The browser offers again on a fresh peer connection (ICE restart). */
  async restartIce(): Promise<void> {
    this.iceServers = await this.fetchIceServers();
    await this.negotiate();
  }

  /** The server offers (POST rtc/restart); the browser answers on a fresh peer connection. */
  async acceptServerOffer(): Promise<void> {
    const id = this.requireSession();
    const offer = (await this.api.request("post", "/api/interview/{interview_id}/rtc/restart", {
      path: { interview_id: id },
    })) as unknown as RTCSessionDescriptionInit;
    const previous = this.pc;
    const pc = this.newPeerConnection(false);
    await pc.setRemoteDescription(offer);
    await pc.setLocalDescription(await pc.createAnswer());
    await this.api.request("post", "/api/interview/{interview_id}/rtc/answer", {
      path: { interview_id: id },
      body: { sdp: pc.localDescription!.sdp, type: "answer" },
    });
    previous?.close();
  }

  async status(): Promise<Json> {
    return (await this.api.request("get", "/api/interview/{interview_id}/status", {
      path: { interview_id: this.requireSession() },
    })) as Json;
  }

  async fetchResults(): Promise<InterviewResults> {
    const results = (await this.api.request("get", "/api/interview/{interview_id}/results", {
      path: { interview_id: this.requireSession() },
    })) as unknown as InterviewResults;
    this.results = results;
    return results;
  }

  /** Ends the call, releases the microphone, and returns the results. */
  async end(): Promise<InterviewResults> {
    const id = this.requireSession();
    try {
      await this.signaling.catch(() => undefined);
      this.final = (await this.api.request("post", "/api/interview/{interview_id}/end", {
        path: { interview_id: id },
      })) as unknown as InterviewFinal;
      this.setPhase(this.final.status);
      return await this.fetchResults();
    } finally {
      this.release();
    }
  }

  /** Closes the peer connection and the microphone without telling the server. */
  release(): void {
    this.pc?.close();
    this.pc = null;
    this.channel = null;
    if (this.ownsMicrophone) for (const track of this.microphone?.getTracks() ?? []) track.stop();
    this.microphone = null;
  }

  private async negotiate(): Promise<void> {
    const previous = this.pc;
    const pc = this.newPeerConnection(true);
    await pc.setLocalDescription(await pc.createOffer());
    const answer = (await this.api.request("post", "/api/interview/{interview_id}/rtc/offer", {
      path: { interview_id: this.requireSession() },
      body: { sdp: pc.localDescription!.sdp, type: "offer" },
    })) as unknown as RTCSessionDescriptionInit;
    await pc.setRemoteDescription(answer);
    previous?.close();
    if (this.phase === "starting") this.setPhase("connecting");
  }

  private newPeerConnection(offering: boolean): RTCPeerConnection {
    const Peer = this.options.RTCPeerConnection ?? globalThis.RTCPeerConnection;
    const pc = new Peer({
      iceServers: this.iceServers as RTCIceServer[],
      iceTransportPolicy: this.options.iceTransportPolicy ?? "all",
    });
    this.pc = pc;
    if (offering) this.adoptChannel(pc.createDataChannel("events")); // before the offer
    pc.ondatachannel = ({ channel }) => {
      if (channel.label === "events") this.adoptChannel(channel);
    };
    pc.onicecandidate = ({ candidate }) => {
      if (this.pc !== pc) return;
      this.postCandidate(candidate ? candidate.toJSON() : { candidate: null });
    };
    pc.ontrack = ({ streams, track }) => this.emit("track", streams[0] ?? new MediaStream([track]));
    pc.oniceconnectionstatechange = () => {
      if (this.pc !== pc) return;
      this.emit("iceConnectionState", pc.iceConnectionState);
      if (pc.iceConnectionState === "failed") this.onIceFailed();
    };
    for (const track of this.microphone?.getTracks() ?? []) pc.addTrack(track, this.microphone!);
    return pc;
  }

  private adoptChannel(channel: RTCDataChannel): void {
    this.channel = channel;
    channel.onmessage = ({ data }) => {
      let event: InterviewEvent;
      try {
        event = JSON.parse(String(data)) as InterviewEvent;
      } catch {
        return;
      }
      this.events.push(event);
      if (event.type === "state") this.setPhase(event.status);
      this.emit("event", event);
    };
  }

  /** Trickle: posted in the order found, possibly before the answer; null ends them. */
  private postCandidate(candidate: RTCIceCandidateInit | { candidate: null }): void {
    const id = this.requireSession();
    if (candidate.candidate) this.candidatesSent += 1;
    this.signaling = this.signaling
      .catch(() => undefined)
      .then(() =>
        this.api.request("post", "/api/interview/{interview_id}/rtc/ice-candidate", {
          path: { interview_id: id },
          body: candidate as never,
        }),
      )
      .catch((error: unknown) => {
        // an ended call refuses late candidates (409): not worth an error
        if (!(error instanceof ApiError && error.status === 409)) this.emit("error", toError(error));
      });
  }

  private onIceFailed(): void {
    if (this.options.restartOnFailure === false || this.restarted) return;
    if (this.phase !== "active" && this.phase !== "connecting") return;
    this.restarted = true;
    this.restartIce().catch((error: unknown) => this.emit("error", toError(error)));
  }

  private async openMicrophone(): Promise<MediaStream> {
    this.ownsMicrophone = true;
    return navigator.mediaDevices.getUserMedia({ audio: this.options.audioConstraints ?? true });
  }

  private requireSession(): string {
    if (this.sessionId === null) throw new Error("the interview has not started");
    return this.sessionId;
  }

  private fail(error: unknown): void {
    this.setPhase("error");
    this.emit("error", toError(error));
    this.release();
  }

  private setPhase(phase: CallPhase): void {
    if (this.phase === phase) return;
    this.phase = phase;
    this.emit("phase", phase);
  }
}

function toError(error: unknown): Error {
  return error instanceof Error ? error : new Error(String(error));
}
