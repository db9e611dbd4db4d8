/**
 * InterviewCall in headless Chromium, against the real service (greeter conversation):
 * the built package is loaded as ES modules in a page of a static server on another
 * origin (so CORS is exercised too), and drives start → microphone → events channel →
 * offer/answer with trickle ICE → active → a server-made offer answered on /rtc/answer →
 * a browser offer again (ICE restart) →
 * end → results.
 */
import { afterAll, beforeAll, expect, it } from "vitest";
import { Chromium } from "./support/chromium.js";
import { service, until, userToken } from "./support/helpers.js";

type PageState = {
  loaded: boolean;
  phase: string;
  sessionId: string | null;
  events: { type: string; status?: string; item?: { role: string; text: string } }[];
  errors: string[];
  iceStates: string[];
  tracks: number;
  candidatesSent: number;
  pcState: string | null;
  final: { status: string; end_reason?: string } | null;
  results: { transcript: { role: string; text: string }[] } | null;
};

/** pb0's address in the namespace scripts/netns.sh makes for the suite. */
const NAMESPACE_ADDRESS = "10.77.1.1";

const browser = new Chromium();
let page: PageState;
const refresh = async (): Promise<PageState> => (page = await browser.evaluate<PageState>("window.snapshot()"));
const waitFor = async (what: string, probe: (state: PageState) => boolean, timeoutMs = 20_000): Promise<PageState> => {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    await refresh();
    if (probe(page)) return page;
    if (page.errors.length > 0) throw new Error(`page errors: ${page.errors.join("; ")}`);
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}: ${JSON.stringify(page)}\n${browser.console.join("\n")}`);
    await new Promise((resolve) => setTimeout(resolve, 150));
  }
};

beforeAll(async () => {
  const { baseUrl, pageOrigin } = service();
  const token = userToken("chromium-client", "user");
  const url = `${pageOrigin}/test/browser/interview.html?api=${encodeURIComponent(baseUrl)}&token=${token}`;
  await browser.open(url);
  await until("the page's module", () => true);
  const deadline = Date.now() + 20_000;
  while (!(await browser.evaluate<boolean>("Boolean(window.clientTest && window.clientTest.loaded)"))) {
    if (Date.now() > deadline) throw new Error(`the page did not load the package: ${browser.log()}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}, 60_000);

afterAll(async () => {
  await browser.close();
});

it("runs an interview from start to results in a real browser", async () => {
  const sessionId = await browser.evaluate<string>("window.startCall()");
  expect(sessionId).toMatch(/.+/);
  await waitFor("the call to be active", (s) => s.phase === "active", 30_000);
  expect(page.events.some((e) => e.type === "state" && e.status === "active")).toBe(true);
  await waitFor("the interviewer's greeting", (s) =>
    s.events.some((e) => e.type === "transcript" && e.item?.role === "interviewer"),
  );
  expect(page.candidatesSent).toBeGreaterThan(0); // trickled, not only in the offer
  // The media stays inside the suite's network namespace (scripts/netns.sh): every
  // candidate either peer gathered is the namespace's 10.77.1.1 or loopback (Chromium's,
  // with --allow-loopback-in-peer-connection; aiortc gathers none), and the pair in use
  // ends on the server's 10.77.1.1.
  type Ice = { local: string[]; remote: string[]; selected: string[] | null };
  let ice = await browser.evaluate<Ice>("window.candidates()");
  for (let tries = 0; ice.selected === null && tries < 50; tries += 1) {
    await new Promise((resolve) => setTimeout(resolve, 100)); // the stats name the pair soon after
    ice = await browser.evaluate<Ice>("window.candidates()");
  }
  const inside = [NAMESPACE_ADDRESS, "127.0.0.1", "::1"];
  for (const address of [...ice.local, ...ice.remote, ...(ice.selected ?? [])]) {
    expect(inside, JSON.stringify(ice)).toContain(address);
  }
  expect(ice.remote, JSON.stringify(ice)).toEqual(expect.arrayContaining([NAMESPACE_ADDRESS]));
  expect(ice.selected?.[1], JSON.stringify(ice)).toBe(NAMESPACE_ADDRESS);

  // renegotiation the other way round: the server offers, the browser answers on /rtc/answer
  await browser.evaluate("window.call.acceptServerOffer()");
  await waitFor("the new peer connection to connect", (s) => s.pcState === "connected" || s.pcState === "completed", 30_000);

  // and the browser offers again (ICE restart on a fresh peer connection, /rtc/offer)
  const before = page.iceStates.length;
  await browser.evaluate("window.call.restartIce()");
  await waitFor("the restarted connection", (s) =>
    s.iceStates.length > before && (s.pcState === "connected" || s.pcState === "completed"), 30_000);

  const final = await browser.evaluate<{ status: string; end_reason?: string }>("window.endCall()");
  expect(final.status).toBe("ended");
  expect(final.end_reason).toBe("ended_by_client");
  await refresh();
  expect(page.phase).toBe("ended");
  expect(page.results!.transcript[0]!.role).toBe("interviewer");
  const status = await (await fetch(`${service().baseUrl}/api/interview/${sessionId}/status`, {
    headers: { authorization: `Bearer ${userToken("chromium-client", "user")}` },
  })).json();
  expect(status.status).toBe("ended");
  expect(status.media.frames_in).toBeGreaterThan(0); // the fake microphone reached the server
}, 90_000);
