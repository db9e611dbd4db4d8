/**
 * The suite runs inside a network namespace of its own (scripts/netns.sh, which `npm test`
 * uses): only loopback and the namespace's veth pair, so no test can reach another
 * machine or this machine's own services, and WebRTC media stays on 10.77.1.1.
 */
import { networkInterfaces } from "node:os";
import { expect, it } from "vitest";

it("runs in its own network namespace: loopback and pb0 (10.77.1.1) only", () => {
  expect(process.env.PIPELINE_NETNS, "run the suite with `npm test` (scripts/netns.sh)").toBe("1");
  const addresses = Object.entries(networkInterfaces()).flatMap(([name, infos]) =>
    (infos ?? []).filter((info) => !info.address.startsWith("fe80:")).map((info) => `${name} ${info.address}`),
  ); // (link-local IPv6, if the namespace could not turn it off, reaches nothing either)
  expect(addresses.sort()).toEqual(["lo 127.0.0.1", "lo ::1", "pb0 10.77.1.1"].sort());
});
