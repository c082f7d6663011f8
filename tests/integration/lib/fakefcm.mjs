// A fake FCM for the tests: the OAuth2 token endpoint (checks the JWT grant's RS256 signature
// against the test service account's key, its claims) and messages:send (checks the bearer
// token and the request's schema), answering each push as `script(token, attempt)` says.
import http from 'node:http';
import crypto from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

export async function startFakeFcm({ script = () => ({ status: 200 }), failTokens = 0 } = {}) {
  const { privateKey, publicKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  const fake = { pushes: [], tokenRequests: 0, errors: [], attempts: new Map(), script, issued: new Set() };
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (d) => { body += d; });
    req.on('end', () => {
      const reply = (status, json, headers = {}) => {
        res.writeHead(status, { 'Content-Type': 'application/json', ...headers });
        res.end(JSON.stringify(json));
      };
      if (req.url === '/token') return token(body, reply);
      const m = /^\/v1\/projects\/([^/]+)\/messages:send$/.exec(req.url);
      if (!m || req.method !== 'POST') return reply(404, { error: { status: 'NOT_FOUND' } });
      if (m[1] !== 'herald-test') fake.errors.push(`project ${m[1]}`);
      const bearer = /^Bearer (.+)$/.exec(req.headers.authorization || '');
      if (!bearer || !fake.issued.has(bearer[1])) {
        fake.errors.push('bad bearer');
        return reply(401, { error: { status: 'UNAUTHENTICATED' } });
      }
      let json;
      try { json = JSON.parse(body); } catch { fake.errors.push('bad json'); return reply(400, {}); }
      const problem = schemaProblem(json);
      if (problem) fake.errors.push(problem);
      const deviceToken = json.message?.token;
      const attempt = (fake.attempts.get(deviceToken) || 0) + 1;
      fake.attempts.set(deviceToken, attempt);
      fake.pushes.push({ at: Date.now(), token: deviceToken, attempt, message: json.message });
      const answer = fake.script(deviceToken, attempt, json.message);
      if (answer.hang) return; // never answers
      reply(answer.status, answer.body || (answer.status === 200 ? { name: `projects/herald-test/messages/${fake.pushes.length}` } : {}), answer.headers);
    });
  });

  function token(body, reply) {
    fake.tokenRequests++;
    if (fake.tokenRequests <= failTokens) return reply(503, { error: 'backend_error' });
    const form = new URLSearchParams(body);
    const assertion = form.get('assertion') || '';
    const [head, claims, sig] = assertion.split('.');
    const ok = form.get('grant_type') === 'urn:ietf:params:oauth:grant-type:jwt-bearer' && sig &&
      crypto.verify('sha256', Buffer.from(`${head}.${claims}`), publicKey, Buffer.from(sig, 'base64url'));
    const c = ok ? JSON.parse(Buffer.from(claims, 'base64url')) : {};
    const h = ok ? JSON.parse(Buffer.from(head, 'base64url')) : {};
    if (!ok || h.alg !== 'RS256' || c.iss !== 'herald@herald-test.iam.gserviceaccount.com' ||
        c.scope !== 'https://www.googleapis.com/auth/firebase.messaging' || c.aud !== fake.tokenUri ||
        !(c.exp > c.iat)) {
      fake.errors.push(`bad grant ${JSON.stringify(c)}`);
      return reply(400, { error: 'invalid_grant' });
    }
    const access = `ya29.test-${fake.tokenRequests}`;
    fake.issued.add(access);
    reply(200, { access_token: access, expires_in: 3599, token_type: 'Bearer' });
  }

  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  fake.url = `http://127.0.0.1:${server.address().port}`;
  fake.tokenUri = `${fake.url}/token`;
  const dir = mkdtempSync(path.join(tmpdir(), 'herald-fcm-'));
  fake.credentials = path.join(dir, 'service-account.json');
  writeFileSync(fake.credentials, JSON.stringify({
    type: 'service_account', project_id: 'herald-test', private_key_id: 'k1',
    private_key: privateKey.export({ type: 'pkcs8', format: 'pem' }),
    client_email: 'herald@herald-test.iam.gserviceaccount.com', token_uri: fake.tokenUri,
  }));
  fake.close = () => new Promise((resolve) => { server.closeAllConnections(); server.close(resolve); });
  return fake;
}

// The messages:send request body (FCM HTTP v1): what herald may send.
function schemaProblem(json) {
  const m = json?.message;
  if (!m || typeof m !== 'object') return 'no message';
  if (typeof m.token !== 'string') return 'no token';
  const allowed = new Set(['token', 'notification', 'data', 'android', 'apns', 'webpush']);
  for (const k of Object.keys(m)) if (!allowed.has(k)) return `unknown field ${k}`;
  if (m.data && Object.values(m.data).some((v) => typeof v !== 'string')) return 'data values must be strings';
  if (m.notification && Object.keys(m.notification).some((k) => !['title', 'body', 'image'].includes(k))) return 'bad notification';
  if (m.android && (!['HIGH', 'NORMAL'].includes(m.android.priority) || (m.android.ttl && !/^\d+s$/.test(m.android.ttl)))) return 'bad android';
  if (m.apns && typeof m.apns.headers !== 'object') return 'bad apns';
  if (m.webpush && typeof m.webpush.headers !== 'object') return 'bad webpush';
  return null;
}
