// First contentful paint of the inbox in headless Chromium on loopback.
//
// Usage: node bench/fcp.mjs BASE_URL [runs]   (playwright-core from end2end/node_modules)
// Signs in as a reviewer through the real form, then loads /inbox `runs` times (default 5) in a
// fresh page each and reads performance.getEntriesByName('first-contentful-paint'). Prints the
// median and the worst. Target: under 1 s.
import { createRequire } from 'node:module';
const require = createRequire(new URL('../end2end/package.json', import.meta.url));
const { chromium } = require('playwright-core');

const base = process.argv[2];
const runs = Number(process.argv[3] || 5);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
const context = await browser.newContext({ viewport: { width: 1440, height: 900 } });
const login = await context.newPage();
await login.goto(`${base}/login?next=/inbox`);
await login.getByLabel('Email').fill('marcus@example.com');
await login.getByLabel('Password').fill('countersign-demo');
await login.getByRole('button', { name: 'Sign in' }).click();
await login.waitForURL(/\/inbox/);
await login.close();
const fcps = [];
for (let i = 0; i < runs + 1; i++) {
  const page = await context.newPage();
  await page.goto(`${base}/inbox?tier=review`, { waitUntil: 'load' });
  const fcp = await page.evaluate(() => new Promise((resolve) => {
    const now = performance.getEntriesByName('first-contentful-paint')[0];
    if (now) return resolve(now.startTime);
    new PerformanceObserver((l) => resolve(l.getEntries()[0].startTime))
      .observe({ type: 'paint', buffered: true });
  }));
  if (i > 0) fcps.push(fcp); // the first load warms the server and the browser cache
  await page.close();
}
await browser.close();
fcps.sort((a, b) => a - b);
const median = fcps[Math.floor(fcps.length / 2)];
console.log(`first contentful paint of /inbox?tier=review: median ${median.toFixed(0)} ms, worst ${fcps[fcps.length - 1].toFixed(0)} ms over ${fcps.length} loads   (target: under 1,000 ms)`);
