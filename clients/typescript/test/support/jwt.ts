/** HS256 development tokens, as `pipeline-backend token` mints them. */
import { createHmac } from "node:crypto";

const b64 = (value: string | Buffer): string => Buffer.from(value).toString("base64url");

export function mintToken(secret: string, sub: string, role = "user", ttlS = 3600): string {
  const now = Math.floor(Date.now() / 1000);
  const header = b64(JSON.stringify({ alg: "HS256", typ: "JWT" }));
  const claims = b64(JSON.stringify({ sub, role, iat: now, exp: now + ttlS }));
  const signature = createHmac("sha256", secret).update(`${header}.${claims}`).digest();
  return `${header}.${claims}.${b64(signature)}`;
}
