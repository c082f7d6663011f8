// A throwaway CA per run, and certificates for localhost/127.0.0.1 it signs (openssl's CLI).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

export function makeCA(prefix = 'herald-ca-') {
  const dir = mkdtempSync(path.join(tmpdir(), prefix));
  const openssl = (...args) => {
    const out = spawnSync('openssl', args, { cwd: dir, encoding: 'utf8' });
    assert.equal(out.status, 0, out.stderr);
    return out.stdout;
  };
  openssl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'ca.key',
    '-out', 'ca.pem', '-days', '2', '-subj', '/CN=herald test CA');
  writeFileSync(path.join(dir, 'ext.cnf'), 'subjectAltName=DNS:localhost,IP:127.0.0.1\n');
  return {
    dir,
    ca: readFileSync(path.join(dir, 'ca.pem')),
    // `name`.pem and `name`.key, signed by the CA; their paths.
    issue(name) {
      openssl('req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', `${name}.key`,
        '-out', `${name}.csr`, '-subj', `/CN=${name}`);
      openssl('x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial',
        '-out', `${name}.pem`, '-days', '2', '-extfile', 'ext.cnf');
      return { cert: path.join(dir, `${name}.pem`), key: path.join(dir, `${name}.key`) };
    },
    // base64 SHA-256 of a certificate's public key: what Chromium's
    // --ignore-certificate-errors-spki-list trusts (that key only, not every certificate).
    spki(name) {
      const der = spawnSync('sh', ['-c', `openssl x509 -in ${name}.pem -pubkey -noout | openssl pkey -pubin -outform der | openssl dgst -sha256 -binary | base64`],
        { cwd: dir, encoding: 'utf8' });
      assert.equal(der.status, 0, der.stderr);
      return der.stdout.trim();
    },
    cleanup() { rmSync(dir, { recursive: true, force: true }); },
  };
}
