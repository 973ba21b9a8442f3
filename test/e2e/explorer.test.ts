import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { type Browser, chromium, type Page } from 'playwright-core';
import { startTestApp, type TestApp } from '../helpers/app';

/**
 * The GraphQL explorer as a person meets it (SPEC §7): GraphiQL in a real (headless) Chromium,
 * loaded from the service's own bundled assets, with the dev token pasted into the headers editor.
 */
const root = path.join(__dirname, '../..');
const CHROMIUM = '/usr/bin/chromium';
const screenshot = path.join(root, 'test/artifacts/explorer.png');
/** What a browser sends when it opens a URL. */
const BROWSER_ACCEPT = 'text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8';

let app: TestApp;
let browser: Browser;

beforeAll(async () => {
  // The same bundling step as `npm run build` (dist/explorer), without the TypeScript build.
  execFileSync('npm', ['run', '-s', 'build:explorer'], { cwd: root, stdio: 'inherit', timeout: 120_000 });
  if (!fs.existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: install Debian's chromium (apt-get install -y chromium)`);
  app = await startTestApp({ env: { EXPLORER: 'true' } });
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--headless', '--no-sandbox', '--disable-gpu'], timeout: 30_000 });
}, 180_000);

afterAll(async () => {
  await browser?.close();
  await app?.close();
});

/** Everything the page did that a user would see as broken: failed requests, error statuses, console errors, other origins. */
function watch(page: Page, origin: string): string[] {
  const problems: string[] = [];
  page.on('requestfailed', (request) => problems.push(`failed: ${request.url()} (${request.failure()?.errorText})`));
  page.on('request', (request) => {
    if (new URL(request.url()).origin !== origin && !request.url().startsWith('data:')) problems.push(`external request: ${request.url()}`);
  });
  page.on('response', (response) => {
    if (response.status() >= 400) problems.push(`HTTP ${response.status()}: ${response.url()}`);
  });
  page.on('console', (message) => {
    if (message.type() === 'error') problems.push(`console error: ${message.text()}`);
  });
  page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
  return problems;
}

/** Replaces an editor's content the way a user pastes: click in, select all, Ctrl+V from the clipboard. */
async function paste(page: Page, editor: ReturnType<Page['locator']>, text: string): Promise<void> {
  await editor.locator('.monaco-editor').click();
  await page.keyboard.press('Control+A');
  // Evaluated in the page (the test's own types have no DOM).
  await page.evaluate(`navigator.clipboard.writeText(${JSON.stringify(text)})`);
  await page.keyboard.press('Control+V');
}

describe('GraphQL explorer (GraphiQL)', () => {
  it('loads from the service alone, and a me query with the pasted dev token shows the viewer', async () => {
    // The token the start-up banner prints (src/main.ts): the dev issuer's, for ADMIN_EMAIL.
    const token = await app.issuer.sign({ email: app.config.adminEmail, name: 'Admin' });
    const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: app.url });
    const page = await context.newPage();
    page.setDefaultTimeout(20_000);
    const problems = watch(page, app.url);
    const requested: string[] = [];
    page.on('request', (request) => requested.push(new URL(request.url()).pathname));

    const response = await page.goto(`${app.url}/graphql`);
    expect(response?.status()).toBe(200);
    expect(response?.headers()['content-type']).toMatch(/^text\/html/);
    expect(response?.headers()['content-security-policy']).toContain("script-src 'self';");

    // The query editor is ready once GraphiQL has mounted Monaco.
    const queryEditor = page.locator('.graphiql-query-editor .graphiql-editor');
    await queryEditor.locator('.monaco-editor').waitFor();
    await page.locator('button[data-name="headers"]').click();
    const headersEditor = page.locator('.graphiql-editor-tool .graphiql-editor:not(.hidden)');
    await paste(page, headersEditor, JSON.stringify({ Authorization: `Bearer ${token}` }));
    await paste(page, queryEditor, 'query Me { me { user { email name } } }');
    await page.locator('.graphiql-execute-button').click();

    const result = page.locator('.graphiql-response');
    await result.getByText(`"${app.config.adminEmail}"`).waitFor();
    // Monaco draws spaces as no-break spaces; the pane holds the whole (short) response.
    const shown = (await result.innerText()).replace(/\u00a0/g, ' ');
    expect(JSON.parse(shown)).toEqual({ data: { me: { user: { email: app.config.adminEmail, name: 'Admin' } } } });
    fs.mkdirSync(path.dirname(screenshot), { recursive: true });
    await page.screenshot({ path: screenshot });
    expect(fs.statSync(screenshot).size).toBeGreaterThan(10_000);

    // GraphiQL's bundle, stylesheet and the editor's language workers all came from the service.
    expect(requested).toEqual(expect.arrayContaining(['/graphql/explorer/explorer.js', '/graphql/explorer/explorer.css', '/graphql/explorer/graphql.worker.js']));
    expect(problems).toEqual([]);
    await context.close();
  });

  it('leaves /graphql to the GraphQL endpoint for everything but a browser opening it', async () => {
    const json = await fetch(`${app.url}/graphql`, { headers: { accept: 'application/json' } });
    expect(json.headers.get('content-type')).toMatch(/^application\/json/);
    // A GET query from a browser is a query (and a cross-site one without a preflight header is still refused as CSRF).
    const getQuery = await fetch(`${app.url}/graphql?query=${encodeURIComponent('{ __typename }')}`, { headers: { accept: BROWSER_ACCEPT } });
    expect(getQuery.status).toBe(400);
    expect(((await getQuery.json()) as { errors: Array<{ message: string }> }).errors[0]!.message).toMatch(/Cross-Site Request Forgery/);
    const simplePost = await fetch(`${app.url}/graphql`, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: '{"query":"{ __typename }"}' });
    expect(simplePost.status).toBe(400);
    // Gateways still compose from _service, without a token.
    const service = await app.gql(`{ _service { sdl } }`);
    expect(service.data?._service.sdl).toContain('type Query');
    const missing = await fetch(`${app.url}/graphql/explorer/nothing.js`);
    expect(missing.status).toBe(404);
  });
});

describe('with EXPLORER off (the production default)', () => {
  let off: TestApp;
  beforeAll(async () => {
    off = await startTestApp({ env: { EXPLORER: 'false' } });
  });
  afterAll(async () => {
    await off?.close();
  });

  it('serves no page and no assets: a browser gets the endpoint\'s JSON answer, and _service still answers', async () => {
    const page = await fetch(`${off.url}/graphql`, { headers: { accept: BROWSER_ACCEPT } });
    expect(page.status).toBe(400);
    expect(page.headers.get('content-type')).toMatch(/^application\/json/);
    expect(page.headers.get('content-security-policy')).toBeNull();
    const asset = await fetch(`${off.url}/graphql/explorer/explorer.js`, { headers: { accept: '*/*' } });
    expect(asset.headers.get('content-type')).not.toMatch(/javascript/);
    expect(asset.status).toBe(400);
    const service = await off.gql(`{ _service { sdl } }`);
    expect(service.status).toBe(200);
    expect(service.data?._service.sdl).toContain('type Query');
  });
});
