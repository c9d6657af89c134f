import { test, expect } from '@playwright/test';
import { execFileSync } from 'node:child_process';
import { signIn } from './helpers.mjs';

const shots = process.env.SCREENSHOT_DIR;

test.beforeEach(async ({ page }) => {
  await signIn(page, 'dana@example.com');
});

test('the inbox lists demo requests from the database', async ({ page }) => {
  await page.goto('/inbox');
  await expect(page).toHaveTitle('Inbox · Countersign');
  await expect(page.getByRole('navigation', { name: 'Main' })).toContainText('Inbox');
  for (const section of ['Audit', 'Gates', 'Stats', 'Admin']) {
    await expect(page.getByRole('link', { name: section, exact: true })).toBeVisible();
  }
  await expect(page.getByTestId('signed-in-user')).toHaveText('Dana Whitfield');
  const rows = page.locator('[data-testid="inbox-table"] tbody tr');
  await expect(rows.first()).toBeVisible();
  expect(await rows.count()).toBeGreaterThan(5);
  await expect(page.getByTestId('open-count')).toHaveText(/^\d+ open$/);
  await expect(rows.first().locator('.tier')).toHaveText(/review|dual/);
});

test('the tier filter is a GET form: a deep link that works without JavaScript', async ({ page }) => {
  await page.goto('/inbox');
  await page.getByLabel('Tier').selectOption('dual');
  await page.getByRole('button', { name: 'Apply' }).click();
  // A GET form sends its empty selects too; the link is still the filtered view.
  await expect(page).toHaveURL(/\/inbox\?tier=dual(&|$)/);
  const tiers = page.locator('[data-testid="inbox-table"] tbody tr .tier');
  await expect(tiers.first()).toBeVisible();
  for (const t of await tiers.allTextContents()) expect(t).toBe('dual');
  await expect(page.getByLabel('Tier')).toHaveValue('dual');
});

test('bad filter input gets a clear error, not a broken page', async ({ page }) => {
  const response = await page.goto('/inbox?tier=urgent');
  expect(response.status()).toBe(400);
  await expect(page.getByRole('alert')).toContainText('tier: unknown tier "urgent"');
  await expect(page.getByRole('navigation', { name: 'Main' })).toBeVisible();
});

test('pages follow each other with keyset links', async ({ page }) => {
  await page.goto('/inbox');
  const next = page.getByRole('link', { name: 'Next page →' });
  if ((await next.count()) === 0) test.skip(true, 'demo fits on one page');
  const firstPageIds = await page.locator('tbody tr').evaluateAll((rows) => rows.map((r) => r.dataset.id));
  await next.click();
  await expect(page).toHaveURL(/after=/);
  const secondPageIds = await page.locator('tbody tr').evaluateAll((rows) => rows.map((r) => r.dataset.id));
  expect(secondPageIds.length).toBeGreaterThan(0);
  for (const id of secondPageIds) expect(firstPageIds).not.toContain(id);
});

test('the page hydrates: the shortcuts island responds to clicks and the ? key', async ({ page }, info) => {
  test.skip(info.project.name === 'no-javascript', 'needs JavaScript');
  await page.goto('/inbox');
  const island = page.locator('.kbd-help');
  await expect(island).toHaveAttribute('data-hydrated', 'true');
  const button = page.getByRole('button', { name: /Shortcuts/ });
  const panel = page.getByRole('dialog', { name: 'Keyboard shortcuts' });
  await expect(panel).toBeHidden();
  await button.click();
  await expect(panel).toBeVisible();
  await expect(button).toHaveAttribute('aria-expanded', 'true');
  await page.keyboard.press('?');
  await expect(panel).toBeHidden();
});

test('without JavaScript nothing hydrates, and the list is still all there', async ({ page }, info) => {
  test.skip(info.project.name !== 'no-javascript', 'checks the no-JavaScript rendering');
  await page.goto('/inbox');
  await expect(page.locator('.kbd-help')).toHaveAttribute('data-hydrated', 'false');
  expect(await page.locator('tbody tr').count()).toBeGreaterThan(5);
});

