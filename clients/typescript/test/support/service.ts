/**
 * The real service as a subprocess: `uv run pipeline-backend serve` on a free loopback port,
 * from the repository root, waited for on /health and stopped with SIGTERM.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import { createServer } from "node:net";
import type { AddressInfo } from "node:net";
import { fileURLToPath } from "node:url";

export const REPO_ROOT = fileURLToPath(new URL("../../../../", import.meta.url));

/** uv from $UV, PATH, or where its installer puts it (~/.local/bin, not always on PATH). */
function uvBinary(): string {
  if (process.env.UV) return process.env.UV;
  const local = join(homedir(), ".local", "bin", "uv");
  const onPath = (process.env.PATH ?? "").split(":").some((dir) => dir && existsSync(join(dir, "uv")));
  return onPath || !existsSync(local) ? "uv" : local;
}

/** The caller's environment without the service's own settings (a developer's .env shell). */
function inheritedEnv(): NodeJS.ProcessEnv {
  const own = /^(AUTH_|REDIS_|APIGW_|TURN_|OPENAI_|INTERVIEW_|HUB_|WS_|STT_|LLM_|TTS_|S3_|PIPELINE_|MEDIA_DIR$|FRONTEND_URL$)/;
  return Object.fromEntries(Object.entries(process.env).filter(([key]) => !own.test(key)));
}

export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

export class ServiceProcess {
  private child: ChildProcess | null = null;
  private output: string[] = [];

  constructor(
    readonly port: number,
    private readonly env: Record<string, string>,
  ) {}

  get baseUrl(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  async start(timeoutMs = 60_000): Promise<void> {
    const child = spawn(
      uvBinary(),
      ["run", "--frozen", "pipeline-backend", "serve", "--host", "127.0.0.1", "--port", String(this.port)],
      {
        cwd: REPO_ROOT,
        env: { ...inheritedEnv(), LOG_FORMAT: "json", LOG_LEVEL: "WARNING", ...this.env },
        stdio: ["ignore", "pipe", "pipe"],
      },
    );
    this.child = child;
    const keep = (chunk: Buffer): void => {
      this.output.push(chunk.toString());
      if (this.output.length > 200) this.output.shift();
    };
    child.stdout?.on("data", keep);
    child.stderr?.on("data", keep);
    let spawnError: Error | null = null;
    child.on("error", (error) => (spawnError = error));
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (spawnError !== null) throw new Error(`cannot run uv (set UV=/path/to/uv): ${String(spawnError)}`);
      if (child.exitCode !== null) throw new Error(`the service exited: ${this.log()}`);
      try {
        const response = await fetch(`${this.baseUrl}/health`);
        if (response.ok) return;
      } catch {
        // not listening yet
      }
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    throw new Error(`the service did not answer /health in time: ${this.log()}`);
  }

  log(): string {
    return this.output.join("").slice(-4000);
  }

  async stop(): Promise<void> {
    const child = this.child;
    if (child === null || child.exitCode !== null) return;
    const exited = new Promise((resolve) => child.once("exit", resolve));
    child.kill("SIGTERM");
    const timer = setTimeout(() => child.kill("SIGKILL"), 15_000);
    await exited;
    clearTimeout(timer);
  }
}

/** `uv run pipeline-backend ARGS` with these settings; its stdout, or an error with its stderr. */
export async function runCli(args: string[], env: Record<string, string>, timeoutMs = 60_000): Promise<string> {
  const child = spawn(uvBinary(), ["run", "--frozen", "pipeline-backend", ...args], {
    cwd: REPO_ROOT,
    env: { ...inheritedEnv(), LOG_LEVEL: "WARNING", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  child.stdout?.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr?.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
  const code = await new Promise<number | null>((resolve, reject) => {
    child.once("error", reject);
    child.once("close", resolve);
  });
  clearTimeout(timer);
  if (code !== 0) throw new Error(`pipeline-backend ${args.join(" ")} exited ${code}: ${stderr.slice(-2000)}`);
  return stdout;
}

export interface CreatedKey {
  id: string;
  key: string;
}

/** A new API key from the real CLI (`apikey create`), read from what it prints once. */
export async function createApiKey(name: string, role: string, env: Record<string, string>): Promise<CreatedKey> {
  const out = await runCli(["apikey", "create", "--name", name, "--role", role], env);
  const id = /^id:\s+(\S+)$/m.exec(out)?.[1];
  const key = /^key:\s+(pbk_\S+)$/m.exec(out)?.[1];
  if (!id || !key) throw new Error(`apikey create printed no id and key: ${out}`);
  return { id, key };
}
