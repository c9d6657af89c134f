import { test, expect } from '@playwright/test';
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
  await expect(page).toHaveURL(/\/inbox\?tier=dual(&gate=&agent=&action_type=&due=&q=)?$/);
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
});

test('filters combine in the URL and the next page keeps them', async ({ page }) => {
  await page.goto('/inbox');
  await page.getByLabel('Agent').selectOption('refund-bot');
  await page.getByRole('button', { name: 'Apply' }).click();
  await expect(page).toHaveURL(/agent=refund-bot/);
  const agents = page.locator('[data-testid="inbox-table"] tbody tr td:nth-child(4)');
  await expect(agents.first()).toBeVisible();
  for (const a of await agents.allTextContents()) expect(a).toBe('refund-bot');
  const next = page.getByRole('link', { name: 'Next page →' });
  if ((await next.count()) > 0) {
    await expect(next).toHaveAttribute('href', /agent=refund-bot&after=/);
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
