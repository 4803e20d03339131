#!/usr/bin/env node
// Drives the Starling dashboard in headless Chromium and checks what a person
// would see: a task's accuracy chart and leaderboard, the model market, and
// the try-it box of a model's page (draw a digit, press Predict, read the
// answer).
//
// Usage: node check.mjs BASE_URL TASK_ID MODEL_ID OUT_DIR [EXPECTED_JSON]
//
//   BASE_URL       the coordinator's HTTP address, e.g. http://127.0.0.1:7780
//   TASK_ID        a task whose rounds have been measured
//   MODEL_ID       a marketplace model taking one-channel images (e.g. 1×28×28)
//   OUT_DIR        where the screenshots go (created if missing)
//   EXPECTED_JSON  optional: {"rounds": n, "trainers": ["<64 hex digits>", ...]}
//                  n is the number of measured rounds: the chart must have
//                  exactly n accuracy points (rounds 0 to n-1); every listed
//                  trainer must be on the leaderboard.
//
// Chromium: $STARLING_CHROMIUM, else /usr/bin/chromium. Prints one JSON line to
// stdout ({"ok": true, ...} or {"ok": false, "error": ...}); exits 0 when every
// check passed, 1 when one failed, 2 on bad arguments.

import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { chromium } from "playwright-core";

const USAGE = "usage: node check.mjs BASE_URL TASK_ID MODEL_ID OUT_DIR [EXPECTED_JSON]";
const TIMEOUT_MS = 30_000;

/** A failed check: its message is printed as is. */
class CheckFailed extends Error {}

function check(condition, message) {
  if (!condition) throw new CheckFailed(message);
}

function parseArguments(argv) {
  const [base, task, model, outDir, expectedText] = argv;
  if (!base || !task || !model || !outDir || argv.length > 5) return { error: USAGE };
  if (!/^https?:\/\/[^/]+$/.test(base.replace(/\/$/, ""))) return { error: `BASE_URL must be http(s)://HOST[:PORT], got ${base}` };
  if (!/^\d+$/.test(task)) return { error: `TASK_ID must be a decimal number, got ${task}` };
  if (!/^\d+$/.test(model)) return { error: `MODEL_ID must be a decimal number, got ${model}` };
  let expected = null;
  if (expectedText !== undefined) {
    try {
      expected = JSON.parse(expectedText);
    } catch (error) {
      return { error: `EXPECTED_JSON is not JSON: ${error.message}` };
    }
    const trainersOk = expected.trainers === undefined ||
      (Array.isArray(expected.trainers) && expected.trainers.every((key) => /^[0-9a-f]{64}$/.test(key)));
    const roundsOk = expected.rounds === undefined || (Number.isInteger(expected.rounds) && expected.rounds >= 0);
    if (!trainersOk || !roundsOk) {
      return { error: 'EXPECTED_JSON must look like {"rounds": 3, "trainers": ["<64 lower-case hex digits>", ...]}' };
    }
  }
  return { base: base.replace(/\/$/, ""), task, model, outDir, expected };
}

/** Opens `url` and fails unless it answers 200 with HTML. */
async function open(page, url) {
  const response = await page.goto(url, { waitUntil: "load" });
  check(response !== null, `${url}: no response`);
  check(response.status() === 200, `${url}: HTTP ${response.status()}`);
  const type = response.headers()["content-type"] ?? "";
  check(type.startsWith("text/html"), `${url}: content type ${type}, not HTML`);
}

