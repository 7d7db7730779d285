export { KeystoneAuthenticator, type KeystoneAuthenticatorOptions } from "./authenticator.ts";
export { type KeystoneEndpoint, parseKeystoneEndpoint } from "./endpoint.ts";
export type { KeystoneFetch, KeystoneResponse } from "./http.ts";
export type { ServiceCredentials } from "./service-token.ts";