test('every section in the navigation answers', async ({ page }) => {
  for (const [name, heading] of [['Audit', 'Audit'], ['Gates', 'Gates'], ['Stats', 'Stats'], ['Inbox', 'Inbox']]) {
    await page.goto('/inbox');
    await page.getByRole('link', { name, exact: true }).click();
    await expect(page.getByRole('heading', { level: 1 })).toHaveText(heading);
    await expect(page.getByRole('link', { name, exact: true })).toHaveAttribute('aria-current', 'page');
  }
});

test('screenshots of the inbox at desktop and phone sizes', async ({ page }, info) => {
  test.skip(!shots || info.project.name !== 'hydrated', 'set SCREENSHOT_DIR to capture');
  await page.setViewportSize({ width: 1440, height: 900 });
  await page.goto('/inbox');
  await page.screenshot({ path: `${shots}/inbox-1440.png` });
  await page.emulateMedia({ colorScheme: 'dark' });
  await page.screenshot({ path: `${shots}/inbox-1440-dark.png` });
  await page.emulateMedia({ colorScheme: 'light' });
  await page.setViewportSize({ width: 390, height: 844 });
  await page.goto('/inbox');
  await page.screenshot({ path: `${shots}/inbox-390.png` });
  // On a phone every section and the user's menu stay on screen (they wrap; nothing scrolls away).
  const onScreen = [
    ...(await page.locator('.topbar nav a').all()),
    page.getByTestId('user-slot'),
  ];
  expect(onScreen.length).toBeGreaterThan(3);
  for (const el of onScreen) {
    const box = await el.boundingBox();
    expect(box, await el.textContent()).not.toBeNull();
    expect(box.x).toBeGreaterThanOrEqual(0);
    expect(box.x + box.width, await el.textContent()).toBeLessThanOrEqual(390);
  }
});

test('filters combine in the URL and the next page keeps them', async ({ page }) => {
  await page.goto('/inbox');
  await page.getByLabel('Agent').selectOption('refund-bot');
  await page.getByRole('button', { name: 'Apply' }).click();
  await expect(page).toHaveURL(/agent=refund-bot/);
  const agents = page.locator('[data-testid="inbox-table"] tbody tr td:nth-child(5)');
  await expect(agents.first()).toBeVisible();
  for (const a of await agents.allTextContents()) expect(a).toBe('refund-bot');
  const next = page.getByRole('link', { name: 'Next page →' });
  if ((await next.count()) > 0) {
    await expect(next).toHaveAttribute('href', /agent=refund-bot.*&after=/);
  }
  await page.getByRole('link', { name: 'Clear' }).click();
  await expect(page).toHaveURL(/\/inbox$/);
});

test('search and the deadline filter are part of the GET form', async ({ page }) => {
  await signIn(page, 'dana@example.com');
  await page.goto('/inbox');
  await page.getByLabel('Due').selectOption('24h');
  await page.getByLabel('Search').fill('refund');
  await page.getByRole('button', { name: 'Apply' }).click();
  await expect(page).toHaveURL(/due=24h/);
  await expect(page).toHaveURL(/q=refund/);
  await expect(page.getByLabel('Search')).toHaveValue('refund');
});

const countersign = process.env.COUNTERSIGN_BIN;
const dataDir = process.env.COUNTERSIGN_DATA_DIR;

