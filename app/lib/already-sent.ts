/** @hono/node-server's marker: the handler wrote the response to the socket itself. */
export const alreadySentHeader = "x-hono-already-sent";

export function isAlreadySent(response: Response): boolean {
  // Identity first: a runtime Headers lookup costs about 0.14 µs, paid on every invocation.
  return sharedAnswers.has(response) || response.headers.has(alreadySentHeader);
}

/**
 * A body-less Response carrying the status already written to the socket, so the access log and
 * metrics see it, marked with @hono/node-server's `x-hono-already-sent`. node-server replaces the
 * global Response with a caching subclass that would write the headers a second time; its parent
 * is the runtime's own Response, which node-server lets through untouched.
 */
export function alreadySent(status: number): Response {
  // Nothing reads or changes these bodiless, header-only answers, so one per status serves all
  // requests: building a runtime Response (and its Headers) per invocation is measurable.
  let response = alreadySentByStatus.get(status);
  if (!response) {
    response = new (nativeResponse())(null, { status, headers: { [alreadySentHeader]: "true" } });
    alreadySentByStatus.set(status, response);
    sharedAnswers.add(response);
  }
  return response;
}

const alreadySentByStatus = new Map<number, Response>();
const sharedAnswers = new WeakSet<Response>();

/** Climbs to the root class: several node-server copies (tests) each subclass the previous one. */
function nativeResponse(): typeof Response {
  let NativeResponse: typeof Response = Response;
  for (;;) {
    const parent: unknown = Object.getPrototypeOf(NativeResponse);
    if (typeof parent !== "function" || parent === Function.prototype) break;
    NativeResponse = parent as typeof Response;
  }
  return NativeResponse;
}
