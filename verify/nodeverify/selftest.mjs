// Self-test for what no published conformance vector reaches: step 7 (the
// custody state machine and the parties' signed statements), keys and limits
// of step 1, and the stream form's framing. It builds synthetic bundles with
// its own log key, receipt key and client CA (made with the openssl command),
// so a history the custody rules forbid can be signed by every service key,
// and checks verify.mjs's outcome and step for each (and, for format
// failures, the CLI's exit code 2).
//
//   node selftest.mjs [--write DIR]   (--write also saves each case's bundle,
//                                      and in case-NN.trust.json what to give
//                                      a verifier for it and the result wanted)
//
// Exits 0 when every case gives the expected outcome. Expectations follow the
// docs; where they are silent, the case says so and follows the reference
// `custody verify` run on the written bundles (README: doc gaps). A case
// marked `ref` would be one where the reference reaches another result; at
// present there is none.

import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { verifyBundle, verifyFile, verifyStream, canon, formatTime } from './verify.mjs';

const here = path.dirname(new URL(import.meta.url).pathname);
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'nodeverify-selftest-'));
const sha = (b) => crypto.createHash('sha256').update(b).digest();
const hex = (b) => b.toString('hex');

// ---- keys and certificates
function openssl(...args) { execFileSync('openssl', args, { cwd: tmp, stdio: ['ignore', 'ignore', 'pipe'] }); }
openssl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem',
  '-subj', '/O=Selftest/CN=Selftest CA', '-days', '30', '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign');