test('grouped by gate with counts per group, collapsible, sorted, and a deep link', async ({ page, browser }) => {
  await page.goto('/inbox');
  await page.getByLabel('Group by').selectOption('gate');
  await page.getByLabel('Sort').selectOption('deadline');
  await page.getByLabel('Tier').selectOption('review');
  await page.getByRole('button', { name: 'Apply' }).click();
  await expect(page).toHaveURL(/tier=review/);
  await expect(page).toHaveURL(/group=gate/);
  await expect(page).toHaveURL(/sort=deadline/);
  const groups = page.locator('details.group');
  expect(await groups.count()).toBeGreaterThan(1);
  // The counts cover every page of the view, and add up to the total.
  const total = Number((await page.getByTestId('open-count').textContent()).replace(/[^0-9]/g, ''));
  const perGroup = await page.locator('.group-counts b').allTextContents();
  expect(perGroup.map((n) => Number(n.replace(/,/g, ''))).reduce((a, b) => a + b, 0)).toBe(total);
  // Overdue and escalated requests float to the top of their group.
  for (const table of await page.locator('details.group table').all()) {
    const urgent = await table.locator('tbody tr').evaluateAll((rows) => rows.map((r) => r.classList.contains('urgent')));
    expect(urgent.indexOf(false) === -1 || urgent.slice(urgent.indexOf(false)).every((u) => !u)).toBe(true);
  }
  // A group collapses (a <details>, so also without JavaScript).
  const first = groups.first();
  await expect(first.locator('table')).toBeVisible();
  await first.locator('summary').click();
  await expect(first.locator('table')).toBeHidden();
  // The URL alone reproduces the view in a fresh browser.
  const url = page.url();
  const other = await browser.newContext();
  const fresh = await other.newPage();
  await signIn(fresh, 'ravi@example.com', { next: new URL(url).pathname + new URL(url).search });
  await expect(fresh.getByLabel('Group by')).toHaveValue('gate');
  await expect(fresh.getByLabel('Sort')).toHaveValue('deadline');
  await expect(fresh.getByLabel('Tier')).toHaveValue('review');
  expect(await fresh.locator('details.group').count()).toBe(await groups.count());
  await other.close();
});

test('amount range filter, and a bad amount is refused by name', async ({ page }) => {
  await page.goto('/inbox?min_amount=1000&sort=amount');
  await expect(page.getByLabel('Minimum amount')).toHaveValue('1000');
  const facts = await page.locator('tbody tr .facts').allTextContents();
  expect(facts.length).toBeGreaterThan(0);
  for (const f of facts) {
    const m = f.match(/([0-9,]+)\.\d\d (EUR|USD|GBP)/);
    if (m) expect(Number(m[1].replace(/,/g, ''))).toBeGreaterThanOrEqual(1000);
  }
  const response = await page.goto('/inbox?min_amount=lots');
  expect(response.status()).toBe(400);
  await expect(page.getByRole('alert')).toContainText('min_amount');
});

test('a saved view comes back as a link, and can be deleted', async ({ page }) => {
  const name = `Refunds over 1,000 ${Date.now()}`;
  await page.goto('/inbox?gate=refunds&min_amount=1000');
  await page.getByLabel('Save this view as').fill(name);
  await page.getByRole('button', { name: 'Save view' }).click();
  await expect(page.getByRole('status')).toContainText(`Saved the view “${name}”`);
  await page.goto('/inbox');
  const link = page.getByRole('link', { name, exact: true });
  await link.click();
  await expect(page).toHaveURL(/\/inbox\?gate=refunds&min_amount=1000$/);
  await expect(page.getByLabel('Gate')).toHaveValue('refunds');
  await expect(page.getByRole('link', { name, exact: true })).toHaveAttribute('aria-current', 'page');
  // The same name twice is refused, and nothing is added.
  await page.getByLabel('Save this view as').fill(name);
  await page.getByRole('button', { name: 'Save view' }).click();
  await expect(page.getByRole('alert')).toContainText('already have a view named');
  await expect(page.getByRole('link', { name, exact: true })).toHaveCount(1);
  await page.getByRole('button', { name: `Delete the view ${name}` }).click();
  await expect(page.getByRole('status')).toContainText('Deleted the saved view');
  await expect(page.getByRole('link', { name, exact: true })).toHaveCount(0);
});

test('bulk approve is refused for a dual item, and nothing changes', async ({ page }) => {
  await page.goto('/inbox?tier=dual');
  const row = page.locator('tbody tr').first();
  const id = await row.getAttribute('data-id');
  await row.locator('input[name=pick]').check();
  await page.getByRole('button', { name: 'Approve selected' }).click();
  await expect(page.getByRole('alert')).toContainText(/dual/i);
  await page.goto('/inbox?tier=dual');
  await expect(page.locator(`tbody tr[data-id="${id}"]`)).toHaveCount(1);
});

