import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { ConfigError, functionBaseEnv, loadServeConfig, parseFunctionsUrl } from "../../../app/config.ts";
import { silentLogger } from "../../../app/lib/logger.ts";
import { createEngine } from "../../../app/services/engine/index.ts";

const root = mkdtempSync(join(tmpdir(), "picasso-engine-factory-"));
writeFileSync(join(root, "a-file"), "");
afterAll(() => rmSync(root, { recursive: true, force: true }));

const base = { "db-uri": "mysql://root@127.0.0.1/picasso", "keystone-endpoint": "http://127.0.0.1:5000/v3" };
const options = { logger: silentLogger, baseEnv: functionBaseEnv({}) };

describe("--functions-url", () => {
  it("accepts local:<directory>, relative to the working directory, and makes it absolute", () => {
    expect(parseFunctionsUrl(`local:${root}`)).toEqual({ kind: "local", directory: root });
    expect(parseFunctionsUrl(`local:${relative(process.cwd(), root)}`)).toEqual({
      kind: "local",
      directory: root,
    });
    expect(parseFunctionsUrl("local:.", root)).toEqual({ kind: "local", directory: root });
    const config = loadServeConfig({ ...base, "functions-url": `local:${root}` }, {});
    expect(config["functions-url"]).toBe(`local:${root}`);
  });

  it("keeps accepting http(s) engine URLs", () => {
    expect(parseFunctionsUrl("https://engine.example:8080/v1/")).toEqual({
      kind: "http",
      url: "https://engine.example:8080/v1",
    });
  });

  it.each([
    [`local:${join(root, "missing")}`, /does not exist/],
    [`local:${join(root, "a-file")}`, /is not a directory/],
    ["local:", /must name a directory/],
    ["ftp://engine/v1", /http\(s\) URL without credentials, or local:<directory>/],
    ["http://user:pw@engine/v1", /without credentials/],
  ])("refuses %s with a config error naming the option", (value, message) => {
    const attempt = () => loadServeConfig({ ...base, "functions-url": value }, {});
    expect(attempt).toThrow(ConfigError);
    expect(attempt).toThrow("--functions-url (FUNCTIONS_URL)");
    expect(attempt).toThrow(message);
  });
});

describe("createEngine", () => {
  it("picks the local runner for local:<directory>", async () => {
    const engine = createEngine(`local:${root}`, options);
    expect(engine.kind).toBe("local");
    await engine.ping();
    await engine.close();
  });

  it("picks the IronFunctions driver for an http(s) URL", async () => {
    const engine = createEngine("http://127.0.0.1:1/v1", options);
    expect(engine.kind).toBe("ironfunctions");
    await engine.close();
  });

  it("refuses a missing local directory as a config error", () => {
    expect(() => createEngine(`local:${join(root, "missing")}`, options)).toThrow(ConfigError);
  });

  it("gives functions PATH and LANG from Picasso's environment and nothing else", () => {
    expect(functionBaseEnv({ PATH: "/x/bin", LANG: "de_DE.UTF-8", SECRET: "s" })).toEqual({
      PATH: "/x/bin",
      LANG: "de_DE.UTF-8",
    });
    expect(functionBaseEnv({})).toEqual({ PATH: "/usr/local/bin:/usr/bin:/bin", LANG: "C.UTF-8" });
  });
});
