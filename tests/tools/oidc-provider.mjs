// A real OpenID Connect provider for the tests: the `oidc-provider` package (certified),
// on a random loopback port, with the test's accounts and one client.
//
// Usage: node oidc-provider.mjs CONFIG.json
// CONFIG: { "client_id", "client_secret", "redirect_uri", "accounts_file",
//           "tamper": null | "expired" | "wrong-audience" | "wrong-issuer",
//           "port": optional fixed port, "kid": optional signing key id (a restart with
//           another one is a key rotation) }
// ACCOUNTS (re-read at every sign-in, so a test can change someone's groups):
//   { "<login>": { "claims": { "preferred_username", "name", "email", "groups": [] },
//                  "amr": ["pwd", "mfa"] } }
// Prints one line `{"issuer": "http://127.0.0.1:PORT"}` once it listens.
//
// The sign-in page is ours (not the package's development pages): one form with a login
// field; any known login signs in without a password and consents to every scope asked.
// Signing out (RP-initiated logout) asks "Sign out of the test provider?" with one button.
// `tamper` makes the token endpoint hand out an ID token re-signed with the provider's own
// key after changing one claim: what a misconfigured or hostile provider would send.
import http from 'node:http';
import fs from 'node:fs';
import Provider from 'oidc-provider';
import * as jose from 'jose';

const config = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
const accounts = () => JSON.parse(fs.readFileSync(config.accounts_file, 'utf8'));

const { privateKey } = await jose.generateKeyPair('RS256', { extractable: true });
const jwk = { ...(await jose.exportJWK(privateKey)), kid: config.kid || 'test-key', alg: 'RS256', use: 'sig' };

const server = http.createServer();
await new Promise((resolve) => server.listen(config.port || 0, '127.0.0.1', resolve));
const issuer = `http://127.0.0.1:${server.address().port}`;

const provider = new Provider(issuer, {
  clients: [{
    client_id: config.client_id,
    client_secret: config.client_secret,
    redirect_uris: [config.redirect_uri],
    // Portcullis's sign-in page, where the provider sends the browser back after signing
    // out there (RP-initiated logout).
    post_logout_redirect_uris: [new URL('/login', config.redirect_uri).href],
    grant_types: ['authorization_code'],
    response_types: ['code'],
  }],
  jwks: { keys: [jwk] },
  scopes: ['openid', 'profile', 'email', 'groups'],
  claims: {
    openid: ['sub', 'amr'],
    profile: ['name', 'preferred_username'],
    email: ['email'],
    groups: ['groups'],
  },
  // The claims go in the ID token itself: Portcullis reads no userinfo.
  conformIdTokenClaims: false,
  features: {
    devInteractions: { enabled: false },
    // Signing out at the provider: our own confirmation page (the package's form, which
    // carries its anti-forgery token, with a button the tests can find).
    rpInitiatedLogout: {
      enabled: true,
      async logoutSource(ctx, form) {
        ctx.body = `<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>Test provider</title></head><body><h1>Sign out of the test provider?</h1>${form}
<button type="submit" form="op.logoutForm" value="yes" name="logout" id="provider-logout-yes">Sign out</button>
</body></html>`;
      },
    },
  },
  async findAccount(ctx, sub) {
    const account = accounts()[sub];
    if (!account) return undefined;
    return { accountId: sub, async claims() { return { sub, ...account.claims }; } };
  },
  interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
});

provider.use(async (ctx, next) => {
  await next();
  if (config.tamper && ctx.path === '/token' && ctx.body && ctx.body.id_token) {
    ctx.body = { ...ctx.body, id_token: await tamper(ctx.body.id_token) };
  }
});

async function tamper(idToken) {
  const claims = jose.decodeJwt(idToken);
  const now = Math.floor(Date.now() / 1000);
  if (config.tamper === 'expired') Object.assign(claims, { iat: now - 7200, exp: now - 3600 });
  if (config.tamper === 'wrong-audience') claims.aud = 'another-application';
  if (config.tamper === 'wrong-issuer') claims.iss = 'http://127.0.0.1:1/unknown';
  return new jose.SignJWT(claims).setProtectedHeader({ alg: 'RS256', kid: jwk.kid }).sign(privateKey);
}

const page = (uid, message) => `<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>Test provider</title></head><body><h1>Test provider</h1>
${message ? `<p id="provider-error">${message}</p>` : ''}
<form method="post" action="/interaction/${uid}"><label for="login">Login</label>
<input id="login" name="login" autofocus><button type="submit" id="provider-submit">Sign in</button></form>
</body></html>`;

async function interaction(req, res) {
  const details = await provider.interactionDetails(req, res);
  if (req.method === 'GET') {
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
    return res.end(page(details.uid));
  }
  let body = '';
  for await (const chunk of req) body += chunk;
  const login = new URLSearchParams(body).get('login') || '';
  const account = accounts()[login];
  if (!account) {
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
    return res.end(page(details.uid, 'Unknown login'));
  }
  const grant = new provider.Grant({ accountId: login, clientId: details.params.client_id });
  grant.addOIDCScope(details.params.scope);
  const grantId = await grant.save();
  return provider.interactionFinished(req, res, {
    login: { accountId: login, amr: account.amr || ['pwd'] },
    consent: { grantId },
  }, { mergeWithLastSubmission: false });
}

const callback = provider.callback();
server.on('request', (req, res) => {
  if (req.url.startsWith('/interaction/')) {
    interaction(req, res).catch((e) => { res.writeHead(500); res.end(String(e)); });
  } else {
    callback(req, res);
  }
});
console.log(JSON.stringify({ issuer }));
