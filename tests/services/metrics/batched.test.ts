import { describe, expect, it } from "vitest";
import { createMetrics } from "../../../app/services/metrics/index.ts";

/** One sample's value from the exposition text, or undefined when absent. */
function sample(text: string, name: string, labels: string): number | undefined {
  const line = text.split("\n").find((candidate) => candidate.startsWith(`${name}{${labels}}`));
  return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(" ") + 1));
}

describe("batched request and invocation metrics", () => {
  it("are exact at every scrape, however many events wait in a batch", async () => {
    const metrics = createMetrics();
    // More than one batch for one series, a part batch for another.
    for (let index = 0; index < 1300; index++) {
      metrics.invocations.record({ outcome: "success" }, index % 2 === 0 ? 0.02 : 3);
    }
    for (let index = 0; index < 7; index++) metrics.invocations.record({ outcome: "timeout" }, 400);
    let text = await metrics.registry.metrics();
    expect(sample(text, "picasso_invocations_total", 'outcome="success"')).toBe(1300);
    expect(sample(text, "picasso_invocation_duration_seconds_count", 'outcome="success"')).toBe(1300);
    expect(sample(text, "picasso_invocation_duration_seconds_bucket", 'le="0.05",outcome="success"')).toBe(
      650,
    );
    expect(sample(text, "picasso_invocation_duration_seconds_bucket", 'le="5",outcome="success"')).toBe(1300);
    expect(sample(text, "picasso_invocation_duration_seconds_sum", 'outcome="success"')).toBeCloseTo(
      650 * 0.02 + 650 * 3,
      6,
    );
    expect(sample(text, "picasso_invocations_total", 'outcome="timeout"')).toBe(7);
    expect(sample(text, "picasso_invocation_duration_seconds_bucket", 'le="300",outcome="timeout"')).toBe(0);
    expect(sample(text, "picasso_invocation_duration_seconds_bucket", 'le="+Inf",outcome="timeout"')).toBe(7);

    metrics.httpRequests.record({ method: "GET", route: "/r/:app/*", status_class: "2xx" }, 0.001);
    metrics.invocations.record({ outcome: "timeout" }, 400);
    text = await metrics.registry.metrics();
    expect(
      sample(text, "picasso_http_requests_total", 'method="GET",route="/r/:app/*",status_class="2xx"'),
    ).toBe(1);
    expect(sample(text, "picasso_invocations_total", 'outcome="timeout"')).toBe(8);
    expect(sample(text, "picasso_invocations_total", 'outcome="success"')).toBe(1300);
  });

  it("keep each label set apart, even when a caller reuses its labels object", async () => {
    const metrics = createMetrics();
    const labels = { method: "POST", route: "/v1/:project_id/apps", status_class: "2xx" as const };
    metrics.httpRequests.record(labels, 0.01);
    labels.status_class = "4xx" as "2xx";
    metrics.httpRequests.record(labels, 0.01);
    const text = await metrics.registry.metrics();
    expect(
      sample(
        text,
        "picasso_http_requests_total",
        'method="POST",route="/v1/:project_id/apps",status_class="2xx"',
      ),
    ).toBe(1);
    expect(
      sample(
        text,
        "picasso_http_requests_total",
        'method="POST",route="/v1/:project_id/apps",status_class="4xx"',
      ),
    ).toBe(1);
  });

  it("count token cache results exactly at every scrape", async () => {
    const metrics = createMetrics();
    for (let index = 0; index < 5; index++) metrics.tokenCache.inc({ result: "hit" });
    metrics.tokenCache.inc({ result: "miss" }, 2);
    let text = await metrics.registry.metrics();
    expect(sample(text, "picasso_token_cache_total", 'result="hit"')).toBe(5);
    expect(sample(text, "picasso_token_cache_total", 'result="miss"')).toBe(2);
    metrics.tokenCache.inc({ result: "hit" });
    text = await metrics.registry.metrics();
    expect(sample(text, "picasso_token_cache_total", 'result="hit"')).toBe(6);
    expect(sample(text, "picasso_token_cache_total", 'result="miss"')).toBe(2);
  });
});
