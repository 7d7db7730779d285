import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { exampleFunctionsDir } from "../../app/config.ts";
import { bodyOf, testCall, testEngine, testRoute } from "../services/engine/local/support.ts";

const notification = readFileSync(
  new URL("../../examples/openstack-alarms/notification.json", import.meta.url),
  "utf8",
);

describe("examples/functions", () => {
  const { engine } = testEngine({ directory: exampleFunctionsDir });

  it("hello greets the world, or the name in its JSON input", async () => {
    const world = await engine.invoke(testCall(testRoute("hello"), { method: "POST" }));
    expect(await world.text()).toBe("Hello World!\n");
    const named = await engine.invoke(
      testCall(testRoute("picasso/hello:0.1"), { body: bodyOf('{"name": "Ada"}') }),
    );
    expect(await named.text()).toBe("Hello Ada!\n");
    const viaPayload = await engine.invoke(
      testCall(testRoute("hello"), {
        method: "GET",
        query: `payload=${encodeURIComponent('{"name":"Grace"}')}`,
      }),
    );
    expect(await viaPayload.text()).toBe("Hello Grace!\n");
  });

  it("echo answers with its input", async () => {
    const response = await engine.invoke(
      testCall(testRoute("echo"), { body: bodyOf("ping\nwith two lines") }),
    );
    expect(await response.text()).toBe("ping\nwith two lines");
  });

  it("aodh-alarm summarises an Aodh notification in one line", async () => {
    const response = await engine.invoke(testCall(testRoute("aodh-alarm"), { body: bodyOf(notification) }));
    expect(response.status).toBe(200);
    expect(await response.text()).toBe(
      "alarm cpu_high (f3460bad-2b5c-4c2f-b6e0-e82973e6ec71) insufficient data -> alarm: " +
        "Transition to alarm due to 1 samples outside threshold, most recent: 36.7\n",
    );
  });

  it("aodh-alarm fails (exit 2) on input that is not an alarm", async () => {
    const response = await engine.invoke(testCall(testRoute("aodh-alarm"), { body: bodyOf("not json") }));
    expect(response.status).toBe(500);
    expect(await response.json()).toMatchObject({ error: { message: "exit code 2" } });
  });
});
