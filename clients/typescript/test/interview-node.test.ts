/** InterviewCall where there is no microphone (Node): the failed start frees the server side. */
import { expect, it } from "vitest";
import { InterviewCall } from "../src/index.js";
import { service, userToken } from "./support/helpers.js";

it("a start that fails after the interview was created ends it on the server", async () => {
  const token = userToken("no-microphone", "user");
  const call = new InterviewCall({ baseUrl: service().baseUrl, token });
  const phases: string[] = [];
  call.on("phase", (phase) => phases.push(phase));
  call.on("error", () => undefined);
  await expect(call.start({ user_id: "no-microphone" })).rejects.toThrow();
  expect(phases).toEqual(["starting", "error"]);
  expect(call.sessionId).toMatch(/.+/);
  const deadline = Date.now() + 10_000;
  for (;;) {
    const response = await fetch(`${service().baseUrl}/api/interview/${call.sessionId}/status`, {
      headers: { authorization: `Bearer ${token}` },
    });
    const { status } = (await response.json()) as { status: string };
    if (status === "ended") break;
    expect(Date.now()).toBeLessThan(deadline);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
});
