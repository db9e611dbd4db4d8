/**
 * A small local stand-in for AWS API Gateway's WebSocket API, as deploy/aws/ configures it
 * (docs/deploy-api-gateway.md, CONTRACT §2.3):
 *
 * - clients connect to `ws://127.0.0.1:<port>/<stage>?session_id=…&last_seq=…&token=…`;
 *   any other path is refused, as API Gateway refuses a path after the stage;
 * - `$connect`, `$default` and `$disconnect` become `POST <service>/ws` with the
 *   `connectionId`, `eventType` and `X-Gateway-Secret` headers; CONNECT passes on the
 *   mapped query parameters and carries no body, MESSAGE carries the frame; the client's
 *   handshake completes only when CONNECT answered 200 (else it gets that status);
 * - the management API: `POST <stage>/@connections/{id}` sends the body to the client
 *   (410 GoneException for an unknown one), `DELETE` closes it.
 */
import { randomBytes } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { Duplex } from "node:stream";
import { WebSocketServer, type WebSocket } from "ws";

// What the $connect route maps onto the integration request (docs/deploy-api-gateway.md),
// plus api_key, which the service reads on CONNECT too (CONTRACT §5).
const MAPPED_QUERY = ["session_id", "last_seq", "token", "api_key"];

export interface GatewayStats {
  connects: number;
  messages: number;
  disconnects: number;
  posts: number;
  gone: number;
}

export class GatewayStandIn {
  readonly stage: string;
  private readonly server: Server;
  private readonly wss = new WebSocketServer({ noServer: true });
  private readonly clients = new Map<string, WebSocket>();
  private readonly chains = new Map<string, Promise<unknown>>();
  readonly stats: GatewayStats = { connects: 0, messages: 0, disconnects: 0, posts: 0, gone: 0 };
  serviceUrl = "";

  constructor(
    private readonly secret: string,
    stage = "test",
  ) {
    this.stage = stage;
    this.server = createServer((request, response) => void this.management(request, response));
    this.server.on("upgrade", (request, socket, head) => void this.upgrade(request, socket, head));
  }

  async listen(): Promise<number> {
    await new Promise<void>((resolve) => this.server.listen(0, "127.0.0.1", resolve));
    return (this.server.address() as AddressInfo).port;
  }

  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  /** What the service's APIGW_MANAGEMENT_ENDPOINT is set to. */
  get managementEndpoint(): string {
    return `http://127.0.0.1:${this.port}/${this.stage}`;
  }

  async close(): Promise<void> {
    for (const client of this.clients.values()) client.terminate();
    this.wss.close();
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private async integration(
    connectionId: string,
    eventType: "CONNECT" | "MESSAGE" | "DISCONNECT",
    query: URLSearchParams | null,
    body: string | null,
  ): Promise<number> {
    const url = new URL(`${this.serviceUrl}/ws`);
    for (const [key, value] of query ?? []) url.searchParams.set(key, value);
    const response = await fetch(url, {
      method: "POST",
      headers: { connectionId, eventType, "X-Gateway-Secret": this.secret },
      body: body ?? undefined,
    });
    await response.arrayBuffer();
    return response.status;
  }

  private async upgrade(request: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    const url = new URL(request.url ?? "/", "http://gateway");
    if (url.pathname !== `/${this.stage}` && url.pathname !== `/${this.stage}/`) {
      refuse(socket, 403);
      return;
    }
    const connectionId = randomBytes(10).toString("base64");
    const query = new URLSearchParams();
    for (const name of MAPPED_QUERY) {
      const value = url.searchParams.get(name);
      if (value !== null) query.set(name, value);
    }
    this.stats.connects += 1;
    let status: number;
    try {
      status = await this.integration(connectionId, "CONNECT", query, null);
    } catch {
      status = 502;
    }
    if (status !== 200) {
      refuse(socket, status);
      return;
    }
    this.wss.handleUpgrade(request, socket, head, (client) => {
      this.clients.set(connectionId, client);
      client.on("message", (data) => {
        this.stats.messages += 1;
        this.serial(connectionId, () =>
          this.integration(connectionId, "MESSAGE", null, data.toString()),
        );
      });
      client.on("close", () => {
        this.clients.delete(connectionId);
        this.stats.disconnects += 1;
        this.serial(connectionId, () => this.integration(connectionId, "DISCONNECT", null, null));
      });
    });
  }

  /** One connection's integration requests in order (the frames of a client, then its end). */
  private serial(connectionId: string, task: () => Promise<unknown>): void {
    const previous = this.chains.get(connectionId) ?? Promise.resolve();
    const next = previous.then(task).catch(() => undefined);
    this.chains.set(connectionId, next);
  }

  private async management(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const url = new URL(request.url ?? "/", "http://gateway");
    const match = /\/@connections\/([^/]+)$/.exec(url.pathname);
    if (match === null) {
      response.writeHead(404).end();
      return;
    }
    const connectionId = decodeURIComponent(match[1]!);
    const chunks: Buffer[] = [];
    for await (const chunk of request) chunks.push(chunk as Buffer);
    const client = this.clients.get(connectionId);
    if (client === undefined || client.readyState !== client.OPEN) {
      this.stats.gone += 1;
      response
        .writeHead(410, { "content-type": "application/json", "x-amzn-ErrorType": "GoneException" })
        .end(JSON.stringify({ message: "Gone" }));
      return;
    }
    if (request.method === "POST") {
      this.stats.posts += 1;
      client.send(Buffer.concat(chunks).toString("utf8"));
      response.writeHead(200, { "content-type": "application/json" }).end("{}");
    } else if (request.method === "DELETE") {
      client.close(1000, "deleted");
      response.writeHead(204).end();
    } else {
      response.writeHead(200, { "content-type": "application/json" }).end(
        JSON.stringify({ connectedAt: new Date().toISOString(), identity: { sourceIp: "127.0.0.1" } }),
      );
    }
  }
}

function refuse(socket: Duplex, status: number): void {
  socket.end(`HTTP/1.1 ${status} Refused\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`);
}
