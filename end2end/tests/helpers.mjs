// Shared steps for the browser tests.
import { expect } from '@playwright/test';

export const DEMO_PASSWORD = 'countersign-demo';

/** Signs in through the real form (works with and without JavaScript). */
export async function signIn(page, email, { next } = {}) {
  await page.goto(next ? `/login?next=${encodeURIComponent(next)}` : '/login');
  await page.getByLabel('Email').fill(email);
  await page.getByLabel('Password').fill(DEMO_PASSWORD);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await expect(page.getByTestId('signed-in-user')).toBeVisible();
}