async function checkTask(page, base, task, expected, outDir, shots) {
  const url = `${base}/tasks/${task}`;
  await open(page, url);
  const svg = page.locator("#progress ~ figure.chart svg").first();
  check((await svg.count()) === 1, `${url}: no accuracy chart (figure.chart svg after #progress)`);
  // Each point is a circle whose tooltip reads "round N: accuracy X%".
  const titles = await svg.locator("circle > title").allTextContents();
  const accuracyRounds = titles
    .map((title) => /^round (\d+): accuracy /.exec(title))
    .filter((match) => match !== null)
    .map((match) => Number(match[1]));
  const distinct = new Set(accuracyRounds);
  check(accuracyRounds.length > 0, `${url}: the chart has no accuracy point`);
  check(distinct.size === accuracyRounds.length, `${url}: two accuracy points for one round: ${accuracyRounds}`);
  // The round table under the chart lists the same measured rounds.
  const tableRows = await page.locator("table#rounds tbody tr").evaluateAll((rows) =>
    rows.map((row) => Array.from(row.cells, (cell) => cell.textContent.trim())));
  const measured = tableRows.filter((cells) => cells[1] !== "–").map((cells) => Number(cells[0]));
  check(
    measured.length === accuracyRounds.length && measured.every((round) => distinct.has(round)),
    `${url}: the chart's accuracy points (rounds ${[...distinct]}) differ from the round table's measured rounds (${measured})`,
  );
  if (expected?.rounds !== undefined) {
    const wanted = Array.from({ length: expected.rounds }, (_, round) => round);
    check(
      accuracyRounds.length === expected.rounds && wanted.every((round) => distinct.has(round)),
      `${url}: expected one accuracy point for each of rounds 0 to ${expected.rounds - 1}, found rounds ${[...distinct].sort((a, b) => a - b)}`,
    );
  }
  const leaders = await page.locator("#leaderboard-table tbody tr").evaluateAll((rows) =>
    rows.map((row) => {
      const link = row.querySelector('a[href^="/accounts/"]');
      return link ? link.getAttribute("href").slice("/accounts/".length) : null;
    }));
  check(leaders.length > 0, `${url}: the leaderboard has no row`);
  for (const trainer of expected?.trainers ?? []) {
    check(leaders.includes(trainer), `${url}: trainer ${trainer} is not on the leaderboard (${leaders.length} rows)`);
  }
  const shot = join(outDir, "task.png");
  await page.screenshot({ path: shot, fullPage: true });
  shots.push(shot);
  return { rounds: tableRows.length, accuracy_points: accuracyRounds.length, leaderboard_rows: leaders.length };
}

async function checkMarket(page, base, model, outDir, shots) {
  const url = `${base}/market`;
  await open(page, url);
  const rows = await page.locator("#models-table tbody tr").count();
  check(rows > 0, `${url}: no model listed`);
  const link = page.locator(`#models-table a[href="/market/${model}"]`);
  check((await link.count()) === 1, `${url}: no link to model ${model}`);
  const shot = join(outDir, "market.png");
  await page.screenshot({ path: shot, fullPage: true });
  shots.push(shot);
  return { models: rows };
}

/** Draws a "1": a vertical stroke down the middle of the canvas, with mouse events. */
async function drawOne(page, canvas) {
  const box = await canvas.boundingBox();
  check(box !== null && box.width > 0 && box.height > 0, "the drawing canvas is not visible");
  const x = box.x + box.width / 2;
  await page.mouse.move(x - box.width * 0.06, box.y + box.height * 0.25);
  await page.mouse.down();
  await page.mouse.move(x, box.y + box.height * 0.18, { steps: 4 });
  await page.mouse.move(x, box.y + box.height * 0.82, { steps: 24 });
  await page.mouse.up();
}

