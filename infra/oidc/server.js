// Test-only OpenID Connect provider for session-bridge's integration tests.
//
// NOT for production: secrets are fixed, any username logs in with the
// password "password", and there is an unauthenticated key-rotation endpoint.
//
// Usage: node infra/oidc/server.js            (listens on 127.0.0.1, free port)
//   env HOST (default 127.0.0.1), PORT (default 0 = pick a free port),
//       SB_OIDC_REDIRECT_URIS  comma-separated redirect URIs for sb-bridge
//                              (default http://127.0.0.1/callback); a
//                              loopback URI without a port matches any port,
//       SB_OIDC_ACCESS_TOKEN_TTL  seconds (default 600),
//       SB_OIDC_PORT_FILE      if set, the bound port is written there once
//                              the server accepts connections.
// The issuer is http://HOST:PORT (no trailing slash).
// See infra/README.md for clients, endpoints and /__test/* semantics.

import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';

import Provider, { errors } from 'oidc-provider';

const HOST = process.env.HOST || '127.0.0.1';
const PORT = Number.parseInt(process.env.PORT || '0', 10);
const REDIRECT_URIS = (process.env.SB_OIDC_REDIRECT_URIS || 'http://127.0.0.1/callback')
  .split(',')
  .map((s) => s.trim())
  .filter(Boolean);
const ACCESS_TTL = Number.parseInt(process.env.SB_OIDC_ACCESS_TOKEN_TTL || '600', 10);

const TEST_API = 'urn:session-bridge:test-api';
const TEST_API_ES256 = 'urn:session-bridge:test-api-es256';
const TEST_PASSWORD = 'password';

// ---------------------------------------------------------------- keys ----

function b64url(buf) {
  return Buffer.from(buf).toString('base64url');
}

// RFC 7638 thumbprint, used as kid.
function thumbprint(jwk) {
  const members = jwk.kty === 'RSA'
    ? { e: jwk.e, kty: jwk.kty, n: jwk.n }
    : { crv: jwk.crv, kty: jwk.kty, x: jwk.x, y: jwk.y };
  return b64url(crypto.createHash('sha256').update(JSON.stringify(members)).digest());
}

function newRsaKey() {
  const { privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  const jwk = privateKey.export({ format: 'jwk' });
  return { ...jwk, kid: thumbprint(jwk), alg: 'RS256', use: 'sig' };
}

function newEcKey() {
  const { privateKey } = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const jwk = privateKey.export({ format: 'jwk' });
  return { ...jwk, kid: thumbprint(jwk), alg: 'ES256', use: 'sig' };
}

// Key state. The first RSA key is the one that signs (RS256); retired RSA
// keys stay published only when rotated with keep_old=1.
const keys = {
  signing: newRsaKey(),
  retired: [],
  ec: newEcKey(),
};

function publishedJwks() {
  return { keys: [keys.signing, ...keys.retired, keys.ec] };
}

function publicView(jwk) {
  return { kid: jwk.kid, kty: jwk.kty, alg: jwk.alg };
}

// ------------------------------------------------------------ accounts ----

// Any username is an account; its id (sub) is the username itself.
function claimsFor(accountId) {
  return {
    sub: accountId,
    preferred_username: accountId,
    name: accountId,
    email: `${accountId}@example.test`,
    email_verified: true,
    groups: ['users'],
  };
}

async function findAccount(_ctx, id) {
  return {
    accountId: id,
    async claims() {
      return claimsFor(id);
    },
  };
}

// ------------------------------------------------------------ provider ----

// Cookie keys survive rotations so interactions in flight keep working.
const cookieKeys = [crypto.randomBytes(32).toString('base64url')];

function resourceServer(indicator) {
  if (indicator === TEST_API) {
    return {
      scope: 'api',
      audience: TEST_API,
      accessTokenTTL: ACCESS_TTL,
      accessTokenFormat: 'jwt',
      jwt: { sign: { alg: 'RS256', kid: keys.signing.kid } },
    };
  }
  if (indicator === TEST_API_ES256) {
    return {
      scope: 'api',
      audience: TEST_API_ES256,
      accessTokenTTL: ACCESS_TTL,
      accessTokenFormat: 'jwt',
      jwt: { sign: { alg: 'ES256', kid: keys.ec.kid } },
    };
  }
  return undefined;
}

function buildProvider(issuer) {
  const provider = new Provider(issuer, {
    jwks: publishedJwks(),
    cookies: { keys: cookieKeys },
    findAccount,
    clients: [
      {
        client_id: 'sb-test-client',
        client_secret: 'sb-test-secret',
        grant_types: ['client_credentials'],
        response_types: [],
        redirect_uris: [],
        scope: 'api',
      },
      {
        client_id: 'sb-bridge',
        client_secret: 'sb-bridge-secret',
        grant_types: ['authorization_code', 'refresh_token'],
        response_types: ['code'],
        redirect_uris: REDIRECT_URIS,
        post_logout_redirect_uris: REDIRECT_URIS,
        scope: 'openid profile email groups offline_access api',
      },
    ],
    scopes: ['openid', 'offline_access', 'profile', 'email', 'groups', 'api'],
    claims: {
      openid: ['sub'],
      profile: ['name', 'preferred_username'],
      email: ['email', 'email_verified'],
      groups: ['groups'],
    },
    pkce: { required: () => true },
    ttl: {
      AccessToken: ACCESS_TTL,
      ClientCredentials: ACCESS_TTL,
      IdToken: ACCESS_TTL,
    },
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      introspection: { enabled: true },
      revocation: { enabled: true },
      rpInitiatedLogout: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: async (_ctx, _client, oneOf) => oneOf,
        useGrantedResource: async () => true,
        getResourceServerInfo: async (_ctx, indicator) => {
          const info = resourceServer(indicator);
          if (!info) throw new errors.InvalidTarget();
          return info;
        },
      },
    },
    interactions: {
      url: (_ctx, interaction) => `/interaction/${interaction.uid}`,
    },
    renderError: async (ctx, out) => {
      ctx.type = 'json';
      ctx.body = out;
    },
  });
  provider.on('server_error', (_ctx, err) => console.error('server_error', err));
  allowAnyLoopbackPort(provider, 'sb-bridge');
  return provider;
}

