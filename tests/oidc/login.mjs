// Drives the whole login in Chromium against Marquee configured with the oidc-provider of
// provider.mjs: Marquee's Sign in → the provider's login and consent pages → back in the UI,
// signed in; then GraphQL with the session cookie (from the page) and with a bearer token a
// "TV app" obtained from the same provider (authorization code + PKCE, done here).
// Prints one JSON line: { session, bearer, stolen, signedOut }.
import crypto from 'node:crypto';
import { chromium } from 'playwright-core';

const MARQUEE = process.env.MARQUEE_URL;
const ISSUER = process.env.OIDC_ISSUER;
const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';
const ACCOUNT = '1';

const browser = await chromium.launch({
  executablePath: CHROMIUM,
  headless: true,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-sync'],
});
const out = {};
let page;
try {
  const context = await browser.newContext();
  page = await context.newPage();
  page.setDefaultTimeout(30_000);
  // Marquee's UI: signed out, one Sign in button.
  await page.goto(`${MARQUEE}/#/profiles`);
  await page.waitForSelector('#view[data-state="signed-out"]');
  await page.click('#view [data-action="sign-in"]');
  // The provider's own login page, then its consent page.
  await page.waitForURL((u) => u.href.startsWith(ISSUER));
  await page.fill('input[name="login"]', ACCOUNT);
  await page.fill('input[name="password"]', 'any');
  await page.click('button[type="submit"]');
  for (let i = 0; i < 10; i++) {
    await page.waitForLoadState('load');
    if (!page.url().startsWith(ISSUER)) break;
    const consent = page.locator('button[type="submit"]');
    if (await consent.count()) await consent.first().click();
    else await page.waitForTimeout(300);
  }
  // Back in Marquee, signed in: the picker lists the account's profiles.
  await page.waitForURL((u) => u.href.startsWith(MARQUEE));
  await page.waitForSelector('#view[data-state="ready"] [data-profile-id]');
  const cookies = await context.cookies(MARQUEE);
  out.cookie = cookies.map((c) => ({ name: c.name, httpOnly: c.httpOnly, sameSite: c.sameSite, jwt: c.value.startsWith('eyJ') }));
  out.session = await page.evaluate(async () => (await fetch('/graphql', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ query: '{ me { accountId roles } profiles { id } home(profileId: "1") { requestId } }' }),
  })).json());
  out.scriptSeesCookie = await page.evaluate(() => document.cookie.includes('marquee_session'));

  // A TV app: its own authorization code + PKCE at the same provider, in the same browser
  // (already signed in there), then Marquee with `Authorization: Bearer`.
  const verifier = crypto.randomBytes(32).toString('base64url');
  const challenge = crypto.createHash('sha256').update(verifier).digest('base64url');
  const redirect = `${ISSUER}/tv-callback`;
  const authorize = new URL(`${ISSUER}/auth`);
  Object.entries({
    client_id: 'tv-app', response_type: 'code', scope: 'openid api', redirect_uri: redirect,
    code_challenge: challenge, code_challenge_method: 'S256', state: 'tv', resource: 'urn:marquee:api',
  }).forEach(([k, v]) => authorize.searchParams.set(k, v));
  // The TV app's redirect URI serves nothing: the code is read from the address it lands on.
  const landed = () => (page.url().startsWith(redirect) ? new URL(page.url()).searchParams.get('code') : null);
  await page.goto(authorize.href);
  let code = landed();
  for (let i = 0; i < 6 && !code; i++) {
    const button = page.locator('button[type="submit"]');
    if (await button.count()) {
      if (await page.locator('input[name="login"]').count()) {
        await page.fill('input[name="login"]', ACCOUNT);
        await page.fill('input[name="password"]', 'any');
      }
      await button.first().click();
    }
    await page.waitForTimeout(300);
    code = landed();
  }
  if (!code) throw new Error(`the TV app got no code (at ${page.url()})`);
  const tokenResp = await fetch(`${ISSUER}/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({
      grant_type: 'authorization_code', code, redirect_uri: redirect, code_verifier: verifier,
      client_id: 'tv-app', resource: 'urn:marquee:api',
    }),
  });
  const token = await tokenResp.json();
  if (!token.access_token) throw new Error(`token endpoint: ${JSON.stringify(token)}`);
  const call = async (query, bearer) => (await fetch(`${MARQUEE}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${bearer}` },
    body: JSON.stringify({ query }),
  })).json();
  out.bearer = await call('{ me { accountId roles } home(profileId: "1") { requestId } }', token.access_token);
  out.stolen = await call('{ home(profileId: "2") { requestId } }', token.access_token);

  // Sign out from the UI: the session is gone on the server.
  await page.goto(`${MARQUEE}/#/profiles`);
  await page.click('#view [data-action="sign-out"]');
  await page.waitForSelector('#view[data-state="signed-out"]');
  out.signedOut = await page.evaluate(async () => (await fetch('/graphql', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ query: '{ me { accountId } }' }),
  })).json());
} catch (err) {
  console.error(`login failed at ${page?.url()}: ${err.message}`);
  console.error((await page?.content().catch(() => ''))?.slice(0, 2000));
  throw err;
} finally {
  await browser.close();
}
console.log(JSON.stringify(out));
