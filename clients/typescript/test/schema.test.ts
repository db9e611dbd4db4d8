/**
 * Drift check: the checked-in src/generated/openapi.ts must be what openapi-typescript makes
 * of the running service's /openapi.json. A change to the API without `npm run generate`
 * fails here (and so in scripts/test).
 */
import { readFile } from "node:fs/promises";
import { expect, it } from "vitest";
import { GENERATED, renderTypes } from "../scripts/openapi-types.mjs";
import { service } from "./support/helpers.js";

it("the generated REST types match the live OpenAPI document", async () => {
  const live = await (await fetch(`${service().baseUrl}/openapi.json`)).json();
  const expected = await renderTypes(live);
  const current = await readFile(GENERATED, "utf8");
  if (current !== expected) {
    throw new Error(
      "src/generated/openapi.ts is stale: run `npm run generate` in clients/typescript " +
        "(with the service's code as it is now) and commit the result",
    );
  }
  expect(current).toContain("/api/sessions/{session_id}/events");
});
