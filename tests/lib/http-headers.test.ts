import { describe, expect, it } from "vitest";
import { clientResponseHeaderRecord, engineRequestRawHeaders } from "../../app/lib/http-headers.ts";

describe("engineRequestRawHeaders", () => {
  it("drops hop-by-hop headers, credentials and the names Connection lists", () => {
    const raw = [
      "Host",
      "x",
      "Connection",
      "keep-alive, X-Hop",
      "X-Hop",
      "1",
      "X-Auth-Token",
      "t",
      "Accept",
      "*/*",
    ];
    expect(engineRequestRawHeaders(raw)).toEqual(["accept", "*/*"]);
  });

  it("keeps everything else when Connection lists no header", () => {
    for (const connection of ["keep-alive", "close"]) {
      const raw = ["Connection", connection, "X-Custom", "1"];
      expect(engineRequestRawHeaders(raw)).toEqual(["x-custom", "1"]);
    }
  });
});

describe("clientResponseHeaderRecord", () => {
  it("drops hop-by-hop headers and the names Connection lists", () => {
    expect(
      clientResponseHeaderRecord({
        connection: "X-Engine-Hop, Keep-Alive",
        "keep-alive": "timeout=5",
        "x-engine-hop": "1",
        "transfer-encoding": "chunked",
        "content-type": "text/plain",
      }),
    ).toEqual({ "content-type": "text/plain" });
  });

  it("passes the rest through when Connection is keep-alive or close", () => {
    for (const connection of ["keep-alive", "close"]) {
      expect(
        clientResponseHeaderRecord({
          connection,
          "keep-alive": "timeout=5",
          "x-fn": "1",
          "set-cookie": ["a", "b"],
        }),
      ).toEqual({ "x-fn": "1", "set-cookie": ["a", "b"] });
    }
  });
});
