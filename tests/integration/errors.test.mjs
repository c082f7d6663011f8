// Error answers say what to change (issue 19): the limit and its flag in 413/431, the claim to
// add in 403, an empty publish refused unless ?allow_empty=1, a multipart upload refused by its
// Content-Type, a JSON body that does not parse named as JSON, a space in a path called a bad
// request line.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { startHerald, rawExchange } from './lib/herald.mjs';

let h;
before(async () => { h = await startHerald(['--max-body', '1024', '--max-header', '2048']); });
after(async () => { await h.stop(); });

test('413 and 431 name the limit and the flag that sets it', async () => {
  let res = await fetch(`${h.url}/v1/topics/t`, { method: 'POST', body: 'x'.repeat(2000) });
  assert.equal(res.status, 413);
  assert.deepEqual(await res.json(), { error: 'request body too large: the limit is 1024 bytes (--max-body)', status: 413, limit: 1024, flag: '--max-body' });
  res = await fetch(`${h.url}/v1/topics/t`, { headers: { 'X-Big': 'y'.repeat(3000) } });
  assert.equal(res.status, 431);
  const body = await res.json();
  assert.equal(body.flag, '--max-header');
  assert.equal(body.limit, 2048);
  assert.match(body.error, /the limit is 2048 bytes \(--max-header\)$/);
});

test('an empty publish needs ?allow_empty=1; multipart is refused by name; bad JSON is named', async () => {
  let res = await fetch(`${h.url}/v1/topics/t`, { method: 'POST' });
  assert.equal(res.status, 400);
  assert.equal((await res.json()).error, 'empty body: send the message as the body, or add ?allow_empty=1 to publish an empty message');
  res = await fetch(`${h.url}/v1/topics/t?allow_empty=1`, { method: 'POST' });
  assert.equal(res.status, 200);
  const form = new FormData();
  form.append('data', 'hello');
  res = await fetch(`${h.url}/v1/topics/t`, { method: 'POST', body: form });
  assert.equal(res.status, 415);
  assert.match((await res.json()).error, /^Content-Type multipart\/form-data; boundary=.* is not accepted: send application\/json, or the data itself with any other type$/);
  res = await fetch(`${h.url}/v1/topics/t`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '{"data": oops}' });
  assert.equal(res.status, 400);
  assert.match((await res.json()).error, /\(the body was read as JSON: Content-Type application\/json\)$/);
});

test('a space in the path is a bad request line, said so', async () => {
  const { text: answer } = await rawExchange(h.port, 'GET /v1/topics/a b/events HTTP/1.1\r\nHost: x\r\n\r\n');
  assert.match(answer, /^HTTP\/1\.1 400 /);
  assert.match(answer, /"error":"bad request line: escape spaces in the path as %20"/);
});

test('403 says which claim to add', async () => {
  const SECRET = 's'.repeat(40);
  const locked = await startHerald(['--auth', 'all', '--jwt-key', `hs256:${SECRET}`]);
  const b64 = (v) => Buffer.from(JSON.stringify(v)).toString('base64url');
  const input = `${b64({ alg: 'HS256', typ: 'JWT' })}.${b64({ sub: 'a', exp: Math.floor(Date.now() / 1000) + 60, herald: { subscribe: ['x'] } })}`;
  const token = `${input}.${crypto.createHmac('sha256', SECRET).update(input).digest('base64url')}`;
  try {
    const auth = { Authorization: `Bearer ${token}` };
    let res = await fetch(`${locked.url}/v1/topics/news`, { method: 'POST', body: 'x', headers: auth });
    assert.equal(res.status, 403);
    assert.match((await res.json()).reason, /add a matching pattern to its herald\.publish claim/);
    res = await fetch(`${locked.url}/v1/topics/news/messages`, { headers: auth });
    assert.match((await res.json()).reason, /herald\.subscribe claim, or list the topic in --public-topics/);
    res = await fetch(`${locked.url}/v1/stats`, { headers: auth });
    assert.match((await res.json()).reason, /claim herald\.admin: true\) or the --admin-key/);
  } finally { await locked.stop(); }
});
