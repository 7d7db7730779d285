/**
 * Keystone endpoints are configured every which way (`http://k:5000`, `http://k:5000/v3/`,
 * `https://cloud/identity`): `base` is the service root as given, `v3` the API root under it.
 */
export type KeystoneEndpoint = { base: string; v3: string };

export function parseKeystoneEndpoint(raw: string): KeystoneEndpoint {
  const url = new URL(raw.trim());
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new Error(`Keystone endpoint must be http(s): ${url.protocol}`);
  }
  url.search = "";
  url.hash = "";
  const path = url.pathname.replace(/\/+$/, "").replace(/\/v3$/i, "");
  const base = `${url.origin}${path}`;
  return { base, v3: `${base}/v3` };
}
