/**
 * Headless Chromium (Debian's /usr/bin/chromium) driven over the DevTools protocol, with a
 * fake microphone and loopback WebRTC allowed, like tests/support/chromium.py.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { WebSocket } from "ws";

export function chromiumBinary(): string {
  for (const path of [process.env.CHROMIUM, "/usr/bin/chromium", "/usr/bin/chromium-browser"]) {
    if (path && existsSync(path)) return path;
  }
  throw new Error("Chromium is not installed: apt-get install chromium (or set CHROMIUM)");
}

export class Chromium {
  private process: ChildProcess | null = null;
  private socket: WebSocket | null = null;
  private nextId = 1;
  private profile = "";
  private output: string[] = [];
  readonly console: string[] = [];

  async open(url: string, timeoutMs = 30_000): Promise<void> {
    this.profile = await mkdtemp(join(tmpdir(), "client-chromium-"));
    const child = spawn(
      chromiumBinary(),
      [
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--no-first-run",
        "--use-fake-ui-for-media-stream",
        "--use-fake-device-for-media-stream",
        "--allow-loopback-in-peer-connection",
        "--autoplay-policy=no-user-gesture-required",
        "--remote-debugging-port=0",
        `--user-data-dir=${this.profile}`,
        url,
      ],
      // its own process group: close() waits for every Chromium process, not only this one
      { stdio: ["ignore", "pipe", "pipe"], detached: true },
    );
    this.process = child;
    const keep = (chunk: Buffer): void => {
      this.output.push(chunk.toString());
      if (this.output.length > 100) this.output.shift();
    };
    child.stdout?.on("data", keep);
    child.stderr?.on("data", keep);
    const deadline = Date.now() + timeoutMs;
    let port = 0;
    while (port === 0) {
      if (child.exitCode !== null || Date.now() > deadline) throw new Error(`Chromium did not start: ${this.log()}`);
      try {
        port = Number((await readFile(join(this.profile, "DevToolsActivePort"), "utf8")).split("\n")[0]);
      } catch {
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    }
    let target: { webSocketDebuggerUrl: string } | undefined;
    while (target === undefined) {
      if (Date.now() > deadline) throw new Error("Chromium opened no page");
      const targets = (await (await fetch(`http://127.0.0.1:${port}/json/list`)).json()) as {
        type: string;
        webSocketDebuggerUrl: string;
      }[];
      target = targets.find((t) => t.type === "page");
      if (target === undefined) await new Promise((resolve) => setTimeout(resolve, 100));
    }
    const socket = new WebSocket(target.webSocketDebuggerUrl, { maxPayload: 256 * 1024 * 1024 });
    await new Promise((resolve, reject) => {
      socket.once("open", resolve);
      socket.once("error", reject);
    });
    this.socket = socket;
    socket.on("message", (data) => {
      const message = JSON.parse(String(data)) as { method?: string; params?: { args?: { value?: unknown }[] } };
      if (message.method === "Runtime.consoleAPICalled") {
        this.console.push((message.params?.args ?? []).map((a) => String(a.value)).join(" "));
      }
    });
    await this.send("Runtime.enable", {});
  }

  private send(method: string, params: object): Promise<{ result?: { value?: unknown }; exceptionDetails?: unknown }> {
    const id = this.nextId++;
    const socket = this.socket!;
    return new Promise((resolve) => {
      const onMessage = (data: unknown): void => {
        const reply = JSON.parse(String(data)) as { id?: number; result?: { result?: { value?: unknown }; exceptionDetails?: unknown } };
        if (reply.id !== id) return;
        socket.off("message", onMessage);
        resolve({ result: reply.result?.result, exceptionDetails: reply.result?.exceptionDetails });
      };
      socket.on("message", onMessage);
      socket.send(JSON.stringify({ id, method, params }));
    });
  }

  /** The JSON value of an expression in the page (promises are awaited). */
  async evaluate<T = unknown>(expression: string): Promise<T> {
    const reply = await this.send("Runtime.evaluate", { expression, returnByValue: true, awaitPromise: true });
    if (reply.exceptionDetails) throw new Error(`page threw: ${JSON.stringify(reply.exceptionDetails)}`);
    return reply.result?.value as T;
  }

  log(): string {
    return this.output.join("").slice(-3000);
  }

  /**
   * Ends Chromium and every process it started, then removes its profile. The browser
   * process exits before its helpers (renderer, network, crashpad), which may still write
   * into the profile: removing it then failed once with ENOTEMPTY.
   */
  async close(): Promise<void> {
    this.socket?.close();
    const child = this.process;
    if (child !== null && child.pid !== undefined) {
      const group = child.pid;
      signalGroup(group, "SIGTERM");
      const deadline = Date.now() + 10_000;
      while (await groupAlive(group)) {
        if (Date.now() > deadline) signalGroup(group, "SIGKILL");
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    }
    if (this.profile) await rm(this.profile, { recursive: true, force: true });
  }
}

function signalGroup(group: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-group, signal);
  } catch {
    // the group has gone already
  }
}

/** Whether a live (not zombie) process of the group is left, from /proc: an orphaned
 * helper's zombie is reaped by whoever PID 1 is, which in a container may never happen. */
async function groupAlive(group: number): Promise<boolean> {
  for (const entry of await readdir("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    let stat: string;
    try {
      stat = await readFile(`/proc/${entry}/stat`, "utf8");
    } catch {
      continue; // gone meanwhile
    }
    // pid (comm) state ppid pgrp ...: comm may hold spaces and parentheses
    const [state, , pgrp] = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    if (Number(pgrp) === group && state !== "Z" && state !== "X") return true;
  }
  return false;
}
