// Where the service is, and how this app gets a token (replace with your auth provider's).
export const API_URL = process.env.NEXT_PUBLIC_API_URL ?? "http://localhost:8000";

/** A JWT for the service, or undefined when auth is off (development). */
export function useToken(): string | undefined {
  return process.env.NEXT_PUBLIC_DEV_TOKEN || undefined;
}
