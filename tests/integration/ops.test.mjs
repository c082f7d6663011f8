// Operating herald (issue 19, docs/OPERATIONS.md): --version everywhere it shows, a warning at
// start when Redis cannot be reached, --config files and their precedence.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startHerald, waitFor } from './lib/herald.mjs';
import { freePort } from './lib/redis.mjs';

const BIN = process.env.HERALD_BIN;

test('--version, and the version in the start-up line and /healthz', async () => {
  const out = spawnSync(BIN, ['--version'], { encoding: 'utf8' });
  assert.equal(out.status, 0);
  const [, version] = /^herald (\d+\.\d+\.\d+)\n$/.exec(out.stdout);
  const h = await startHerald([]);
  try {
    assert.match(h.log, new RegExp(`event=server\\.listening .* version=${version.replaceAll('.', '\\.')}`));
    assert.equal((await (await fetch(`${h.url}/healthz`)).json()).version, version);
  } finally { await h.stop(); }
});

test('a Redis that cannot be reached is a warning at start, said once', async () => {
  const port = await freePort();
  const h = await startHerald(['--redis', `redis://127.0.0.1:${port}`]);
  try {
    await waitFor(() => /level=warn event=redis\.unreachable addr=127\.0\.0\.1:\d+ .*reason="Connection refused"/.test(h.log), { what: 'the warning' });
    await new Promise((r) => setTimeout(r, 1500)); // retries meanwhile
    assert.equal(h.log.match(/redis\.unreachable/g).length, 1);
    assert.equal((await fetch(`${h.url}/healthz`)).status, 503);
  } finally { await h.stop(); }
});

test('--config FILE: the flags\' names; the environment and flags win; errors name the line', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'herald-config-'));
  const file = path.join(dir, 'herald.conf');
  writeFileSync(file, '# a comment\n\nhistory-size = 7\nmax-topics = "1"\nsse-retry = 1234\npublic-topics = a\n');
  try {
    const h = await startHerald(['--config', file, '--max-topics', '3'], { env: { HERALD_SSE_RETRY: '4321' } });
    try {
      assert.match(h.log, /history_size=7 /, 'from the file');
      for (let i = 0; i < 9; i++) await fetch(`${h.url}/v1/topics/c`, { method: 'POST', body: `m${i}` });
      const { messages } = await (await fetch(`${h.url}/v1/topics/c/messages?since=0`)).json();
      assert.equal(messages.length, 7);
      const res = await fetch(`${h.url}/v1/topics/c/events`);
      const reader = res.body.getReader();
      const { value } = await reader.read();
      assert.match(new TextDecoder().decode(value), /retry: 4321/, 'the environment wins over the file');
      await reader.cancel();
      const both = await fetch(`${h.url}/v1/events?topic=a&topic=b`);
      assert.equal(both.status, 200, 'the flag (3 topics) wins over the file (1)');
      await both.body.cancel();
    } finally { await h.stop(); }
    writeFileSync(file, 'history-size = 7\nno-such-option = 1\n');
    let out = spawnSync(BIN, ['--config', file], { encoding: 'utf8' });
    assert.equal(out.status, 2);
    assert.match(out.stderr, /herald\.conf:2: unknown option "no-such-option"/);
    writeFileSync(file, 'history-size = lots\n');
    out = spawnSync(BIN, ['--config', file], { encoding: 'utf8' });
    assert.match(out.stderr, /invalid value "lots" for history-size \(.*herald\.conf:1\)/);
    out = spawnSync(BIN, ['--config', path.join(dir, 'missing.conf')], { encoding: 'utf8' });
    assert.match(out.stderr, /missing\.conf: No such file or directory/);
  } finally { rmSync(dir, { recursive: true, force: true }); }
});

test('make install lays out a service that systemd-analyze verify accepts', () => {
  const root = mkdtempSync(path.join(tmpdir(), 'herald-install-'));
  const repo = new URL('../..', import.meta.url).pathname;
  try {
    const make = spawnSync('make', ['-s', '-C', repo, 'install', `INSTALL_BIN=${BIN}`, `PREFIX=${root}/usr`,
      `UNITDIR=${root}/unit`, `SYSCONFDIR=${root}/etc`], { encoding: 'utf8' });
    assert.equal(make.status, 0, make.stderr);
    const unit = path.join(root, 'unit', 'herald.service');
    let verify = spawnSync('systemd-analyze', ['verify', unit], { encoding: 'utf8' });
    assert.equal(verify.status, 0, verify.stderr);
    // The checker does check: a unit with a mistake fails it.
    writeFileSync(path.join(root, 'unit', 'broken.service'), '[Service]\nExecStart=relative/herald\n');
    verify = spawnSync('systemd-analyze', ['verify', path.join(root, 'unit', 'broken.service')], { encoding: 'utf8' });
    assert.notEqual(verify.status, 0);
    // The installed binary runs with the installed example configuration.
    const version = spawnSync(path.join(root, 'usr', 'bin', 'herald'), ['--config', path.join(root, 'etc', 'herald', 'herald.conf'), '--version'], { encoding: 'utf8' });
    assert.match(version.stdout, /^herald \d+\.\d+\.\d+/);
  } finally { rmSync(root, { recursive: true, force: true }); }
});
