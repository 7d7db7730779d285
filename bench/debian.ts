/**
 * Installs a missing tool from Debian (wrk, nginx-light) the first time the benchmark needs it.
 * `apt-get update` runs only when something is missing. Package scripts are told not to start
 * services: the benchmark runs its own nginx, never the system one.
 */
import { accessSync, constants, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { log, output, start } from "./children.ts";

export function executable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

let updated = false;

/** Resolves once `binary` exists; throws a message fit for the JSON output otherwise. */
export async function ensureInstalled(binary: string, debianPackage: string): Promise<void> {
  if (executable(binary)) return;
  if (process.getuid?.() !== 0) {
    throw new Error(
      `${binary} is missing and installing ${debianPackage} needs root (apt-get install ${debianPackage})`,
    );
  }
  if (!executable("/usr/bin/apt-get")) throw new Error(`${binary} is missing and there is no apt-get`);
  const policyDir = mkdtempSync(join(tmpdir(), "bench-policy-"));
  const policy = join(policyDir, "policy-rc.d");
  // invoke-rc.d consults $POLICYRCD: exit 101 = "do not start services".
  writeFileSync(policy, "#!/bin/sh\nexit 101\n", { mode: 0o755 });
  const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive", POLICYRCD: policy };
  const apt = async (args: string[]) => {
    const child = start({
      name: "apt-get",
      command: "/usr/bin/apt-get",
      args: ["-o", "DPkg::Lock::Timeout=600", ...args],
      env,
      captureStdout: true,
    });
    const { code } = await output(child, 15 * 60_000);
    if (code !== 0) throw new Error(`apt-get ${args.join(" ")} failed (${code})`);
  };
  try {
    log(`${binary} is missing: installing Debian package ${debianPackage}`);
    if (!updated) {
      await apt(["update", "-qq"]);
      updated = true;
    }
    await apt(["install", "-y", "-qq", "--no-install-recommends", debianPackage]);
  } finally {
    rmSync(policyDir, { recursive: true, force: true });
  }
  if (!executable(binary)) throw new Error(`${debianPackage} installed but ${binary} is still missing`);
}