test('keyboard triage: move, select three, approve them; open with o', async ({ page }, info) => {
  test.skip(info.project.name === 'no-javascript', 'keyboard shortcuts need JavaScript');
  await page.goto('/inbox?tier=review&agent=refund-bot');
  await expect(page.locator('.kbd-help')).toHaveAttribute('data-hydrated', 'true');
  const rows = page.locator('tbody tr');
  expect(await rows.count()).toBeGreaterThan(3);
  const picked = [];
  for (let i = 0; i < 3; i++) {
    await page.keyboard.press('j');
    const current = page.locator('tr.kbd-current');
    await expect(current).toHaveCount(1);
    picked.push(await current.getAttribute('data-id'));
    await page.keyboard.press('x');
    await expect(current.locator('input[name=pick]')).toBeChecked();
  }
  expect(new Set(picked).size).toBe(3);
  await page.keyboard.press('k');
  await expect(page.locator('tr.kbd-current')).toHaveAttribute('data-id', picked[1]);
  await page.keyboard.press('a');
  await expect(page.getByRole('status')).toContainText(/Approved 3/);
  for (const id of picked) await expect(page.locator(`tbody tr[data-id="${id}"]`)).toHaveCount(0);
  // o opens the current request. The approval loaded a new page: keys pressed before its
  // shortcuts are live are lost, so wait for them as at the start.
  await expect(page.locator('.kbd-help')).toHaveAttribute('data-hydrated', 'true');
  await page.keyboard.press('j');
  const next = await page.locator('tr.kbd-current').getAttribute('data-id');
  await page.keyboard.press('o');
  await expect(page).toHaveURL(new RegExp(`/inbox/${next}$`));
});

test('shortcuts can be switched off and stay off', async ({ page }, info) => {
  test.skip(info.project.name === 'no-javascript', 'keyboard shortcuts need JavaScript');
  await page.goto('/inbox');
  await expect(page.locator('.kbd-help')).toHaveAttribute('data-hydrated', 'true');
  await page.getByRole('button', { name: /Shortcuts/ }).click();
  await page.getByLabel('Use keyboard shortcuts').uncheck();
  await page.keyboard.press('?');
  await page.reload();
  await expect(page.locator('.kbd-help')).toHaveAttribute('data-shortcuts', 'off');
  await page.keyboard.press('j');
  await expect(page.locator('tr.kbd-current')).toHaveCount(0);
  await page.getByRole('button', { name: /Shortcuts/ }).click();
  await page.getByLabel('Use keyboard shortcuts').check();
  await page.keyboard.press('j');
  await expect(page.locator('tr.kbd-current')).toHaveCount(1);
});

test('new requests show up as a quiet counter, not a jumping list', async ({ page }, info) => {
  test.skip(info.project.name === 'no-javascript', 'live updates need JavaScript');
  await page.goto('/inbox');
  await expect(page.getByTestId('live-counter')).toHaveAttribute('data-connected', 'true');
  const before = await page.locator('tbody tr').evaluateAll((rows) => rows.map((r) => r.dataset.id));
  const out = execFileSync(countersign, ['--data-dir', dataDir, 'agent', 'token', 'refund-bot'], { encoding: 'utf8' });
  const token = out.match(/\(shown once\): (\S+)/)[1];
  const res = await page.request.post('/api/v1/actions', {
    headers: { Authorization: `Bearer ${token}`, 'Idempotency-Key': `live-${Date.now()}-${info.project.name}` },
    data: {
      action_type: 'payment.refund',
      title: 'Refund 2,400.00 EUR to Fabrikam (live)',
      payload: { order_id: 'ORD-LIVE', amount: '2400.00', currency: 'EUR' },
      amount: { value: '2400.00', currency: 'EUR' },
      reasoning: 'Live update check',
      confidence: 0.9,
    },
  });
  expect(res.status()).toBe(201);
  await expect(page.getByTestId('live-counter')).toContainText('1 new request');
  // The list itself did not move.
  expect(await page.locator('tbody tr').evaluateAll((rows) => rows.map((r) => r.dataset.id))).toEqual(before);
  await page.getByTestId('live-refresh').click();
  await expect(page.getByTestId('live-counter')).not.toContainText('new request');
});
