/**
 * One real service for the whole run, with JWT auth and the API Gateway bridge on (its
 * management endpoint is the local gateway stand-in), a redis-server of the suite's own
 * (API keys live there), the interview's greeter conversation (no speech models), no
 * public STUN, and CORS for the static page server. Three API keys are made with the real
 * CLI before the run: an agent's, a service's (which follows every session) and a user's.
 */
import type { TestProject } from "vitest/node";
import { GatewayStandIn } from "./support/gateway.js";
import { RedisServer } from "./support/redis.js";
import { ServiceProcess, createApiKey, freePort } from "./support/service.js";
import { serveStatic } from "./support/static.js";

declare module "vitest" {
  export interface ProvidedContext {
    service: {
      baseUrl: string;
      jwtSecret: string;
      gatewayUrl: string;
      pageOrigin: string;
      /** `pipeline-backend` CLI settings that reach the service's store (REDIS_URL, REDIS_PREFIX) */
      storeEnv: Record<string, string>;
      apiKeys: { agent: string; service: string; user: string };
    };
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const jwtSecret = "client-tests-jwt-secret-0123456789abcdef";
  const gatewaySecret = "client-tests-gateway-secret-0123456789abcdef";
  const gateway = new GatewayStandIn(gatewaySecret, "test");
  await gateway.listen();
  const page = await serveStatic();
  // The hub trims each session's stream with XADD MAXLEN ~ HUB_HISTORY_SIZE, which drops
  // only whole stream nodes (100 entries by default): nodes of 10 let a 20-event history
  // really lose its oldest events, as the recovered:false tests need.
  const redis = new RedisServer(["--stream-node-max-entries", "10"]);
  try {
    await redis.start();
  } catch (error) {
    await gateway.close();
    page.server.close();
    throw error;
  }
  const storeEnv = { REDIS_URL: redis.url, REDIS_PREFIX: "client-tests:" };
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
    ...storeEnv,
    HUB_HISTORY_SIZE: "20",
    // sessions are only records here: the tests publish every event themselves
    PIPELINE_ENGINE: "off",
    // these tests open many sockets and publish fast from one address on purpose
    RATE_LIMITS_ENABLED: "false",
  });
  gateway.serviceUrl = service.baseUrl;
  const stopAll = async (): Promise<void> => {
    await service.stop();
    await redis.stop();
    await gateway.close();
    page.server.closeAllConnections();
    await new Promise((resolve) => page.server.close(resolve));
  };
  let apiKeys: { agent: string; service: string; user: string };
  try {
    const [, agent, follower, user] = await Promise.all([
      service.start(),
      createApiKey("ts-renderer", "agent", storeEnv),
      createApiKey("ts-dashboard", "service", storeEnv),
      createApiKey("ts-alice", "user", storeEnv),
    ]);
    apiKeys = { agent: agent.key, service: follower.key, user: user.key };
  } catch (error) {
    await stopAll();
    throw error;
  }
  project.provide("service", {
    baseUrl: service.baseUrl,
    jwtSecret,
    gatewayUrl: `ws://127.0.0.1:${gateway.port}/${gateway.stage}`,
    pageOrigin: page.origin,
    storeEnv,
    apiKeys,
  });
  return stopAll;
}
