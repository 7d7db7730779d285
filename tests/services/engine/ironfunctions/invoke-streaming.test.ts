// The Node path's engine call (`invokeStreaming`): the engine's answer goes into the writable the
// caller opens, paced by it, and a cancelled call stops the engine request. The upstream here is
// a plain HTTP server so the test controls exactly what it sends and sees what it is sent.
import { once } from "node:events";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { Readable, Writable } from "node:stream";
import { afterEach, describe, expect, it } from "vitest";
import { createIronFunctionsEngine } from "../../../../app/services/engine/ironfunctions/index.ts";
import {
  type CancelEmitter,
  EngineError,
  type StreamingEngineCall,
  type UploadProgress,
} from "../../../../app/services/engine/types.ts";
import { engineRoute } from "../../../support/engine-route.ts";

const MiB = 1024 * 1024;

const route = engineRoute({ path: "/stream", image: "stream" });

/** A cancellation the test fires by hand, shaped like the one the invocation core passes. */
class Cancel implements CancelEmitter {
  aborted = false;
  reason: unknown;
  private listener: (() => void) | null = null;
  on(_event: "abort", listener: () => void) {
    this.listener = listener;
    return this;
  }
  removeListener() {
    this.listener = null;
    return this;
  }
  fire(reason: Error) {
    this.aborted = true;
    this.reason = reason;
    this.listener?.();
  }
}

const callWith = (signal: CancelEmitter, calledRoute = route): StreamingEngineCall => ({
  engineApp: "app",
  appConfig: {},
  route: calledRoute,
  method: "GET",
  path: calledRoute.path,
  query: "",
  forwardAuthHeaders: false,
  requestId: "req-00000000-0000-0000-0000-000000000000",
  rawHeaders: [],
  body: null,
  upload: null,
  signal,
});

let cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
  cleanups = [];
});

