/**
 * The REST types at compile time (`npm run typecheck` fails if any of these lines is wrong)
 * and one typed call of each kind at run time against the service.
 */
import { expect, expectTypeOf, it } from "vitest";
import { ApiClient, ApiError, type RequestBody, type ResponseBody } from "../src/index.js";
import { agentApi, service, sessionId, userToken } from "./support/helpers.js";

it("types paths, parameters, bodies and answers from the OpenAPI document", async () => {
  expectTypeOf<RequestBody<"/api/sessions/{session_id}/events", "post">>().toHaveProperty("agent");
  expectTypeOf<ResponseBody<"/api/interview/{interview_id}/rtc/ice-candidate", "post">>().toEqualTypeOf<undefined>();
  const api = agentApi();
  const session = sessionId("typed");
  const published = await api.request("post", "/api/sessions/{session_id}/events", {
    path: { session_id: session },
    body: { agent: "renderer", status: "info", message: "typed" },
  });
  const page = await api.request("get", "/api/sessions/{session_id}/events", {
    path: { session_id: session },
    query: { after: 0, limit: 10 },
  });
  expect(published.seq).toBe(1);
  expect(page.last_seq).toBe(1);
  if (false as boolean) {
    // @ts-expect-error: no such path
    await api.request("get", "/api/nope");
    // @ts-expect-error: a status the service does not know
    await api.request("post", "/api/sessions/{session_id}/events", { path: { session_id: "s" }, body: { agent: "a", status: "done" } });
    // @ts-expect-error: the path parameter is session_id
    await api.request("get", "/api/sessions/{session_id}", { path: { id: "s" } });
  }
});

it("raises the service's error envelope as ApiError", async () => {
  const api = new ApiClient({ baseUrl: service().baseUrl, token: userToken("someone", "user") });
  const refused = await api
    .request("post", "/api/sessions/{session_id}/events", {
      path: { session_id: "render-x" },
      body: { agent: "renderer", status: "running" },
    })
    .catch((error: unknown) => error);
  expect(refused).toBeInstanceOf(ApiError);
  expect((refused as ApiError).status).toBe(403);
  expect((refused as ApiError).code).toMatch(/^[a-z_]+$/);
});
