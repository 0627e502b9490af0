// Walks the customer pages in Debian's Chromium through playwright-core,
// against a running workload serving EVENT (see workloads/tests/pages.rs).
//
// Usage: node walk.cjs BASE_URL EVENT OUT_DIR [--queue-only]
//   env: TT_CHROMIUM (the browser), NODE_PATH (playwright-core's node_modules)
//
// The event must have slots `early`, `late` (roomy) and `tiny` (capacity 1),
// and a few customers already waiting so the waiting screen shows a number.
//
//  A (ko-KR, 360 px): event page (ko + en) → Book → waiting screen → picker.
//  B (en-US, 360 px): → picker → books `tiny` (its last seat) → confirmed.
//  A, without reloading, sees `tiny` disabled; a click that raced the update
//    gets the "sold out, pick another" page; A then books `early`.
//  C (no WebSocket at all): the same walk on HTTP polling, books `late`.
//  D: its queue socket is closed with 1012 ("restart") mid-wait; the page
//    reconnects by itself and is admitted.
//
// Prints one JSON line: {screenshots, timings, ...}; exits 1 on a failed check
// (after a screenshot of the failing page under OUT_DIR/failure-*.png).
'use strict';
const fs = require('fs');
const path = require('path');
const { chromium } = require('playwright-core');

const [base, eventId, outDir, ...flags] = process.argv.slice(2);
if (!base || !eventId || !outDir) {
  console.error('usage: walk.cjs BASE_URL EVENT OUT_DIR [--queue-only]');
  process.exit(2);
}
const queueOnly = flags.includes('--queue-only');
fs.mkdirSync(outDir, { recursive: true });

const screenshots = [];
const timings = {};
const problems = [];   // page errors, CSP violations, unexpected console errors
const pages = [];

function check(cond, message) {
  if (!cond) throw new Error(`check failed: ${message}`);
}

function log(message) { process.stderr.write(`[walk] ${message}\n`); }

