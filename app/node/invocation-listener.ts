import type { IncomingMessage, ServerResponse } from "node:http";
import type { TLSSocket } from "node:tls";
import { isAlreadySent } from "../lib/already-sent.ts";
import { errorAnswer } from "../lib/error-answer.ts";
import { ApiError } from "../lib/errors.ts";
import type { Logger } from "../lib/logger.ts";
import { logRequest } from "../middleware/access-log/index.ts";
import { authenticateToken, checkAccess } from "../middleware/authorize/index.ts";
import { recordHttpRequest } from "../middleware/metrics/index.ts";
import { requestIdFor } from "../middleware/request-id/index.ts";
import {
  type InvocationPath,
  type InvocationRequest,
  invoke,
  type NodeBindings,
  parseInvocationPath,
  peerAddressOf,
} from "../routes/invoke/invocation.ts";
import type { AppServices } from "../types.ts";

/** Takes a request and answers it (true), or leaves it to the app (false). */
export type PreRoutedListener = (incoming: IncomingMessage, outgoing: ServerResponse) => boolean;

/**
 * Invocations on Node, answered before @hono/node-server and Hono see them. Converting Node's
 * request for Fetch, routing it among the whole API and running the global middleware cost as
 * much CPU as a bare Node proxy spends on the entire request, and a gateway in front of functions
 * is judged by that proxy. This path does what the app's invocation routes do, with the same code
 * (`invoke`, `authenticateToken`, `errorAnswer`, the metrics and access-log recorders), minus the
 * detour. Anything unusual (percent-escapes, which Hono decodes; no app name) goes to the app.
 *
 * Null when the engine cannot stream to Node sockets: its invocations need the Fetch Request,
 * which only the app builds.
 */
export function preRoutedInvocations(services: AppServices): PreRoutedListener | null {
  if (!services.engine.invokeStreaming) return null;
  return function preRoutedInvocation(incoming, outgoing) {
    const url = incoming.url ?? "";
    if (!url.startsWith("/r/") && !url.startsWith("/v1/r/")) return false;
    const queryStart = url.indexOf("?");
    const path = queryStart === -1 ? url : url.slice(0, queryStart);
    if (path.includes("%")) return false;
    const parsed = parseInvocationPath(path);
    if (!parsed) return false;
    answer(services, incoming, outgoing, path, parsed).catch((error: unknown) => {
      services.logger.error("unhandled error", { error });
      if (!outgoing.destroyed) outgoing.destroy();
    });
    return true;
  };
}

async function answer(
  services: AppServices,
  incoming: IncomingMessage,
  outgoing: ServerResponse,
  path: string,
  parsed: InvocationPath,
): Promise<void> {
  const started = performance.now();
  const requestId = requestIdFor(headerOf(incoming, "x-openstack-request-id"));
  let log = services.logger.child({ request_id: requestId });
  let status: number;
  try {
    if (parsed.projectId !== null) {
      // As `authorize("write")` on the app's private invocation route.
      const identity = await authenticateToken(
        services,
        headerOf(incoming, "x-auth-token"),
        parsed.projectId,
      );
      log = log.child({ user_id: identity.userId, project_id: identity.projectId });
      const refusal = checkAccess(identity, parsed.projectId, "write", services.roleNames);
      if (refusal) throw new ApiError("forbidden", refusal);
    }
    const response = await invoke(new NodeInvocation(services, incoming, outgoing, requestId, log), parsed);
    // With Node bindings and a streaming engine, `invoke` writes every answer to the socket itself.
    if (!isAlreadySent(response)) throw new Error("invocation answer was not written to the socket");
    status = response.status;
  } catch (caught) {
    status = writeError(outgoing, errorAnswer(caught, log), requestId);
  }
  const method = incoming.method ?? "GET";
  recordHttpRequest(services.metrics, method, parsed.template, status, started);
  logRequest(log, method, path, status, started);
}

/** The app's JSON error answer, written to Node's response; the status, for metrics and logs. */
function writeError(
  outgoing: ServerResponse,
  { status, body, headers }: ReturnType<typeof errorAnswer>,
  requestId: string,
): number {
  if (outgoing.headersSent || outgoing.destroyed) {
    // Too late for an answer: the client sees its response end early instead of hanging.
    if (!outgoing.destroyed) outgoing.destroy();
    return status;
  }
  const text = JSON.stringify(body);
  outgoing.writeHead(status, {
    ...headers,
    "content-type": "application/json",
    "content-length": Buffer.byteLength(text),
    "x-openstack-request-id": requestId,
  });
  outgoing.end(text);
  return status;
}

/** A header as Fetch's `Headers.get` gives it: repeated values joined. Names are lowercase. */
function headerOf(incoming: IncomingMessage, name: string): string | undefined {
  const value = incoming.headers[name];
  return Array.isArray(value) ? value.join(", ") : value;
}

/** An invocation straight from Node's request; the methods live on the prototype, not per call. */
class NodeInvocation implements InvocationRequest {
  readonly method: string;
  readonly pathAndQuery: string;
  readonly node: NodeBindings;
  readonly web = null;
  readonly peerAddress: string;

  constructor(
    readonly services: AppServices,
    private readonly incoming: IncomingMessage,
    outgoing: ServerResponse,
    readonly requestId: string,
    readonly log: Logger,
  ) {
    this.method = incoming.method ?? "GET";
    // A server's request always has its URL (the pre-routing read it).
    this.pathAndQuery = incoming.url as string;
    this.node = { incoming, outgoing };
    this.peerAddress = peerAddressOf(incoming);
  }

  header(name: string): string | undefined {
    return headerOf(this.incoming, name);
  }

  origin(): string {
    const scheme = (this.incoming.socket as TLSSocket | undefined)?.encrypted ? "https" : "http";
    return `${scheme}://${this.incoming.headers.host ?? "localhost"}`;
  }
}
