import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { executableNameOf } from "../../../../app/services/engine/local/image.ts";
import { EngineError } from "../../../../app/services/engine/types.ts";
import { fixtures, testEngine, testRoute } from "./support.ts";

// A functions directory of its own, with links that stay inside it and links that leave it.
const root = mkdtempSync(join(tmpdir(), "picasso-local-image-"));
const directory = join(root, "functions");
mkdirSync(directory);
copyFileSync(join(fixtures, "quiet"), join(directory, "quiet"));
chmodSync(join(directory, "quiet"), 0o755);
symlinkSync("quiet", join(directory, "inside-link"));
symlinkSync("/bin/sh", join(directory, "outside-link"));
writeFileSync(join(root, "secret-tool"), "#!/bin/sh\necho outside\n", { mode: 0o755 });
symlinkSync("../secret-tool", join(directory, "relative-escape"));
writeFileSync(join(directory, "not-executable"), "#!/bin/sh\necho hi\n", { mode: 0o644 });
mkdirSync(join(directory, "subdir"));
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe("local runner: image mapping", () => {
  it("maps an image to the last path segment without tag or digest", () => {
    expect(executableNameOf("hello")).toBe("hello");
    expect(executableNameOf("picasso/hello:0.1")).toBe("hello");
    expect(executableNameOf("iron/hello")).toBe("hello");
    expect(executableNameOf("registry.example:5000/team/hello@sha256:abc")).toBe("hello");
    expect(executableNameOf("aodh-alarm:latest")).toBe("aodh-alarm");
  });

  it.each([
    ["../etc/passwd", /'\.\.'/],
    ["functions/../../bin/sh", /'\.\.'/],
    ["/bin/sh", /absolute path/],
    ["./hello", /'\.'/],
    ["team\\hello", /backslashes/],
    ["", /must not be empty/],
    ["team/", /must end in a file name/],
    ["team/-rf", /must end in a file name/],
  ])("refuses %j", (image, message) => {
    expect(() => executableNameOf(image)).toThrow(message);
  });
});

describe("local runner: routes are checked when created or updated", () => {
  const { engine } = testEngine({ directory });

  it("accepts an executable in the directory, also through a link that stays inside", async () => {
    await engine.createRoute("app", testRoute("picasso/quiet:0.1", { path: "/a" }));
    await engine.createRoute("app", testRoute("inside-link", { path: "/b" }));
    expect((await engine.listRoutes("app")).map((route) => route.path).sort()).toEqual(["/a", "/b"]);
    expect((await engine.listApps()).map((app) => app.name)).toContain("app");
  });

  it.each([
    ["../quiet", /^image: "\.\.\/quiet" must not contain/],
    ["/bin/sh", /absolute path/],
    ["outside-link", /resolves outside the functions directory/],
    ["relative-escape", /resolves outside the functions directory/],
    ["not-executable", /not executable/],
    ["subdir", /not a file/],
    ["nope", /names no function of the functions directory: there is no nope \(there is: .*quiet/],
  ])("refuses image %j with an invalid error naming the field", async (image, message) => {
    const error = await engine
      .createRoute("app", testRoute(image, { path: "/bad" }))
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(EngineError);
    expect(error).toMatchObject({ kind: "invalid" });
    expect((error as Error).message).toMatch(/^image: /);
    expect((error as Error).message).toMatch(message);
    const update = await engine
      .updateRoute("app", testRoute(image, { path: "/a" }), testRoute("quiet", { path: "/a" }))
      .catch((e: unknown) => e);
    expect(update).toMatchObject({ kind: "invalid" });
    expect((await engine.listRoutes("app")).find((route) => route.path === "/bad")).toBeUndefined();
    expect((await engine.listRoutes("app")).find((route) => route.path === "/a")?.image).toBe(
      "picasso/quiet:0.1",
    );
  });

  it("refuses hot functions (format http) as invalid", async () => {
    await expect(
      engine.createRoute("app", testRoute("quiet", { path: "/hot", format: "http" })),
    ).rejects.toMatchObject({
      kind: "invalid",
      message: expect.stringMatching(/^format: "http"/),
    });
  });

  it("refuses at invocation a link that was made to escape after the route was created", async () => {
    const response = await engine.invoke({
      engineApp: "app",
      appConfig: {},
      route: testRoute("outside-link"),
      method: "GET",
      path: "/fn",
      query: "",
      headers: new Headers(),
      body: null,
      requestId: "r",
      signal: new AbortController().signal,
    });
    expect(response.status).toBe(500);
    expect(await response.json()).toMatchObject({ error: { code: "function_error" } });
  });

  it("keeps CRUD idempotent: Picasso's database is the truth, the runner only remembers", async () => {
    await engine.createApp({ name: "crud", config: { A: "1" } });
    await engine.createApp({ name: "crud", config: { A: "2" } });
    await engine.updateAppConfig("crud", { B: "3" }, { A: "2" });
    expect((await engine.listApps()).find((app) => app.name === "crud")?.config).toEqual({ B: "3" });
    await engine.deleteRoute("crud", "/never-created");
    await engine.deleteApp("crud");
    await engine.deleteApp("crud");
    expect((await engine.listApps()).find((app) => app.name === "crud")).toBeUndefined();
  });
});