async function upstream(
  handler: (req: IncomingMessage, res: ServerResponse) => void,
  invokeTimeoutMarginMs?: number,
) {
  const requests: string[] = [];
  const server: Server = createServer((req, res) => {
    requests.push(req.url ?? "");
    handler(req, res);
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const { port } = server.address() as AddressInfo;
  const engine = createIronFunctionsEngine({ url: `http://127.0.0.1:${port}/v1`, invokeTimeoutMarginMs });
  cleanups.push(async () => {
    await engine.close();
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });
  // The IronFunctions driver always streams to Node writables; the Engine type leaves it optional.
  const invoke = (engine.invokeStreaming as NonNullable<typeof engine.invokeStreaming>).bind(engine);
  return { invoke, requests };
}

/** Writes `total` bytes in 1 MiB chunks as fast as the connection takes them; counts what it wrote. */
function streamBytes(total: number) {
  const progress = { written: 0, finished: false, closedEarly: false };
  const chunk = Buffer.alloc(MiB, 7);
  const handler = (_req: IncomingMessage, res: ServerResponse) => {
    res.writeHead(200, { "content-type": "application/octet-stream", "content-length": String(total) });
    res.on("close", () => {
      if (!res.writableFinished) progress.closedEarly = true;
    });
    const pump = () => {
      while (progress.written < total && !res.destroyed) {
        progress.written += chunk.length;
        if (!res.write(chunk)) {
          res.once("drain", pump);
          return;
        }
      }
      if (!res.destroyed) res.end(() => (progress.finished = true));
    };
    pump();
  };
  return { progress, handler };
}

/** A sink whose writes complete only while `flowing`; counts what it took. */
function gatedSink() {
  const state = { received: 0, flowing: false, opened: 0 };
  let held: (() => void) | null = null;
  const sink = new Writable({
    highWaterMark: 64 * 1024,
    write(chunk: Buffer, _encoding, done) {
      state.received += chunk.length;
      if (state.flowing) done();
      else held = done;
    },
  });
  return {
    state,
    sink,
    open: () => {
      state.opened++;
      return sink;
    },
    release() {
      state.flowing = true;
      const done = held;
      held = null;
      done?.();
    },
  };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe("IronFunctions driver: streamed invocations", () => {
  it("paces the engine by the caller's writable, then delivers every byte", async () => {
    const total = 128 * MiB;
    const { progress, handler } = streamBytes(total);
    const { invoke } = await upstream(handler);
    const gate = gatedSink();
    const invocation = invoke(callWith(new Cancel()), gate.open);
    await sleep(500);
    // Held back by a writable that takes nothing: only socket buffers' worth has left the engine.
    expect(progress.written).toBeLessThan(32 * MiB);
    expect(gate.state.received).toBeLessThan(2 * MiB);
    gate.release();
    await invocation;
    expect(gate.state.received).toBe(total);
    expect(gate.state.opened).toBe(1);
  });

  it("stops the engine request when the call is cancelled mid-answer", async () => {
    const { progress, handler } = streamBytes(128 * MiB);
    const { invoke } = await upstream(handler);
    const gate = gatedSink();
    const cancel = new Cancel();
    const invocation = invoke(callWith(cancel), gate.open);
    await sleep(200);
    const reason = new Error("the client went away");
    cancel.fire(reason);
    // Started answers fail with the raw reason: the caller can only cut the response short.
    await expect(invocation).rejects.toBe(reason);
    expect(gate.sink.destroyed).toBe(true);
    await sleep(100);
    expect(progress.closedEarly).toBe(true);
    expect(progress.finished).toBe(false);
  });

  it("never sends a call cancelled before it had a connection", async () => {
    const { invoke, requests } = await upstream((_req, res) => res.end("ok"));
    const cancel = new Cancel();
    const reason = new Error("cancelled early");
    cancel.fire(reason);
    const gate = gatedSink();
    await expect(invoke(callWith(cancel), gate.open)).rejects.toBe(reason);
    await sleep(100);
    expect(requests).toEqual([]);
    expect(gate.state.opened).toBe(0);
  });

  it("takes the engine's own 404 as a missing route and opens no writable", async () => {
    const { invoke } = await upstream((_req, res) => {
      res.writeHead(404, { "content-type": "application/json" });
      res.end('{"error":{"message":"Route not found"}}');
    });
    const gate = gatedSink();
    const error = await invoke(callWith(new Cancel()), gate.open).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(EngineError);
    expect((error as EngineError).kind).toBe("not_found");
    expect(gate.state.opened).toBe(0);
  });

  it("stops the engine request when the caller's writable fails", async () => {
    const { progress, handler } = streamBytes(128 * MiB);
    const { invoke } = await upstream(handler);
    const failure = new Error("answer too large to hold");
    let taken = 0;
    const failing = new Writable({
      write(chunk: Buffer, _encoding, done) {
        taken += chunk.length;
        done(taken > 4 * MiB ? failure : undefined);
      },
    });
    await expect(invoke(callWith(new Cancel()), () => failing)).rejects.toBe(failure);
    await sleep(100);
    expect(progress.closedEarly).toBe(true);
    expect(progress.finished).toBe(false);
  });

  describe("the route's timeout", () => {
    // One second of route timeout and 200 ms of margin: the gateway's deadline is 1.2 s.
    const quickRoute = engineRoute({ path: "/stream", image: "stream", timeout: 1 });
    const marginMs = 200;

    /** Calls `quickRoute` and expects the call to fail as the engine timing out. */
    async function expectTimeout(
      invoke: Awaited<ReturnType<typeof upstream>>["invoke"],
      open: () => Writable,
    ): Promise<void> {
      const error = await invoke(callWith(new Cancel(), quickRoute), open).catch((caught: unknown) => caught);
      expect(error).toBeInstanceOf(EngineError);
      expect((error as EngineError).kind).toBe("timeout");
    }

    it("gives up on an engine that does not start its answer, before opening a writable", async () => {
      const { invoke } = await upstream(() => {}, marginMs);
      const gate = gatedSink();
      const started = performance.now();
      await expectTimeout(invoke, gate.open);
      expect(performance.now() - started).toBeGreaterThanOrEqual(1100);
      expect(gate.state.opened).toBe(0);
    });

    it("cuts the answer short when the engine stalls in the middle of its body", async () => {
      let closedEarly = false;
      const { invoke } = await upstream((_req, res) => {
        res.writeHead(200, { "content-type": "application/octet-stream", "content-length": "1000" });
        res.write(Buffer.alloc(100));
        res.on("close", () => {
          closedEarly = !res.writableFinished;
        });
      }, marginMs);
      const gate = gatedSink();
      gate.release();
      await expectTimeout(invoke, gate.open);
      expect(gate.state.received).toBe(100);
      expect(gate.sink.destroyed).toBe(true);
      await sleep(100);
      expect(closedEarly).toBe(true);
    });

    /** A request body of `chunks` 1 KiB chunks sent `everyMs` apart, as the driver sees it. */
    function slowBody(chunks: number, everyMs: number, pacedByEngine: boolean) {
      const body = new Readable({ read() {} });
      let moved = false;
      let pushed = 0;
      const sending = setInterval(() => {
        body.push(Buffer.alloc(1024, 1));
        moved = true;
        pushed++;
        if (pushed === chunks) {
          clearInterval(sending);
          body.push(null);
        }
      }, everyMs);
      cleanups.push(async () => clearInterval(sending));
      const upload: UploadProgress = {
        movedAtEnginePace: () => {
          const movedSinceAsked = moved && pacedByEngine;
          moved = false;
          return movedSinceAsked;
        },
        onceSent: (listener) => {
          body.once("end", listener);
        },
      };
      return { body, upload };
    }

    /** An engine that reads the whole body, then answers its size after `thinkMs`. */
    const countingEngine = (thinkMs: number) => (req: IncomingMessage, res: ServerResponse) => {
      let received = 0;
      req.on("data", (chunk: Buffer) => {
        received += chunk.length;
      });
      req.on("end", () => setTimeout(() => res.end(String(received)), thinkMs));
    };

    /** Uploads a slow body to a counting engine; what came back, or the failure, and how long it took. */
    async function slowUpload(options: {
      chunks: number;
      everyMs: number;
      pacedByEngine: boolean;
      thinkMs: number;
    }) {
      const { invoke } = await upstream(countingEngine(options.thinkMs), marginMs);
      const { body, upload } = slowBody(options.chunks, options.everyMs, options.pacedByEngine);
      const gate = gatedSink();
      gate.release();
      const started = performance.now();
      const failure = await invoke(
        { ...callWith(new Cancel(), quickRoute), method: "POST", body, upload },
        gate.open,
      ).then(
        () => null,
        (caught: unknown) => caught,
      );
      return { failure, answerBytes: gate.state.received, ms: performance.now() - started };
    }

    /** The upload gets the engine's answer: the count of the bytes it took. */
    async function expectAnswered(options: Parameters<typeof slowUpload>[0]): Promise<void> {
      const { failure, answerBytes } = await slowUpload(options);
      expect(failure).toBeNull();
      expect(answerBytes).toBe(String(options.chunks * 1024).length);
    }

    it("does not run out while the engine is still taking the request body in", async () => {
      // Eight chunks 300 ms apart, each taken at the engine's pace: twice the deadline of upload.
      await expectAnswered({ chunks: 8, everyMs: 300, pacedByEngine: true, thinkMs: 300 });
    });

    it("counts an upload the client paces, then gives the function its whole deadline once it is sent", async () => {
      // Sent by 0.8 s at the client's pace; the answer comes 0.9 s later, past the first deadline
      // (1.2 s) but within one counted from the end of the body.
      await expectAnswered({ chunks: 4, everyMs: 200, pacedByEngine: false, thinkMs: 900 });
    });

    it("gives up on an upload the client paces for longer than the deadline", async () => {
      const { failure, ms } = await slowUpload({ chunks: 8, everyMs: 300, pacedByEngine: false, thinkMs: 0 });
      expect((failure as EngineError).kind).toBe("timeout");
      expect(ms).toBeLessThan(2000);
    });

    it("does not count the time the caller's full writable holds the answer back", async () => {
      const total = 64 * MiB;
      const { progress, handler } = streamBytes(total);
      const { invoke } = await upstream(handler, marginMs);
      const gate = gatedSink();
      const invocation = invoke(callWith(new Cancel(), quickRoute), gate.open);
      // Twice the deadline with the engine paused by the writable, not by itself.
      await sleep(2500);
      expect(progress.written).toBeLessThan(total);
      gate.release();
      await invocation;
      expect(gate.state.received).toBe(total);
    });
  });
});