// an intermediate CA under the root, for a signer whose chain needs it
openssl('req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'inter.key', '-out', 'inter.csr', '-subj', '/O=Selftest/CN=Selftest intermediate');
fs.writeFileSync(path.join(tmp, 'inter.ext'), 'basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n');
openssl('x509', '-req', '-in', 'inter.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'inter.pem', '-days', '30', '-extfile', 'inter.ext');
function leaf(name, uri, issuer = 'ca', eku = 'extendedKeyUsage=clientAuth\n') {
  openssl('req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/O=Selftest/CN=${name}`);
  fs.writeFileSync(path.join(tmp, `${name}.ext`), `subjectAltName=URI:${uri}\n${eku}keyUsage=critical,digitalSignature\n`);
  openssl('x509', '-req', '-in', `${name}.csr`, '-CA', `${issuer}.pem`, '-CAkey', `${issuer}.key`, '-CAcreateserial', '-out', `${name}.pem`, '-days', '30', '-extfile', `${name}.ext`);
  const cert = new crypto.X509Certificate(fs.readFileSync(path.join(tmp, `${name}.pem`)));
  return { uri, key: crypto.createPrivateKey(fs.readFileSync(path.join(tmp, `${name}.key`))), certB64: cert.raw.toString('base64') };
}
const COLLECTOR = leaf('collector', 'urn:custody:collector:alice');
const CUSTODIAN = leaf('custodian', 'urn:custody:custodian:lab');
const COURT = leaf('court', 'urn:custody:court:icc');
const NOEKU = leaf('noeku', 'urn:custody:custodian:no-eku', 'ca', ''); // no extended key usage at all
const SERVERONLY = leaf('serveronly', 'urn:custody:custodian:server-only', 'ca', 'extendedKeyUsage=serverAuth\n');
const STRANGER = leaf('stranger', 'urn:custody:custodian:mallory');
const BRANCH = leaf('branch', 'urn:custody:custodian:branch-office', 'inter'); // issued by the intermediate
const caPem = fs.readFileSync(path.join(tmp, 'ca.pem'), 'utf8');
const caWithIntermediatePem = caPem + fs.readFileSync(path.join(tmp, 'inter.pem'), 'utf8');
const SERVICE = 'urn:custody:service:custodyd';

const logPriv = crypto.generateKeyPairSync('ed25519');
const logPub = logPriv.publicKey.export({ format: 'jwk' }).x;
const ORIGIN = 'selftest.example/log';
const keyBytes = Buffer.concat([Buffer.from([1]), Buffer.from(logPub, 'base64url')]);
const keyHash = sha(Buffer.concat([Buffer.from(ORIGIN + '\n'), keyBytes])).subarray(0, 4);
const logKey = `${ORIGIN}+${hex(keyHash)}+${keyBytes.toString('base64')}`;
const rcpt = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
const rcptDer = rcpt.publicKey.export({ type: 'spki', format: 'der' });
const rcptPem = rcpt.publicKey.export({ type: 'spki', format: 'pem' });

// ---- Merkle tree (RFC 9162 §2.1)
const leafHash = (b) => sha(Buffer.concat([Buffer.from([0]), b]));
const nodeHash = (l, r) => sha(Buffer.concat([Buffer.from([1]), l, r]));
const split = (n) => { let k = 1; while (k * 2 < n) k *= 2; return k; };
// MTH(L[lo:hi]) and inclusion proofs, memoised (the long stream case has thousands of leaves)
function tree(L) {
  const memo = new Map();
  const mth = (lo, hi) => {
    if (hi - lo === 1) return L[lo];
    const key = lo * 1e7 + hi;
    let h = memo.get(key);
    if (!h) { const k = lo + split(hi - lo); h = nodeHash(mth(lo, k), mth(k, hi)); memo.set(key, h); }
    return h;
  };
  const inclusion = (m, lo = 0, hi = L.length) => {
    if (hi - lo <= 1) return [];
    const k = lo + split(hi - lo);
    return m < k ? [...inclusion(m, lo, k), mth(k, hi)] : [...inclusion(m, k, hi), mth(lo, k)];
  };
  return { root: mth(0, L.length), inclusion };
}
function checkpoint(size, root) {
  const text = `${ORIGIN}\n${size}\n${root.toString('base64')}\n`;
  const sig = crypto.sign(null, Buffer.from(text), logPriv.privateKey);
  return `${text}\n\u2014 ${ORIGIN} ${Buffer.concat([keyHash, sig]).toString('base64')}\n`;
}

// ---- a bundle from a list of events
const T0 = (BigInt(Date.now()) / 1000n) * 1000000000n; // now, whole seconds, in ns
const at = (sec) => formatTime(T0 + BigInt(Math.round(sec * 1e9)));
const atOffset = (sec) => formatTime(T0 + BigInt(Math.round(sec * 1e9)) + 3600000000000n).replace(/Z$/, '+01:00');
const EVID = 'ev-' + 'selftestselftestselftestab';
const CONTENT = Buffer.from('selftest evidence bytes\n');
const SHA = hex(sha(CONTENT));
const STORAGE = { backend: 'disk', bucket: '', encrypted: false, key: `sha256/${SHA.slice(0, 2)}/${SHA}`, retain_until: at(3600), version_id: '' };
const sign = (party, text) => crypto.sign('sha256', Buffer.from(text), party.key).toString('base64');

function releaseStmt(from, to, reason, signedAt) {
  return canon({ evidence_id: EVID, from, reason, sha256: SHA, signed_at: signedAt, to, type: 'custody.release', v: 1 });
}
function acceptStmt(from, to, releaseSeq, signedAt) {
  return canon({ evidence_id: EVID, from, release_seq: releaseSeq, sha256: SHA, signed_at: signedAt, to, type: 'custody.accept', v: 1 });
}

// metadata nested k levels below the value that holds it
function nest(k) { let v = 'deepest'; for (let j = 0; j < k; j++) v = [v]; return v; }

// events: [{type, performer, counterparty?, details?, extra?, t}] after the ingest (built here).
// history (added by the Custody team, for step 10): the log ends with a
// history-map commitment and the bundle carries the item's map proof
// (docs/HISTORY_MAP.md), the map covering the log up to the item's event
// history.covers - 1 (default: all of them); history.none: no commitment,
// no proof; history.treeSize: the commitment claims that tree size;
// history.leafOf: 'other' gives the proof of another item's leaf.
const OTHER_A = 'ev-' + 'a'.repeat(26), OTHER_Z = 'ev-' + 'z'.repeat(26);
function build({ events, receiptExtra = {}, metadata = { capture: { captured_at: '2024-05-01T10:00:00Z' }, filename: 'x.jpg' }, capture = {}, history = {} }) {
  const md = JSON.parse(JSON.stringify(metadata));
  const capStmt = canon({ ...(capture.capturedAt === null ? {} : { captured_at: capture.capturedAt || '2024-05-01T10:00:00Z' }), case_id: 'CASE-1', collector: COLLECTOR.uri, sha256: SHA, signed_at: at(0), size: CONTENT.length, type: 'custody.capture', v: 1 });
  const ingestDetails = {
    case_id: 'CASE-1', kind: 'photo', media_type: 'image/jpeg', metadata_sha256: hex(sha(Buffer.from(canon(md, true)))), size: CONTENT.length, special: false, storage: STORAGE,
  };
  if (capture.none !== true) ingestDetails.collector_signature = { certificate: (capture.signer || COLLECTOR).certB64, signature: sign(capture.signer || COLLECTOR, capStmt), statement: capStmt };
  const all = [{ type: 'ingest', performer: COLLECTOR.uri, details: ingestDetails, t: 0.1 }, ...events];
  const filler = [0, 1, 2].map((i) => leafHash(Buffer.from(`other item ${i}`)));
  const leaves = [...filler];
  const out = [];
  let prev = null;
  all.forEach((e, seq) => {
    const time = at(e.t);
    const record = { details: e.details, evidence_id: EVID, performer: e.performer, recorded_at: time, salt: hex(crypto.randomBytes(32)), seq, type: e.type, v: 1, ...(e.extra || {}) };
    if (e.counterparty) record.counterparty = e.counterparty;
    if (!e.details) delete record.details;
    if (seq === 0) record.sha256 = SHA;
    if (prev) { record.prev_index = prev.index; record.prev_leaf_hash = prev.leafHex; }
    const recordText = canon(record);
    const entry = { evidence_id: EVID, record_sha256: hex(sha(Buffer.from(recordText))), seq, time, type: e.type, v: 1 };
    if (seq === 0) entry.sha256 = SHA;
    if (prev) { entry.prev_index = prev.index; entry.prev_leaf_hash = prev.leafHex; }
    const entryText = canon(entry);
    const index = leaves.length;
    const lh = leafHash(Buffer.from(entryText));
    leaves.push(lh);
    leaves.push(leafHash(Buffer.from(`interleaved ${seq}`)));
    out.push({ seq, index, entryText, recordText, lh, record });
    prev = { index, leafHex: hex(lh) };
  });
  let completeness;
  if (!history.none) {
    // the map at tree size n: one leaf per item, sorted by evidence id
    const last = out[(history.covers ?? out.length) - 1];
    const n = history.covers !== undefined && history.covers < out.length ? last.index + 2 : leaves.length;
    const mapLeaves = [
      canon({ evidence_id: OTHER_A, leaf_hash: hex(filler[0]), log_index: 0, seq: 0 }),
      canon({ evidence_id: EVID, leaf_hash: hex(last.lh), log_index: last.index, seq: last.seq }),
      canon({ evidence_id: OTHER_Z, leaf_hash: hex(filler[1]), log_index: 1, seq: 0 }),
    ];
    const map = tree(mapLeaves.map((t) => leafHash(Buffer.from(t))));
    const entry = canon({ map_root: hex(map.root), map_size: mapLeaves.length, tree_size: history.treeSize ?? n, type: 'history_map', v: 1 });
    const mapIndex = history.leafOf === 'other' ? 2 : 1;
    completeness = { entry, log_index: leaves.length, inclusion_proof: null, map_leaf: mapLeaves[mapIndex], map_index: mapIndex, map_proof: map.inclusion(mapIndex).map((h) => h.toString('base64')) };
    leaves.push(leafHash(Buffer.from(entry)));
  }
  const size = leaves.length;
  const { root, inclusion } = tree(leaves);
  if (completeness) completeness.inclusion_proof = inclusion(completeness.log_index).map((h) => h.toString('base64'));
  const events_ = out.map((o) => {
    const base = { evidence_id: EVID, leaf_hash: hex(o.lh), log_index: o.index, log_origin: ORIGIN, time: o.record.recorded_at, v: 1 };
    const payload = o.seq === 0
      ? canon({ ...base, case_id: 'CASE-1', kind: 'photo', media_type: 'image/jpeg', sha256: SHA, size: CONTENT.length, special: false, storage: STORAGE, type: 'ingest' })
      : canon({ ...base, event_type: o.record.type, seq: o.seq, type: 'event', ...receiptExtra });
    return {
      seq: o.seq, log_index: o.index, entry: o.entryText, record: o.recordText,
      inclusion_proof: inclusion(o.index).map((h) => h.toString('base64')),
      receipt: { payload, signature: crypto.sign('sha256', Buffer.from(payload), rcpt.privateKey).toString('base64'), key_id: hex(sha(rcptDer)) },
    };
  });
  return {
    format: 'custody-bundle', v: 1, created_at: at(100),
    evidence: { evidence_id: EVID, sha256: SHA, size: CONTENT.length, media_type: 'image/jpeg', kind: 'photo', case_id: 'CASE-1', metadata: md },
    log: { origin: ORIGIN, checkpoint: checkpoint(size, root), tree_size: size },
    earlier: { empty: checkpoint(0, sha(Buffer.alloc(0))), same: checkpoint(size, root) },
    events: events_,
    keys: { log_verifier_key: logKey, receipt_public_key_pem: rcptPem },
    ...(completeness ? { completeness } : {}),
  };
}

const rel = (t, { by = COLLECTOR, to = CUSTODIAN, reason = 'to the lab', ttl = 3600, stmtReason, signer, signedAt } = {}) => {
  const st = releaseStmt(by.uri, to.uri, stmtReason ?? reason, signedAt ?? at(t - 0.05));
  return { type: 'release', performer: by.uri, counterparty: to.uri, t, details: { certificate: (signer || by).certB64, expires_at: at(t + ttl), reason, signature: sign(signer || by, st), statement: st } };
};
const acc = (t, seq, { by = CUSTODIAN, from = COLLECTOR, stmtSeq } = {}) => {
  const st = acceptStmt(from.uri, by.uri, stmtSeq ?? seq, at(t - 0.05));
  return { type: 'accept', performer: by.uri, counterparty: from.uri, t, details: { certificate: by.certB64, release_seq: seq, signature: sign(by, st), statement: st } };
};
const plain = (type, who, t, details = { note: 'n' }) => ({ type, performer: who.uri ?? who, t, details });

const cases = [
  { name: 'honest hand-off', events: [rel(1), acc(2, 1), plain('analysis', CUSTODIAN, 3), plain('access', COURT, 4)], want: ['verified'] },
  { name: 'honest hand-off, no CA', events: [rel(1), acc(2, 1)], noCA: true, want: ['verified_with_limits'] },
  { name: 'cancel then lapse', events: [
    rel(1, { to: COURT }),
    { type: 'release_cancelled', performer: COLLECTOR.uri, counterparty: COURT.uri, t: 2, details: { reason: 'wrong', release_seq: 1 } },
    rel(3, { ttl: 1 }),
    { type: 'release_expired', performer: SERVICE, counterparty: CUSTODIAN.uri, t: 5, details: { expired_at: at(4), release_seq: 3 } },
    plain('annotation', COURT, 5)], want: ['verified'] },
  { name: 'release by someone not the custodian', events: [rel(1, { by: CUSTODIAN, to: COURT })], want: ['failed', 'custody'] },
  { name: 'release to oneself', events: [rel(1, { to: COLLECTOR })], want: ['failed', 'custody'] },
  { name: 'second release while one is pending', events: [rel(1), rel(2, { to: COURT })], want: ['failed', 'custody'] },
  { name: 'accept by someone not the recipient', events: [rel(1), acc(2, 1, { by: COURT })], want: ['failed', 'custody'] },
  { name: 'accept naming another release seq', events: [rel(1), plain('access', COURT, 1.5), acc(2, 2)], want: ['failed', 'custody'] },
  { name: 'accept with no release pending', events: [acc(2, 1)], want: ['failed', 'custody'] },
  { name: 'analysis by a non-custodian', events: [plain('analysis', CUSTODIAN, 1)], want: ['failed', 'custody'] },
  { name: 'analysis by the releaser while pending (still custodian)', events: [rel(1), plain('analysis', COLLECTOR, 2)], want: ['verified'] },
  { name: 'event after the lapse that is not release_expired', events: [rel(1, { ttl: 1 }), plain('access', COURT, 3)], want: ['failed', 'custody'] },
  { name: 'accept after the lapse', events: [rel(1, { ttl: 1 }), acc(3, 1)], want: ['failed', 'custody'] },
  { name: 'release_expired before expiry', events: [rel(1, { ttl: 10 }), { type: 'release_expired', performer: SERVICE, counterparty: CUSTODIAN.uri, t: 2, details: { expired_at: at(11), release_seq: 1 } }], want: ['failed', 'custody'] },
  { name: 'release_expired with another expired_at', events: [rel(1, { ttl: 1 }), { type: 'release_expired', performer: SERVICE, counterparty: CUSTODIAN.uri, t: 3, details: { expired_at: at(2.5), release_seq: 1 } }], want: ['failed', 'custody'] },
  { name: 'release_expired by a person', events: [rel(1, { ttl: 1 }), { type: 'release_expired', performer: COLLECTOR.uri, counterparty: CUSTODIAN.uri, t: 3, details: { expired_at: at(2), release_seq: 1 } }], want: ['failed', 'custody'] },
  { name: 'cancel by someone not the custodian', events: [rel(1), { type: 'release_cancelled', performer: CUSTODIAN.uri, counterparty: CUSTODIAN.uri, t: 2, details: { reason: 'x', release_seq: 1 } }], want: ['failed', 'custody'] },
  { name: 'expires_at not after recorded_at', events: [rel(1, { ttl: 0 })], want: ['failed', 'custody'] },
  { name: 'unknown event type', events: [plain('teleport', COLLECTOR, 1)], want: ['failed', 'custody'] },
  { name: 'release statement with another reason', events: [rel(1, { stmtReason: 'something else' })], want: ['failed', 'custody'] },
  { name: 'accept statement naming another release seq', events: [rel(1), acc(2, 1, { stmtSeq: 7 })], want: ['failed', 'custody'] },
  { name: "release signed with someone else's certificate", events: [rel(1, { signer: STRANGER })], want: ['failed', 'custody'] },
  { name: 'release signed after the certificate expired (with CA)', events: [rel(1, { signedAt: at(60 * 86400) })], want: ['failed', 'custody'] },
  { name: 'release signed after the certificate expired (no CA)', events: [rel(1, { signedAt: at(60 * 86400) })], noCA: true, want: ['verified_with_limits'] },
  { name: 'capture statement with another capture time', events: [], capture: { capturedAt: '2024-05-01T10:00:01Z' }, want: ['failed', 'custody'] },
  { name: 'capture time the same instant in another offset', events: [], capture: { capturedAt: '2024-05-01T12:00:00+02:00' }, want: ['failed', 'custody'] },
  { name: 'metadata capture time the collector did not sign', events: [], capture: { capturedAt: null }, want: ['failed', 'custody'] },
  { name: 'capture statement signed by someone else', events: [], capture: { signer: STRANGER }, want: ['failed', 'custody'] },
  { name: 'release signed_at written with an offset', events: [rel(1, { signedAt: atOffset(0.95) })], want: ['failed', 'custody'] },
  { name: 'release expires_at written with an offset', events: [(() => { const r = rel(1, { ttl: 1 }); r.details.expires_at = atOffset(2); return r; })(), { type: 'release_expired', performer: SERVICE, counterparty: CUSTODIAN.uri, t: 3, details: { expired_at: at(2), release_seq: 1 } }], want: ['verified'] },
  { name: 'capture statement captured_at with trailing zeros', events: [], capture: { capturedAt: '2024-05-01T10:00:00.000Z' }, want: ['failed', 'custody'] },
  { name: 'no capture statement but a metadata capture time', events: [], capture: { none: true }, want: ['verified'] },
  { name: 'nothing to chain, no CA', events: [plain('access', COURT, 1)], capture: { none: true }, metadata: { filename: 'x.jpg' }, noCA: true, want: ['verified_with_limits'] },
  { name: 'no capture statement, no capture time', events: [], capture: { none: true }, metadata: { filename: 'x.jpg' }, want: ['verified'] },
  // the spec's later clarifications
  { name: 'release without a reason (statement reason "")', events: [(() => { const r = rel(1, { reason: '' }); delete r.details.reason; return r; })(), acc(2, 1)], want: ['verified'] },
  { name: 'release_expired naming another counterparty (not checked)', events: [rel(1, { ttl: 1 }), { type: 'release_expired', performer: SERVICE, counterparty: COURT.uri, t: 3, details: { expired_at: at(2), release_seq: 1 } }], want: ['verified'] },
  { name: 'record with a top-level key LOG_FORMAT.md does not list', events: [{ ...plain('access', COURT, 1), extra: { location: 'x' } }], want: ['failed', 'event'] },
  { name: 'details with a key LOG_FORMAT.md does not list (committed like the rest)', events: [plain('access', COURT, 1, { note: 'n', reference: 'R-7' })], want: ['verified'] },
  { name: 'signer under an intermediate, the CA file holding it', events: [rel(1, { to: BRANCH }), acc(2, 1, { by: BRANCH })], ca: caWithIntermediatePem, want: ['verified'] },
  { name: 'signer under an intermediate the CA file lacks', events: [rel(1, { to: BRANCH }), acc(2, 1, { by: BRANCH })], want: ['failed', 'custody'] },
  { name: "the bundle's own receipt key does not parse (no keys supplied)", events: [], noKeys: true, bundle: (b) => { b.keys.receipt_public_key_pem = '-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n'; }, want: ['failed', 'event'] },
  { name: "the bundle's own log key does not parse (no keys supplied)", events: [], noKeys: true, bundle: (b) => { b.keys.log_verifier_key = 'not a key'; }, want: ['failed', 'checkpoint'] },
  { name: 'no keys supplied', events: [rel(1), acc(2, 1)], noKeys: true, want: ['untrusted_keys'] },
  { name: 'metadata nested to 100 levels in all', events: [], metadata: { filename: 'x.jpg', deep: nest(97) }, capture: { none: true }, want: ['verified'] },
  { name: 'metadata nested to 101 levels in all', events: [], metadata: { filename: 'x.jpg', deep: nest(98) }, capture: { none: true }, want: ['failed', 'format'], exit: 2 },
  { name: 'metadata number 1e400', events: [], metadata: { filename: 'x.jpg', n: '@@1e400@@' }, capture: { none: true }, want: ['failed', 'format'], exit: 2 },
  // the stream form
  { name: 'stream form (in memory)', form: 'stream', events: [rel(1), acc(2, 1), plain('access', COURT, 3)], want: ['verified'] },
  { name: 'stream form (a file, a line at a time)', form: 'file', events: [rel(1), acc(2, 1), plain('access', COURT, 3)], want: ['verified'] },
  { name: 'stream form, a history the custody rules forbid', form: 'file', events: [rel(1), acc(2, 1, { by: COURT })], want: ['failed', 'custody'] },
  { name: 'stream form, last line without its \\n (VERIFY.md: lines are separated by \\n)', form: 'stream', events: [rel(1)], bytes: (t) => t.replace(/\n$/, ''), want: ['verified'] },
  { name: 'stream form, last line cut short', form: 'stream', events: [rel(1)], bytes: (t) => t.slice(0, -10), want: ['failed', 'format'], exit: 2 },
  { name: 'stream form, an empty line after the last event', form: 'stream', events: [rel(1)], bytes: (t) => t + '\n', want: ['failed', 'format'], exit: 2 },
  { name: 'stream form, an event line with an unknown key', form: 'stream', events: [rel(1)], line: (l, i) => (i === 2 ? l.replace(/^\{/, '{"extra":1,') : l), want: ['failed', 'format'], exit: 2 },
  { name: 'stream form, header with events in place of event_count', form: 'stream', events: [], line: (l, i) => (i === 0 ? l.replace(/"event_count":1/, '"events":[]') : l), want: ['failed', 'format'], exit: 2 },
  { name: 'stream form, an event line over 1 MiB', form: 'file', events: [plain('annotation', COURT, 1, { note: 'x'.repeat(1024 * 1024) })], want: ['failed', 'format'], exit: 2 },
  { name: 'stream form, an event line of 1 MiB less a little', form: 'file', events: [plain('annotation', COURT, 1, { note: 'x'.repeat(1024 * 1024 - 3000) })], want: ['verified'] },
  { name: 'stream form, header line of a document (format "custody-bundle")', form: 'stream', events: [], line: (l, i) => (i === 0 ? l.replace('"custody-bundle-stream"', '"custody-bundle"') : l), want: ['failed', 'format'], exit: 2 },
  // where the docs are silent or loose: each as the reference CLI decides (README: doc gaps)
  { name: 'stream form, CRLF line ends', form: 'stream', events: [rel(1)], bytes: (t) => t.replace(/\n/g, '\r\n'), want: ['verified'] },
  { name: 'stream form, an empty line between events', form: 'stream', events: [rel(1)], bytes: (t) => t.replace(/\n/, '\n\n'), want: ['failed', 'format'], exit: 2 },
  { name: 'stream form, header line over 1 MiB', form: 'stream', events: [], capture: { none: true }, metadata: { filename: 'x'.repeat(1024 * 1024) }, want: ['failed', 'format'], exit: 2 },
  { name: 'stream form, event_count 0 and no event line', form: 'stream', events: [], bytes: (t) => t.split('\n')[0].replace('"event_count":1', '"event_count":0') + '\n', want: ['failed', 'format'], exit: 2 },
  { name: 'leaf without extended key usage', events: [rel(1, { to: NOEKU }), acc(2, 1, { by: NOEKU })], want: ['verified'] },
  { name: 'leaf for server authentication only', events: [rel(1, { to: SERVERONLY }), acc(2, 1, { by: SERVERONLY })], want: ['failed', 'custody'] },
  { name: 'event receipts still naming the performer', events: [rel(1), acc(2, 1)], receiptExtra: { performer: 'urn:custody:x:y' }, want: ['verified'] },
  { name: 'earlier checkpoint of the empty tree, from_size 0', events: [], earlier: 'empty', want: ['verified'] },
  { name: 'earlier checkpoint the same as the bundle, no consistency', events: [], earlier: 'same', want: ['verified'] },
  { name: 'bundle receipt key with text around the PEM block (no keys)', events: [], noKeys: true, bundle: (b) => { b.keys.receipt_public_key_pem = 'the key:\n' + b.keys.receipt_public_key_pem + 'end\n'; }, want: ['untrusted_keys'] },
  { name: 'bundle receipt key PEM in lines of 76 (no keys)', events: [], noKeys: true, bundle: (b) => { const d = b.keys.receipt_public_key_pem.split('\n').slice(1, -2).join(''); b.keys.receipt_public_key_pem = `-----BEGIN PUBLIC KEY-----\n${d.match(/.{1,76}/g).join('\n')}\n-----END PUBLIC KEY-----\n`; }, want: ['untrusted_keys'] },
  { name: 'record purpose of the wrong type (an integer)', events: [{ ...plain('access', COURT, 1), extra: { purpose: 5 } }], want: ['failed', 'event'] },
  { name: 'access record without a purpose (LOG_FORMAT.md: required for every access)', events: [plain('access', COURT, 1)], want: ['verified'] },
  { name: 'access record with a purpose', events: [{ ...plain('access', COURT, 1), extra: { purpose: 'hearing' } }], want: ['verified'] },
  { name: 'stream form, 3000 events read lazily', form: 'lazy', events: Array.from({ length: 3000 }, (_, k) => plain('access', COURT, 1 + k / 1000)), want: ['verified'] },
  // step 10, history completeness (added by the Custody team with completeness.mjs)
  { name: 'history map over the whole log: complete at the checkpoint', events: [rel(1), acc(2, 1)], want: ['verified'],
    expect: (r) => r.facts.some((f) => f.name === 'history complete' && f.value.startsWith('at the checkpoint:')) && r.cannotProve.length === 0 },
  { name: 'history map over the first two events: the rest of the log is not covered', events: [rel(1), acc(2, 1), plain('access', COURT, 3)], history: { covers: 2 }, want: ['verified'],
    expect: (r) => r.facts.some((f) => f.name === 'history complete' && f.value.startsWith('as of log entry ')) && r.cannotProve.length === 1 },
  { name: 'history map: the last event cut off', events: [rel(1), acc(2, 1)], bundle: (b) => { b.events.pop(); }, want: ['failed', 'completeness'] },
  { name: 'history map: the last event cut off, in the stream form', form: 'stream', events: [rel(1), acc(2, 1)], bundle: (b) => { b.events.pop(); }, want: ['failed', 'completeness'] },
  { name: 'history map: the last event cut off and the proof removed', events: [rel(1), acc(2, 1)], bundle: (b) => { b.events.pop(); delete b.completeness; }, want: ['verified_with_limits'],
    expect: (r) => r.notChecked.some((n) => n.startsWith('completeness: the bundle carries no history-map proof')) },
  { name: 'no history map in the log', events: [rel(1)], history: { none: true }, want: ['verified_with_limits'],
    expect: (r) => r.notChecked.some((n) => n.startsWith('completeness: ')) && r.facts.length === 0 },
  { name: "history map: another item's leaf", events: [rel(1)], history: { leafOf: 'other' }, want: ['failed', 'completeness'] },
  { name: 'history map: a commitment claiming to cover itself', events: [rel(1)], history: { treeSize: 99 }, want: ['failed', 'completeness'] },
  { name: 'history map: a map proof hash of 31 bytes', events: [rel(1)], bundle: (b) => { b.completeness.map_proof[0] = Buffer.alloc(31).toString('base64'); }, want: ['failed', 'format'], exit: 2 },
];

const writeDir = process.argv[2] === '--write' ? process.argv[3] : null;
if (writeDir) {
  fs.mkdirSync(writeDir, { recursive: true });
  fs.writeFileSync(path.join(writeDir, 'log-key.txt'), logKey + '\n');
  fs.writeFileSync(path.join(writeDir, 'receipt-key.pem'), rcptPem);
  fs.writeFileSync(path.join(writeDir, 'ca.pem'), caPem);
  fs.writeFileSync(path.join(writeDir, 'ca-with-intermediate.pem'), caWithIntermediatePem);
  fs.writeFileSync(path.join(writeDir, 'file.bin'), CONTENT);
}
// the stream form of a bundle: header line, then one line per event
function streamLines(bundle) {
  const { events, ...rest } = bundle;
  return [JSON.stringify({ ...rest, format: 'custody-bundle-stream', event_count: events.length }), ...events.map((e) => JSON.stringify(e))];
}

let bad = 0;
cases.forEach((c, i) => {
  const bundle = build(c);
  const earlier = bundle.earlier[c.earlier];
  delete bundle.earlier;
  if (c.earlier === 'empty') bundle.consistency = { from_size: 0, proof: [] };
  if (c.bundle) c.bundle(bundle);
  const opts = {
    logKey: c.noKeys ? undefined : logKey,
    receiptKeyPem: c.noKeys ? undefined : rcptPem,
    caPem: c.noCA ? undefined : c.ca || caPem,
    file: CONTENT,
    earlierCheckpoint: earlier,
  };
  const file = path.join(tmp, `case-${String(i).padStart(2, '0')}.${c.form ? 'jsonl' : 'json'}`);
  let text = null;
  if (c.form === 'lazy') {
    // each line is written only when the verifier asks for the next one
    const { events, ...rest } = bundle;
    const lazy = function* () {
      yield { line: Buffer.from(JSON.stringify({ ...rest, format: 'custody-bundle-stream', event_count: events.length })), terminated: true };
      for (const e of events) yield { line: Buffer.from(JSON.stringify(e)), terminated: true };
    };
    var r = verifyStream(lazy(), opts);
  } else {
    text = c.form ? streamLines(bundle).map(c.line || ((l) => l)).join('\n') + '\n' : JSON.stringify(bundle, null, 1);
    text = text.replace(/"@@(.*?)@@"/g, '$1');
    if (c.bytes) text = c.bytes(text);
    fs.writeFileSync(file, text);
    r = c.form === 'file' ? verifyFile(file, opts) : verifyBundle(Buffer.from(text), opts);
  }
  if (writeDir && text !== null) {
    fs.writeFileSync(path.join(writeDir, path.basename(file)), text);
    // what to give a verifier for this case, and what this one reached
    if (earlier) fs.writeFileSync(path.join(writeDir, path.basename(file).replace(/\.jsonl?$/, '.earlier.txt')), earlier);
    const trust = { earlier: !!earlier, keys: !c.noKeys, ca: c.noCA ? null : c.ca ? 'ca-with-intermediate.pem' : 'ca.pem', want: c.want, exit: c.exit };
    fs.writeFileSync(path.join(writeDir, path.basename(file).replace(/\.jsonl?$/, '.trust.json')), JSON.stringify(trust));
  }
  // These bundles come from no witnessed or timestamped log: split view
  // and time are always left unchecked, and only those limit a "verified".
  const independent = (n) => n.startsWith('split view') || n.startsWith('time ');
  const outcome = r.outcome === 'verified_with_limits' && r.notChecked.every(independent) ? 'verified' : r.outcome;
  const got = [outcome, ...(r.step ? [r.step] : [])];
  let ok = JSON.stringify(got) === JSON.stringify(c.want);
  if (ok && !r.failures.length && r.notChecked.filter(independent).length !== 2) ok = false;
  if (ok && c.expect && !c.expect(r)) ok = false;
  let exitNote = '';
  if (ok && c.exit !== undefined) {
    // the CLI's exit code on the same input
    let code = 0;
    const args = [path.join(here, 'verify.mjs'), '--bundle', file, '--log-key', logKey, '--json'];
    try { execFileSync(process.execPath, args, { stdio: 'ignore' }); } catch (e) { code = e.status; }
    if (code !== c.exit) { ok = false; exitNote = ` (CLI exit ${code}, want ${c.exit})`; }
  }
  if (!ok) bad++;
  const note = c.ref ? ` [the reference CLI gives ${c.ref.join(' ')}: see README, doc gaps]` : '';
  const msg = r.failures.length ? ` — ${r.failures[0].message.slice(0, 160)}` : '';
  console.log(`${ok ? 'ok  ' : 'FAIL'} ${String(i).padStart(2, '0')} ${c.name}: ${got.join(' ')}${ok ? '' : ` (want ${c.want.join(' ')})`}${exitNote}${msg}${note}`);
});
fs.rmSync(tmp, { recursive: true, force: true });
console.log(`${cases.length - bad}/${cases.length} self-test cases as expected`);
process.exitCode = bad ? 1 : 0;