async function checkModel(page, base, model, outDir, shots) {
  const url = `${base}/market/${model}`;
  await open(page, url);
  const box = page.locator("#try-it");
  check((await box.count()) === 1, `${url}: no try-it box (does the model take one-channel images?)`);
  await box.waitFor({ state: "visible", timeout: TIMEOUT_MS }).catch(() => {
    throw new CheckFailed(`${url}: the try-it box stayed hidden: its script did not run (blocked by the CSP?)`);
  });
  check(await page.locator("#try-it-nojs").isHidden(), `${url}: the "needs JavaScript" note is still shown`);
  const versions = await page.locator("#versions-table tbody tr").count();
  check(versions > 0, `${url}: no version listed`);
  let shot = join(outDir, "market-model.png");
  await page.screenshot({ path: shot, fullPage: true });
  shots.push(shot);

  await drawOne(page, page.locator("canvas#digit"));
  const predicted = page.waitForResponse((response) => response.url().endsWith("/predict"), { timeout: TIMEOUT_MS });
  await page.locator("button#predict").click();
  const response = await predicted;
  const status = page.locator("#try-it-status");
  if (response.status() !== 200) {
    await page.waitForFunction(() => /^\d{3}: /.test(document.getElementById("try-it-status").textContent));
    throw new CheckFailed(`${url}: the prediction failed: ${await status.textContent()}`);
  }
  await page.locator("#probabilities li").nth(9).waitFor({ timeout: TIMEOUT_MS });
  const label = (await page.locator("#prediction-label").textContent()).trim();
  check(/^[0-9]$/.test(label), `${url}: the predicted label is ${JSON.stringify(label)}, not a digit 0-9`);
  const bars = await page.locator("#probabilities li meter").evaluateAll((meters) => meters.map((m) => m.value));
  check(bars.length === 10, `${url}: ${bars.length} probability bars, not 10`);
  check(bars.every((p) => p >= 0 && p <= 1), `${url}: a probability is outside [0, 1]: ${bars}`);
  const sum = bars.reduce((a, b) => a + b, 0);
  check(Math.abs(sum - 1) < 0.01, `${url}: the probabilities add up to ${sum}, not 1`);
  const top = bars.indexOf(Math.max(...bars));
  check(top === Number(label), `${url}: the label ${label} is not the most probable class ${top}`);
  shot = join(outDir, "market-model-predicted.png");
  await page.screenshot({ path: shot, fullPage: true });
  shots.push(shot);
  return { versions, label: Number(label), probabilities: bars, status: (await status.textContent()).trim() };
}

async function main() {
  const args = parseArguments(process.argv.slice(2));
  if (args.error) {
    console.error(args.error);
    console.log(JSON.stringify({ ok: false, error: args.error }));
    process.exit(2);
  }
  mkdirSync(args.outDir, { recursive: true });
  const executablePath = process.env.STARLING_CHROMIUM || "/usr/bin/chromium";
  // Chromium refuses to sandbox itself as root (containers, CI).
  const launchArgs = process.getuid?.() === 0 ? ["--no-sandbox"] : [];
  const shots = [];
  const problems = [];
  let browser;
  try {
    browser = await chromium.launch({ executablePath, headless: true, args: launchArgs });
  } catch (error) {
    const message = `could not start Chromium at ${executablePath}: ${error.message.split("\n")[0]}`;
    console.error(message);
    console.log(JSON.stringify({ ok: false, error: message }));
    process.exit(1);
  }
  try {
    const context = await browser.newContext({ viewport: { width: 1200, height: 900 } });
    context.setDefaultTimeout(TIMEOUT_MS);
    const page = await context.newPage();
    // A policy violation or a script error means a page is broken, even if it looks fine.
    page.on("console", (message) => {
      // The server has no favicon; a browser asking for one is not the page's fault.
      if (message.type() === "error" && !message.location().url.endsWith("/favicon.ico")) {
        problems.push(`console: ${message.text()}`);
      }
    });
    page.on("pageerror", (error) => problems.push(`script error: ${error.message}`));
    const task = await checkTask(page, args.base, args.task, args.expected, args.outDir, shots);
    const market = await checkMarket(page, args.base, args.model, args.outDir, shots);
    const prediction = await checkModel(page, args.base, args.model, args.outDir, shots);
    check(problems.length === 0, `the pages reported errors:\n  ${problems.join("\n  ")}`);
    console.log(JSON.stringify({ ok: true, base: args.base, task, market, prediction, screenshots: shots }));
  } catch (error) {
    const message = error instanceof CheckFailed ? error.message : `unexpected failure: ${error.stack ?? error}`;
    const detail = problems.length > 0 && !message.includes("reported errors") ? `${message}\n(page errors: ${problems.join("; ")})` : message;
    console.error(`check failed: ${detail}`);
    console.log(JSON.stringify({ ok: false, error: detail, screenshots: shots }));
    process.exitCode = 1;
  } finally {
    await browser.close();
  }
}

await main();