const LOOPBACK_HOSTS = new Set(['127.0.0.1', '[::1]', 'localhost']);

// The URI without its port when it is an http loopback URI, else undefined.
function loopbackWithoutPort(value) {
  let url;
  try {
    url = new URL(value);
  } catch {
    return undefined;
  }
  if (url.protocol !== 'http:' || !LOOPBACK_HOSTS.has(url.hostname)) return undefined;
  url.port = '';
  return url.href;
}

// Test-only: a bridge under test listens on a random port, so `clientId`
// may use any port with a registered loopback redirect URI that has none
// (what RFC 8252 §7.3 grants native apps). Exact matching stays for all
// other URIs and clients; the token endpoint still requires the code's
// redirect_uri exactly.
function allowAnyLoopbackPort(provider, clientId) {
  const { prototype } = provider.Client;
  const exact = prototype.redirectUriAllowed;
  prototype.redirectUriAllowed = function redirectUriAllowed(value) {
    if (exact.call(this, value)) return true;
    if (this.clientId !== clientId) return false;
    const wanted = loopbackWithoutPort(value);
    return wanted !== undefined && this.redirectUris.some(
      (uri) => new URL(uri).port === '' && loopbackWithoutPort(uri) === wanted,
    );
  };
}

// -------------------------------------------------------- interactions ----

