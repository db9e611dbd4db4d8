/**
 * A redis-server of the suite's own on a free loopback port (no persistence, a temporary
 * directory), like tests/support/redis_server.py: inside the suite's network namespace
 * there is no other Redis, and the service needs one for API keys (CONTRACT §5).
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort } from "./service.js";

async function answersPing(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, "127.0.0.1");
    let reply = "";
    socket.setTimeout(500, () => socket.destroy());
    socket.on("connect", () => socket.write("PING\r\n"));
    socket.on("data", (chunk) => {
      reply += chunk.toString();
      if (reply.includes("\r\n")) socket.end();
    });
    socket.on("close", () => resolve(reply.startsWith("+PONG")));
    socket.on("error", () => resolve(false));
  });
}

export class RedisServer {
  private child: ChildProcess | null = null;
  private dir = "";
  private output: string[] = [];
  port = 0;

  /** `extraArgs`: more redis-server settings (`["--stream-node-max-entries", "10"]`). */
  constructor(private readonly extraArgs: string[] = []) {}

  get url(): string {
    return `redis://127.0.0.1:${this.port}/0`;
  }

  async start(timeoutMs = 10_000): Promise<void> {
    this.port = await freePort();
    this.dir = await mkdtemp(join(tmpdir(), "client-redis-"));
    const binary = process.env.REDIS_SERVER ?? "redis-server";
    const args = ["--port", String(this.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"];
    const child = spawn(binary, [...args, "--dir", this.dir, ...this.extraArgs], { stdio: ["ignore", "pipe", "pipe"] });
    this.child = child;
    child.stdout?.on("data", (chunk: Buffer) => this.output.push(chunk.toString()));
    child.stderr?.on("data", (chunk: Buffer) => this.output.push(chunk.toString()));
    let spawnError: Error | null = null;
    child.on("error", (error) => (spawnError = error));
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (spawnError !== null) throw new Error(`cannot run redis-server (apt-get install redis-server): ${String(spawnError)}`);
      if (child.exitCode !== null) throw new Error(`redis-server exited: ${this.output.join("").slice(-2000)}`);
      if (await answersPing(this.port)) return;
      if (Date.now() > deadline) throw new Error("redis-server did not answer PING in time");
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  async stop(): Promise<void> {
    const child = this.child;
    if (child !== null && child.exitCode === null) {
      const exited = new Promise((resolve) => child.once("exit", resolve));
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), 5_000);
      await exited;
      clearTimeout(timer);
    }
    if (this.dir) await rm(this.dir, { recursive: true, force: true });
  }
}
