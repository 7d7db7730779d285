import { describe, expect, it } from "vitest";
import { loadOptions } from "../../bench/options.ts";

describe("bench options", () => {
  it("runs streams at least three rounds by default, and as many as the load rounds when more", () => {
    expect(loadOptions([], {}).streamRounds).toBe(3);
    expect(loadOptions(["--rounds", "5"], {}).streamRounds).toBe(5);
    expect(loadOptions([], { BENCH_ROUNDS: "4" }).streamRounds).toBe(4);
  });

  it("keeps a quick run quick: one stream round unless asked", () => {
    expect(loadOptions(["--quick"], {}).streamRounds).toBe(1);
    expect(loadOptions(["--quick", "--rounds", "2"], {}).streamRounds).toBe(2);
  });

  it("takes --stream-rounds over BENCH_STREAM_ROUNDS over the default", () => {
    expect(loadOptions(["--stream-rounds", "2"], { BENCH_STREAM_ROUNDS: "7" }).streamRounds).toBe(2);
    expect(loadOptions([], { BENCH_STREAM_ROUNDS: "7" }).streamRounds).toBe(7);
  });

  it("refuses a stream round count below one, naming the flag and the variable", () => {
    expect(() => loadOptions(["--stream-rounds", "0"], {})).toThrow(
      "--stream-rounds (BENCH_STREAM_ROUNDS) must be a number >= 1, not 0",
    );
  });
});
