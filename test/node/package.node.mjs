/**
 * The package as a Node.js user gets it: `npm pack`, installed from the
 * tarball into an empty project, imported with plain `node`: reaps 500
 * orphans with no zombie left and no wrong exit code; `npx orphan-reaper
 * doctor` runs with only Node and npm on PATH; a TypeScript consumer
 * type-checks against the shipped declarations; without the optional koffi
 * the reaper is off with the reason.
 */
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { after, before, test } from "node:test";
import { fileURLToPath } from "node:url";
import { PID1_PREFIX, runNodeFixture, scaled, unshareMissing } from "./helpers.mjs";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "../..");
const FIXTURES = join(ROOT, "test/node/fixtures");
const ORPHANS = 500;
const pid1Missing = unshareMissing();
/** Only Node's and the system's directories: no Bun, no node_modules/.bin of this repo. */
const NODE_ONLY_PATH = [dirname(process.execPath), "/usr/local/bin", "/usr/bin", "/bin"].join(":");

/** The daemon fixture's argument: its waits scaled here, since it runs without helpers.mjs beside it. */
const daemonConfig = (config) => JSON.stringify({ timeoutMs: scaled(60_000), settleMs: scaled(200), ...config });

let work;
let tarball;

function npm(args, cwd) {
  return execFileSync("npm", [...args, "--no-audit", "--no-fund", "--prefer-offline"], { cwd, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"], timeout: scaled(300_000) });
}

/** An empty project with the tarball installed (and the fixtures copied in, so they import it by name). */
function consumerProject(name, extraInstallArgs = []) {
  const project = join(work, name);
  mkdirSync(project);
  writeFileSync(join(project, "package.json"), JSON.stringify({ name, private: true, type: "module" }));
  npm(["install", ...extraInstallArgs, tarball], project);
  for (const file of readdirSync(FIXTURES)) copyFileSync(join(FIXTURES, file), join(project, file));
  return project;
}

before(() => {
  work = mkdtempSync(join(tmpdir(), "orphan-reaper-pack-"));
  npm(["pack", "--pack-destination", work], ROOT);
  tarball = join(work, readdirSync(work).find((file) => file.endsWith(".tgz")));
}, { timeout: scaled(300_000) });

after(() => work && rmSync(work, { recursive: true, force: true }), { timeout: scaled(60_000) });

test("installed from the tarball, a plain node daemon reaps 500 orphans, no zombie left, no wrong exit code: netlink on the host, sigchld as PID 1 of a PID namespace", { timeout: scaled(600_000) }, () => {
  const project = consumerProject("consumer");
  const result = runNodeFixture(join(project, "daemon.mjs"), [daemonConfig({ orphans: ORPHANS, rounds: 2 })], {
    cwd: project,
    env: { ORPHAN_REAPER_MODULE: "orphan-reaper", PATH: NODE_ONLY_PATH },
  });
  assert.ok(["netlink", "sigchld"].includes(result.source), `an event-driven source, got ${result.source}`);
  assert.equal(result.reaped, ORPHANS);
  assert.equal(result.zombiesLeft, 0);
  assert.deepEqual(result.wrongExitCodes, []);

  const doctor = spawnSync("npx", ["--no-install", "orphan-reaper", "doctor", "--json"], {
    cwd: project, encoding: "utf8", env: { ...process.env, PATH: NODE_ONLY_PATH }, timeout: scaled(120_000),
  });
  assert.equal(NODE_ONLY_PATH.split(":").some((dir) => existsSync(join(dir, "bun"))), false, "no bun on this PATH");
  assert.equal(doctor.status, 0, doctor.stderr);
  const report = JSON.parse(doctor.stdout);
  assert.equal(report.eventDriven, true);
  assert.equal(report.runtimePidfds.holds, true);
  // Where the proc connector serves (the host, as root), the daemon chose it.
  if (report.procConnector.works) assert.equal(result.source, "netlink");
  else console.log(`# the proc connector does not serve here (${report.procConnector.reason}): the daemon ran on ${result.source}`);

  if (pid1Missing) console.log(`# skipping the PID 1 run from the tarball: ${pid1Missing}`);
  else {
    const asPid1 = runNodeFixture(join(project, "daemon.mjs"), [daemonConfig({ orphans: ORPHANS, rounds: 2 })], {
      cwd: project,
      prefix: PID1_PREFIX,
      env: { ORPHAN_REAPER_MODULE: "orphan-reaper", PATH: NODE_ONLY_PATH },
    });
    assert.equal(asPid1.source, "sigchld");
    assert.equal(asPid1.reaped, ORPHANS);
    assert.equal(asPid1.zombiesLeft, 0);
    assert.deepEqual(asPid1.wrongExitCodes, []);
  }

  writeFileSync(join(project, "consumer.ts"), [
    'import { startOrphanReaper, type OrphanReaper, type ReaperStats } from "orphan-reaper";',
    "const reaper: OrphanReaper = await startOrphanReaper({ graceMs: 1000 });",
    "const stats: ReaperStats = reaper.stats();",
    "export const source: string = stats.source;",
  ].join("\n"));
  writeFileSync(join(project, "tsconfig.json"), JSON.stringify({
    compilerOptions: { target: "ES2022", module: "NodeNext", moduleResolution: "NodeNext", strict: true, noEmit: true, skipLibCheck: false,
      // A Node project has @types/node (pino's declarations need it): this repo's copy.
      typeRoots: [join(ROOT, "node_modules/@types")], types: ["node"] },
    files: ["consumer.ts"],
  }));
  const tsc = spawnSync(process.execPath, [join(ROOT, "node_modules/typescript/bin/tsc"), "-p", project], { encoding: "utf8" });
  assert.equal(tsc.status, 0, `a TypeScript consumer type-checks against dist/*.d.ts: ${tsc.stdout}${tsc.stderr}`);
});

test("installed without optional dependencies (no koffi): off, with the reason", { timeout: scaled(300_000) }, () => {
  const project = consumerProject("without-koffi", ["--omit=optional"]);
  const result = runNodeFixture(join(project, "daemon.mjs"), [daemonConfig({ orphans: 0, rounds: 1 })], {
    cwd: project,
    env: { ORPHAN_REAPER_MODULE: "orphan-reaper" },
  });
  assert.equal(result.source, "off");
  assert.match(result.notChosen.off, /koffi, the libc binding on Node.js, is not installed/);
  assert.deepEqual(result.wrongExitCodes, []);
});
