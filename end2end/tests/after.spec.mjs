// The after-the-fact queue and bulk approval, hydrated and with JavaScript off.
import { test, expect } from '@playwright/test';
import { signIn } from './helpers.mjs';

const shots = process.env.SCREENSHOT_DIR;

test('a reviewer judges logged and sampled requests after the fact', async ({ page }, info) => {
  await signIn(page, 'sofia@example.com');
  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'After the fact' }).click();
  await expect(page).toHaveURL(/\/inbox\/after$/);
  await expect(page.getByRole('heading', { name: 'After the fact', level: 1 })).toBeVisible();
  await expect(page.getByTestId('after-count')).toContainText('waiting');
  if (shots && info.project.name === 'hydrated') {
    await page.screenshot({ path: `${shots}/after-1440.png`, fullPage: false });
    await page.setViewportSize({ width: 390, height: 844 });
    await page.screenshot({ path: `${shots}/after-390.png`, fullPage: false });
    await page.setViewportSize({ width: 1440, height: 900 });
  }

  // The filter lives in the URL.
  await page.getByLabel('Why').selectOption('log');
  await page.getByRole('button', { name: 'Apply' }).click();
  await expect(page).toHaveURL(/reason=log/);
  await expect(page.locator('li.after-item .reason-tag').first()).toHaveText('Logged');

  const judgeable = page.locator('li.after-item', { has: page.getByRole('button', { name: 'Should not have happened' }) });
  const first = judgeable.first();
  const fine = await first.getAttribute('data-id');
  await first.getByRole('button', { name: 'Looks right' }).click();
  await expect(page.getByRole('status')).toHaveText(`Marked ${fine} as looks right.`);
  await expect(page).toHaveURL(/reason=log/);
  await expect(page.locator(`li.after-item[data-id="${fine}"]`)).toHaveCount(0);

  const second = judgeable.first();
  const bad = await second.getAttribute('data-id');
  await second.getByLabel('What was wrong').fill('Refunded twice: already handled in another ticket');
  await second.getByRole('button', { name: 'Should not have happened' }).click();
  await expect(page.getByRole('status')).toHaveText(`Marked ${bad} as should not have happened.`);
  await expect(page.locator(`li.after-item[data-id="${bad}"]`)).toHaveCount(0);

  // Several at once.
  const picks = page.locator('li.after-item input.after-pick');
  const a = await picks.nth(0).getAttribute('value');
  const b = await picks.nth(1).getAttribute('value');
  await picks.nth(0).check();
  await picks.nth(1).check();
  await page.getByRole('button', { name: 'Mark selected “Looks right”' }).click();
  await expect(page.getByRole('status')).toHaveText('Marked 2 items as looks right.');
  await expect(page.locator(`li.after-item[data-id="${a}"], li.after-item[data-id="${b}"]`)).toHaveCount(0);
});

test('an auditor reads the queue but has nothing to press', async ({ page }) => {
  await signIn(page, 'ines@example.com');
  await page.goto('/inbox/after');
  await expect(page.getByText('Your role reads this queue; reviewers judge it.')).toBeVisible();
  await expect(page.getByRole('button', { name: 'Looks right' })).toHaveCount(0);
});

/** The id of the first row of an inbox view. */
async function firstId(page, query) {
  await page.goto(`/inbox?${query}`);
  const row = page.locator('tbody tr[data-id]').first();
  await expect(row).toBeVisible();
  return row.getAttribute('data-id');
}

test('bulk approve is refused for a dual item, and nothing changes', async ({ page }, info) => {
  await signIn(page, 'marcus@example.com');
  const dual = await firstId(page, 'tier=dual');
  const review = await firstId(page, 'gate=refunds&tier=review');
  const fields = [['action', 'approve'], ['pick', `${review}@1`], ['pick', `${dual}@1`]];
  if (info.project.name === 'hydrated') {
    // A real form post from the page, as the inbox's own form would send it.
    await page.evaluate((fields) => {
      const form = document.createElement('form');
      form.method = 'post';
      form.action = '/inbox/bulk';
      for (const [name, value] of fields) {
        const input = document.createElement('input');
        input.type = 'hidden';
        input.name = name;
        input.value = value;
        form.appendChild(input);
      }
      document.body.appendChild(form);
      form.submit();
    }, fields);
    await expect(page.getByRole('heading', { name: 'Nothing was approved' })).toBeVisible();
    await expect(page.getByRole('alert')).toContainText(`${dual}: it needs two independent reviews (dual)`);
  } else {
    const res = await page.request.post('/inbox/bulk', {
      headers: { 'content-type': 'application/x-www-form-urlencoded', origin: new URL(page.url()).origin },
      data: new URLSearchParams(fields).toString(),
      maxRedirects: 0,
    });
    expect(res.status()).toBe(409);
    expect(await res.text()).toContain(`${dual}: it needs two independent reviews (dual)`);
  }
  await page.goto(`/inbox/${review}`);
  await expect(page.getByTestId('request-status')).not.toHaveText('Approved');
});

test('bulk approve from the inbox list', async ({ page }) => {
  await signIn(page, 'marcus@example.com');
  await page.goto('/inbox?gate=refunds&tier=review');
  const boxes = page.locator('tbody tr input[type="checkbox"][name="pick"][form="bulk"]');
  test.fixme((await boxes.count()) < 2, 'the inbox list has no bulk checkboxes yet');
  const ids = [];
  for (const i of [0, 1]) {
    ids.push((await boxes.nth(i).getAttribute('value')).split('@')[0]);
    await boxes.nth(i).check();
  }
  await page.getByRole('button', { name: 'Approve selected' }).click();
  await expect(page).toHaveURL(/\/inbox$/);
  await expect(page.getByRole('status')).toHaveText('Approved 2 requests');
  for (const id of ids) {
    await page.goto(`/inbox/${id}`);
    await expect(page.getByTestId('request-status')).toHaveText('Approved');
  }
});