async function shot(page, name) {
  const file = path.join(outDir, `${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  screenshots.push(file);
  log(`screenshot ${file}`);
}

const view = (page, name, timeout = 15000) =>
  page.waitForSelector(`body[data-view="${name}"]`, { timeout });

async function newCustomer(browser, name, { locale, noWebSocket = false }) {
  const context = await browser.newContext({
    viewport: { width: 360, height: 740 },
    deviceScaleFactor: 1,
    locale,
    isMobile: false,
  });
  await context.addInitScript((disable) => {
    window.__csp = [];
    document.addEventListener('securitypolicyviolation', (e) => {
      window.__csp.push(`${e.violatedDirective} ${e.blockedURI}`);
    });
    if (disable) {
      // A browser (or proxy) where WebSockets never work.
      delete window.WebSocket;
    }
  }, noWebSocket);
  const page = await context.newPage();
  page.on('pageerror', (err) => problems.push(`${name}: page error: ${err.message}`));
  page.on('console', (msg) => {
    if (msg.type() !== 'error') return;
    const text = msg.text();
    // HTTP errors the pages handle on purpose (404 of an absent endpoint…)
    // are logged by Chromium as resource failures; anything else is a bug.
    if (/Failed to load resource/.test(text)) return;
    // Without the booking API its socket cannot exist (the page polls).
    if (queueOnly && /\/slots' failed/.test(text)) return;
    problems.push(`${name}: console error: ${text}`);
  });
  let navigations = 0;
  page.on('framenavigated', (frame) => { if (frame === page.mainFrame()) navigations += 1; });
  const customer = { name, context, page, navigations: () => navigations };
  pages.push(customer);
  return customer;
}

// The polite live region says something matching `pattern` (soon).
async function announced(page, pattern, what) {
  try {
    await page.waitForFunction(
      (source) => new RegExp(source).test(document.getElementById('announce').textContent),
      pattern.source, { timeout: 5000 });
  } catch (_) {
    check(false, `${what} (live region: "${await page.textContent('#announce')}")`);
  }
}

// Customers waiting ahead, entered over plain HTTP.
async function joinLine(count) {
  for (let i = 0; i < count; i += 1) {
    const res = await fetch(`${base}/api/events/${eventId}/queue`, { method: 'POST' });
    check(res.status === 201, `extra customer entered (${res.status})`);
  }
}

// Every visible button has an accessible name.
async function namedButtons(page, what) {
  const unnamed = await page.$$eval('button', (buttons) => buttons
    .filter((b) => b.offsetParent !== null)
    .filter((b) => !(b.getAttribute('aria-label') || b.textContent).trim())
    .map((b) => b.outerHTML));
  check(unnamed.length === 0, `${what}: buttons without a name: ${unnamed.join(' ')}`);
}

async function noHorizontalScroll(page, what) {
  const width = await page.evaluate(() => document.documentElement.scrollWidth);
  check(width <= 360, `${what} fits 360 px (scrollWidth ${width})`);
}

async function cspClean(page, what) {
  const violations = await page.evaluate(() => window.__csp);
  check(violations.length === 0, `${what}: no CSP violation (${violations.join('; ')})`);
}

// Event page → Book → (waiting screen) → slot picker.
async function enterAndWait(customer) {
  const { page } = customer;
  await page.goto(`${base}/events/${eventId}`, { waitUntil: 'load' });
  await view(page, 'event');
  await page.click('#book');
  await view(page, 'pick', 60000);
  await page.waitForSelector('#slot-list button.slot');
}

async function slotState(page, slot) {
  return page.$eval(`button.slot[data-slot="${slot}"]`, (b) => ({
    disabled: b.disabled,
    text: b.textContent,
  }));
}

async function bookSlot(page, slot, expect) {
  const started = Date.now();
  await page.click(`button.slot[data-slot="${slot}"]`);
  await view(page, 'result');
  await page.waitForSelector(`#view-result[data-kind="${expect}"]`, { timeout: 20000 });
  return Date.now() - started;
}

async function main() {
  const browser = await chromium.launch({
    executablePath: process.env.TT_CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--disable-background-networking', '--disable-gpu',
      '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
  try {
    await walk(browser);
  } catch (err) {
    for (const c of pages) {
      try {
        const file = path.join(outDir, `failure-${c.name}.png`);
        await c.page.screenshot({ path: file, fullPage: true });
        log(`failure screenshot ${file}`);
      } catch (_) { /* the page may be gone */ }
    }
    throw err;
  } finally {
    await browser.close();
  }
}

async function walk(browser) {
  // ---- A: the event page, in Korean by default (navigator.language = ko-KR)
  const a = await newCustomer(browser, 'A', { locale: 'ko-KR' });
  await a.page.goto(`${base}/`, { waitUntil: 'load' });
  await view(a.page, 'event');
  check(await a.page.getAttribute('html', 'lang') === 'ko', 'ko-KR browser gets Korean');
  check((await a.page.textContent('#book')).trim() === '예매하기', 'Korean book button');
  const title = (await a.page.textContent('#event-title')).trim();
  check(title.length > 0, 'event title shown');
  const slotRows = await a.page.$$eval('#event-slots li', (lis) => lis.length);
  check(slotRows >= 3, `event page lists the slots (${slotRows})`);
  await noHorizontalScroll(a.page, 'event page');
  await shot(a.page, '01-event-ko');
  // The language toggle is a real, labelled button.
  await a.page.focus('#lang-toggle');
  await a.page.keyboard.press('Enter');
  check(await a.page.getAttribute('html', 'lang') === 'en', 'toggle switches to English');
  check((await a.page.textContent('#book')).trim() === 'Book', 'English book button');
  await shot(a.page, '01-event-en');
  await a.page.click('#lang-toggle');
  check(await a.page.getAttribute('html', 'lang') === 'ko', 'toggle switches back');

  // ---- A: Book → waiting screen → slot picker
  const t0 = Date.now();
  await a.page.click('#book');
  await view(a.page, 'wait');
  await a.page.waitForSelector('#wait-position[data-assigned="true"], body[data-view="pick"]',
    { timeout: 15000 });
  if (await a.page.$('body[data-view="wait"]')) {
    const pos = (await a.page.textContent('#wait-position')).trim();
    timings.waitingShown = {
      position: pos,
      ahead: (await a.page.textContent('#wait-ahead')).trim(),
      eta: (await a.page.textContent('#wait-eta')).trim(),
      conn: await a.page.getAttribute('#wait-conn', 'data-conn'),
    };
    check(/^[0-9,]+$/.test(pos), `position is a number: ${pos}`);
    await announced(a.page, /\d/, 'waiting status announced in the live region');
    await noHorizontalScroll(a.page, 'waiting screen');
    await shot(a.page, '02-waiting');
  } else {
    log('admitted before the waiting screen showed a number: no waiting screenshot');
  }
  await view(a.page, 'pick', 60000);
  timings.admittedAfterMs = Date.now() - t0;
  await a.page.waitForSelector('#slot-list button.slot');
  await announced(a.page, /차례/, 'admission announced');
  const aNavigations = a.navigations();
  await a.page.evaluate(() => { window.__sameDocument = 'still here'; });
  await noHorizontalScroll(a.page, 'slot picker');

  await namedButtons(a.page, 'slot picker');

  // ---- D: the server "restarts" mid-wait (close 1012): the page reconnects
  // by itself, keeps its place and is admitted.
  await joinLine(15);
  const d = await newCustomer(browser, 'D', { locale: 'en-US' });
  let queueSockets = 0;
  await d.context.routeWebSocket(/\/queue$/, (ws) => {
    queueSockets += 1;
    ws.connectToServer();
    if (queueSockets === 1) {
      setTimeout(() => ws.close({ code: 1012, reason: 'restart' }).catch(() => {}), 400);
    }
  });
  await enterAndWait(d);
  check(queueSockets >= 2, `D reconnected after 1012 (${queueSockets} queue sockets)`);
  timings.dQueueSockets = queueSockets;

  if (queueOnly) {
    await shot(a.page, '03-picker');
    for (const customer of [a, d]) await cspClean(customer.page, customer.name);
    return;
  }

  // Live counts arrive (slots socket or polling) and the socket is live.
  await a.page.waitForSelector('#pick-conn[data-conn="live"]', { timeout: 10000 });
  await a.page.waitForFunction(() => /\d/.test(
    document.querySelector('button.slot[data-slot="tiny"] .slot-state').textContent));
  const tinyBefore = await slotState(a.page, 'tiny');
  check(!tinyBefore.disabled, `tiny open before B books it (${tinyBefore.text})`);
  await shot(a.page, '03-picker');

  // ---- B: another customer takes the last seat of `tiny`
  const b = await newCustomer(browser, 'B', { locale: 'en-US' });
  await enterAndWait(b);
  check(await b.page.getAttribute('html', 'lang') === 'en', 'en-US browser gets English');
  // B books with the keyboard: focus the slot, press Enter.
  await b.page.focus('button.slot[data-slot="tiny"]');
  const bStarted = Date.now();
  await b.page.keyboard.press('Enter');
  await b.page.waitForSelector('#view-result[data-kind="confirmed"]', { timeout: 20000 });
  timings.bConfirmMs = Date.now() - bStarted;
  const bConfirmedAt = Date.now();
  const ref = (await b.page.textContent('#result-ref')).trim();
  check(ref.length > 0, 'confirmation shows a reference');
  check((await b.page.textContent('#result-title')).trim() === 'Booking confirmed',
    'English confirmation title');
  await noHorizontalScroll(b.page, 'confirmation');
  await shot(b.page, '04-confirmed-en');

  // ---- A sees `tiny` disabled without reloading
  await a.page.waitForFunction(
    () => document.querySelector('button.slot[data-slot="tiny"]').disabled,
    null, { timeout: 10000 });
  timings.aSawSoldOutMs = Date.now() - bConfirmedAt;
  check(a.navigations() === aNavigations, 'A did not navigate or reload');
  check(await a.page.evaluate(() => window.__sameDocument) === 'still here', 'A kept its document');
  const tinyAfter = await slotState(a.page, 'tiny');
  check(/매진/.test(tinyAfter.text), `tiny shows 매진 (${tinyAfter.text})`);
  await shot(a.page, '05-picker-sold-out');

  // A click that raced the update (forced here) gets "sold out, pick another".
  await a.page.evaluate(() => {
    const button = document.querySelector('button.slot[data-slot="tiny"]');
    button.disabled = false;
    button.click();
  });
  await view(a.page, 'result');
  await a.page.waitForSelector('#view-result[data-kind="sold_out"]', { timeout: 20000 });
  check(await a.page.isVisible('#result-again'), '"pick another slot" offered');
  await shot(a.page, '06-sold-out-ko');
  await a.page.click('#result-again');
  await view(a.page, 'pick');
  check((await slotState(a.page, 'tiny')).disabled, 'tiny still disabled');
  timings.aConfirmMs = await bookSlot(a.page, 'early', 'confirmed');
  await shot(a.page, '07-confirmed-ko');

  // Reloading the confirmation keeps it (the session has ended by now).
  await a.page.reload({ waitUntil: 'load' });
  await a.page.waitForSelector('#view-result[data-kind="confirmed"]', { timeout: 10000 });

  // ---- C: no WebSocket at all: polling all the way
  const c = await newCustomer(browser, 'C', { locale: 'en-US', noWebSocket: true });
  await enterAndWait(c);
  await c.page.waitForSelector('#pick-conn[data-conn="polling"]', { timeout: 10000 });
  await c.page.waitForFunction(
    () => document.querySelector('button.slot[data-slot="tiny"]').disabled,
    null, { timeout: 10000 });
  timings.cConfirmMs = await bookSlot(c.page, 'late', 'confirmed');

  for (const customer of [a, b, c, d]) await cspClean(customer.page, customer.name);
}

main().then(() => {
  if (problems.length) {
    console.error(problems.join('\n'));
    process.exit(1);
  }
  console.log(JSON.stringify({ ok: true, queueOnly, screenshots, timings }));
}).catch((err) => {
  console.error(err && err.stack || err);
  if (problems.length) console.error(problems.join('\n'));
  process.exit(1);
});
