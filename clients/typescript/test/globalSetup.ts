/**
 * One real service for the whole run, with JWT auth and the API Gateway bridge on (its
 * management endpoint is the local gateway stand-in), the interview's greeter
 * conversation (no speech models), no public STUN, and CORS for the static page server.
 */
import type { TestProject } from "vitest/node";
import { GatewayStandIn } from "./support/gateway.js";
import { ServiceProcess, freePort } from "./support/service.js";
import { serveStatic } from "./support/static.js";

declare module "vitest" {
  export interface ProvidedContext {
    service: { baseUrl: string; jwtSecret: string; gatewayUrl: string; pageOrigin: string };
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const jwtSecret = "client-tests-jwt-secret-0123456789abcdef";
  const gatewaySecret = "client-tests-gateway-secret-0123456789abcdef";
  const gateway = new GatewayStandIn(gatewaySecret, "test");
  await gateway.listen();
  const page = await serveStatic();
  const service = new ServiceProcess(await freePort(), {
    ENVIRONMENT: "test",
    AUTH_JWT_SECRET: jwtSecret,
    APIGW_SHARED_SECRET: gatewaySecret,
    APIGW_MANAGEMENT_ENDPOINT: gateway.managementEndpoint,
    AWS_REGION: "us-east-1",
    AWS_ACCESS_KEY_ID: "testing",
    AWS_SECRET_ACCESS_KEY: "testing",
    INTERVIEW_CONVERSATION: "greeter",
    STUN_URLS: "",
    FRONTEND_URL: page.origin,
    REDIS_URL: "",
    HUB_HISTORY_SIZE: "20",
    // these tests open many sockets and publish fast from one address on purpose
    RATE_LIMITS_ENABLED: "false",
  });
  gateway.serviceUrl = service.baseUrl;
  const stopAll = async (): Promise<void> => {
    await service.stop();
    await gateway.close();
    page.server.closeAllConnections();
    await new Promise((resolve) => page.server.close(resolve));
  };
  try {
    await service.start();
  } catch (error) {
    await stopAll();
    throw error;
  }
  project.provide("service", {
    baseUrl: service.baseUrl,
    jwtSecret,
    gatewayUrl: `ws://127.0.0.1:${gateway.port}/${gateway.stage}`,
    pageOrigin: page.origin,
  });
  return stopAll;
}
