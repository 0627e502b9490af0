// Opens a URL in Debian's Chromium through playwright-core and prints, as
// JSON, the text of one element plus the page title and browser version.
// Usage: node read-text.cjs URL SELECTOR   (env: TT_CHROMIUM)
'use strict';
const { chromium } = require('playwright-core');

async function main() {
  const [url, selector] = process.argv.slice(2);
  if (!url || !selector) throw new Error('usage: read-text.cjs URL SELECTOR');
  const browser = await chromium.launch({
    executablePath: process.env.TT_CHROMIUM || '/usr/bin/chromium',
    headless: true,
    // No sandbox as root; no background networking: this machine has no
    // network beyond loopback and Chromium would keep trying.
    args: ['--no-sandbox', '--disable-background-networking', '--disable-gpu',
           '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
  try {
    const page = await browser.newPage();
    await page.goto(url, { waitUntil: 'load' });
    await page.waitForSelector(selector);
    const text = await page.textContent(selector);
    console.log(JSON.stringify({ text, title: await page.title(), version: browser.version() }));
  } finally {
    await browser.close();
  }
}

main().catch((err) => { console.error(err && err.stack || err); process.exit(1); });