function html(s) {
  return String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function loginPage(uid, clientId, error) {
  return `<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>Sign-in (test IdP)</title></head>
<body>
<h1>Sign-in to ${html(clientId)}</h1>
${error ? `<p id="error">${html(error)}</p>` : ''}
<form method="post" action="/interaction/${html(uid)}">
<label>Username <input name="username" autofocus></label>
<label>Password <input name="password" type="password"></label>
<button type="submit">Sign-in</button>
</form>
<p>Test IdP: any username, password "password".</p>
</body></html>`;
}

async function readForm(req) {
  const chunks = [];
  let size = 0;
  for await (const chunk of req) {
    size += chunk.length;
    if (size > 64 * 1024) throw new Error('body too large');
    chunks.push(chunk);
  }
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

// Grants everything the request asked for (test IdP: no consent screen).
async function grantAll(provider, details, accountId, clientId, existingGrantId) {
  const grant = existingGrantId
    ? await provider.Grant.find(existingGrantId)
    : new provider.Grant({ accountId, clientId });
  const { params = {}, prompt = {} } = details;
  const scope = typeof params.scope === 'string' ? params.scope : '';
  const missing = prompt.details || {};
  grant.addOIDCScope(missing.missingOIDCScope ? missing.missingOIDCScope.join(' ') : scope);
  if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims);
  if (missing.missingResourceScopes) {
    for (const [indicator, scopes] of Object.entries(missing.missingResourceScopes)) {
      grant.addResourceScope(indicator, scopes.join(' '));
    }
  } else if (params.resource) {
    for (const indicator of [].concat(params.resource)) {
      const info = resourceServer(indicator);
      if (info) grant.addResourceScope(indicator, info.scope);
    }
  }
  return grant.save();
}

async function interaction(provider, req, res, uid) {
  const details = await provider.interactionDetails(req, res);
  if (details.uid !== uid) throw new Error('interaction uid mismatch');
  const clientId = details.params.client_id;

  if (details.prompt.name === 'consent') {
    const grantId = await grantAll(
      provider, details, details.session.accountId, clientId, details.grantId,
    );
    await provider.interactionFinished(req, res, { consent: { grantId } }, {
      mergeWithLastSubmission: true,
    });
    return;
  }
  if (details.prompt.name !== 'login') {
    res.writeHead(501, { 'content-type': 'text/plain' }).end(`prompt ${details.prompt.name}`);
    return;
  }

  if (req.method === 'GET') {
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
    res.end(loginPage(uid, clientId));
    return;
  }

  const form = await readForm(req);
  const username = (form.get('username') || form.get('login') || '').trim();
  if (!username || form.get('password') !== TEST_PASSWORD) {
    res.writeHead(401, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
    res.end(loginPage(uid, clientId, 'invalid username or password'));
    return;
  }
  // Log in and grant what was asked in one step: no consent screen.
  const grantId = await grantAll(provider, details, username, clientId, details.grantId);
  await provider.interactionFinished(req, res, {
    login: { accountId: username },
    consent: { grantId },
  }, { mergeWithLastSubmission: false });
}

// -------------------------------------------------------------- server ----

let current; // { provider, callback }

function json(res, status, body) {
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' });
  res.end(`${JSON.stringify(body)}\n`);
}

function keyState() {
  return {
    signing_kid: keys.signing.kid,
    es256_kid: keys.ec.kid,
    published: publishedJwks().keys.map(publicView),
  };
}

function rotate(issuer, keepOld) {
  const previous = keys.signing;
  keys.retired = keepOld ? [previous, ...keys.retired] : [];
  keys.signing = newRsaKey();
  const provider = buildProvider(issuer);
  current = { provider, callback: provider.callback() };
  return { previous_kid: previous.kid, kept_old: keepOld, ...keyState() };
}

async function handle(issuer, req, res) {
  const url = new URL(req.url, issuer);
  if (url.pathname === '/__test/health' && (req.method === 'GET' || req.method === 'HEAD')) {
    json(res, 200, { ok: true, issuer, ...keyState() });
    return;
  }
  if (url.pathname === '/__test/keys' && req.method === 'GET') {
    json(res, 200, keyState());
    return;
  }
  if (url.pathname === '/__test/rotate') {
    if (req.method !== 'POST') {
      json(res, 405, { error: 'method_not_allowed' });
      return;
    }
    const keepOld = ['1', 'true', 'yes'].includes((url.searchParams.get('keep_old') || '0').toLowerCase());
    const out = rotate(issuer, keepOld);
    console.log(`rotated: ${out.previous_kid} -> ${out.signing_kid} (keep_old=${keepOld})`);
    json(res, 200, out);
    return;
  }
  const m = /^\/interaction\/([^/]+)$/.exec(url.pathname);
  if (m && (req.method === 'GET' || req.method === 'POST')) {
    try {
      await interaction(current.provider, req, res, m[1]);
    } catch (err) {
      if (!res.headersSent) json(res, 400, { error: 'interaction_failed', error_description: String(err.message || err) });
    }
    return;
  }
  current.callback(req, res);
}

function main() {
  let issuer;
  const server = http.createServer((req, res) => {
    handle(issuer, req, res).catch((err) => {
      console.error(err);
      if (!res.headersSent) json(res, 500, { error: 'server_error' });
    });
  });
  server.on('error', (err) => {
    console.error(`listen failed: ${err.message}`);
    process.exit(1);
  });
  server.listen(PORT, HOST, () => {
    const { port } = server.address();
    const host = HOST.includes(':') ? `[${HOST}]` : HOST;
    issuer = `http://${host}:${port}`;
    const provider = buildProvider(issuer);
    current = { provider, callback: provider.callback() };
    if (process.env.SB_OIDC_PORT_FILE) {
      const tmp = `${process.env.SB_OIDC_PORT_FILE}.tmp`;
      fs.writeFileSync(tmp, `${port}\n`);
      fs.renameSync(tmp, process.env.SB_OIDC_PORT_FILE);
    }
    console.log(`oidc test provider listening, issuer ${issuer}, signing kid ${keys.signing.kid}`);
  });
  for (const sig of ['SIGTERM', 'SIGINT']) {
    process.on(sig, () => {
      server.close();
      server.closeAllConnections();
      process.exit(0);
    });
  }
}

main();
