// An independent verifier for Custody court bundles, written from
// docs/VERIFY.md, docs/BUNDLE.md, docs/LOG_FORMAT.md and docs/RECEIPTS.md
// alone (no Go source was read). Node.js standard library only.
//
// Library use:  import { verifyBundle, verifyFile } from './verify.mjs'
//   verifyBundle(bytes, opts) / verifyFile(path, opts), either form (the first
//   line decides: a stream form header names "custody-bundle-stream"; a file
//   in the stream form is read a line at a time), with
//   opts = { logKey, receiptKeyPem, caPem, file, earlierCheckpoint }
//   -> { outcome, step, failures: [{step, message}], notChecked: [...], unauthenticated: [...], exitCode,
//        cannotProve: [...], facts: [...], completeness }   (the last three: step 10, completeness.mjs)
//   verifyStream(lines, opts) takes any iterable of lines (fdLines, bufferLines).
//
// CLI:  node verify.mjs --bundle F [--log-key KEY|FILE] [--receipt-key PEM] [--ca PEM]
//                       [--file F] [--checkpoint OLD] [--json]

import crypto from 'node:crypto';
import { parsePolicy, checkWitnesses, verifyTimestamp } from './independent.mjs';
import { Completeness } from './completeness.mjs';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const STEPS = ['format', 'keys', 'checkpoint', 'event', 'chain', 'item', 'custody', 'file', 'consistency', 'completeness'];
const MAX_BUNDLE = 256 * 1024 * 1024;
const MAX_DEPTH = 100; // containers open at once (VERIFY.md step 1: no value nests deeper than 100 levels)
const MAX_LINE = 1024 * 1024; // stream form: bytes of one line, without its \n
const SERVICE = 'urn:custody:service:custodyd';

// ---------------------------------------------------------------------------
// Strict JSON: a small parser that refuses duplicate keys and keeps the text
// of every number (so "1" and "1.0" stay distinguishable).

export class JNum {
  constructor(raw) { this.raw = raw; }
  get isInt() { return /^-?(0|[1-9][0-9]*)$/.test(this.raw); }
  get value() { return Number(this.raw); }
}

class JSONError extends Error {}

export function parseJSON(s) {
  let i = 0;
  const n = s.length;
  const fail = (m) => { throw new JSONError(`${m} at offset ${i}`); };
  const ws = () => {
    while (i < n) {
      const c = s.charCodeAt(i);
      if (c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d) i++; else break;
    }
  };
  const NUM = /-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?/y;
  function str() {
    i++; // opening quote
    let out = '';
    let start = i;
    for (;;) {
      if (i >= n) fail('unterminated string');
      const c = s.charCodeAt(i);
      if (c === 0x22) { out += s.slice(start, i); i++; return out; }
      if (c < 0x20) fail('control character in string');
      if (c >= 0xd800 && c <= 0xdfff) {
        // raw surrogates only reach here as well-formed pairs from a valid UTF-8 source
        if (c <= 0xdbff && i + 1 < n) {
          const d = s.charCodeAt(i + 1);
          if (d >= 0xdc00 && d <= 0xdfff) { i += 2; continue; }
        }
        fail('lone surrogate in string');
      }
      if (c !== 0x5c) { i++; continue; }
      out += s.slice(start, i);
      i++;
      const e = s[i];
      switch (e) {
        case '"': out += '"'; i++; break;
        case '\\': out += '\\'; i++; break;
        case '/': out += '/'; i++; break;
        case 'b': out += '\b'; i++; break;
        case 'f': out += '\f'; i++; break;
        case 'n': out += '\n'; i++; break;
        case 'r': out += '\r'; i++; break;
        case 't': out += '\t'; i++; break;
        case 'u': {
          const hex4 = () => {
            const h = s.slice(i + 1, i + 5);
            if (!/^[0-9a-fA-F]{4}$/.test(h)) fail('bad \\u escape');
            i += 5;
            return parseInt(h, 16);
          };
          const u = hex4();
          if (u >= 0xd800 && u <= 0xdbff) {
            if (s[i] !== '\\' || s[i + 1] !== 'u') fail('lone surrogate escape');
            i++;
            const l = hex4();
            if (l < 0xdc00 || l > 0xdfff) fail('lone surrogate escape');
            out += String.fromCharCode(u, l);
          } else if (u >= 0xdc00 && u <= 0xdfff) {
            fail('lone surrogate escape');
          } else {
            out += String.fromCharCode(u);
          }
          break;
        }
        default: fail('bad escape');
      }
      start = i;
    }
  }
  // depth: the number of objects and arrays enclosing this value
  function value(depth) {
    ws();
    if (i >= n) fail('unexpected end');
    const c = s[i];
    if ((c === '{' || c === '[') && depth + 1 > MAX_DEPTH) fail(`nesting deeper than ${MAX_DEPTH} levels`);
    if (c === '{') {
      i++;
      const obj = Object.create(null);
      ws();
      if (s[i] === '}') { i++; return obj; }
      for (;;) {
        ws();
        if (s[i] !== '"') fail('expected key');
        const k = str();
        if (k in obj) fail(`duplicate key ${JSON.stringify(k)}`);
        ws();
        if (s[i] !== ':') fail('expected :');
        i++;
        obj[k] = value(depth + 1);
        ws();
        if (s[i] === ',') { i++; continue; }
        if (s[i] === '}') { i++; return obj; }
        fail('expected , or }');
      }
    }
    if (c === '[') {
      i++;
      const arr = [];
      ws();
      if (s[i] === ']') { i++; return arr; }
      for (;;) {
        arr.push(value(depth + 1));
        ws();
        if (s[i] === ',') { i++; continue; }
        if (s[i] === ']') { i++; return arr; }
        fail('expected , or ]');
      }
    }
    if (c === '"') return str();
    if (s.startsWith('true', i)) { i += 4; return true; }
    if (s.startsWith('false', i)) { i += 5; return false; }
    if (s.startsWith('null', i)) { i += 4; return null; }
    NUM.lastIndex = i;
    const m = NUM.exec(s);
    if (m) {
      if (!Number.isFinite(Number(m[0]))) fail(`number ${m[0].length > 40 ? m[0].slice(0, 40) + '…' : m[0]} is not a finite IEEE 754 double`);
      i += m[0].length;
      return new JNum(m[0]);
    }
    fail('unexpected character');
  }
  const v = value(0);
  ws();
  if (i !== n) fail('trailing data after the JSON value');
  return v;
}

const isObj = (v) => v !== null && typeof v === 'object' && !Array.isArray(v) && !(v instanceof JNum);
const has = (o, k) => isObj(o) && Object.prototype.hasOwnProperty.call(o, k);
const isInt = (v) => v instanceof JNum && v.isInt && Number.isSafeInteger(v.value);
const intVal = (v) => (isInt(v) ? v.value : undefined);
const isStr = (v) => typeof v === 'string';
// Bundle integers have no documented range: they are compared exactly.
const big = (v) => BigInt(v.raw);
// a (safe) integer from a canonical text equals a bundle integer
const eqI = (c, b) => isInt(c) && BigInt(c.raw) === big(b);

// ---------------------------------------------------------------------------
// Canonical JSON (RFC 8785, restricted or full).

const ESC = { 0x08: '\\b', 0x09: '\\t', 0x0a: '\\n', 0x0c: '\\f', 0x0d: '\\r', 0x22: '\\"', 0x5c: '\\\\' };
function encStr(s) {
  return '"' + s.replace(/["\\\u0000-\u001f]/g, (ch) => {
    const c = ch.charCodeAt(0);
    return ESC[c] || '\\u00' + c.toString(16).padStart(2, '0');
  }) + '"';
}

class CanonError extends Error {}

// full=false: objects, arrays, strings, integers |n| < 2^53, booleans.
// full=true:  RFC 8785 with null and every number as ECMAScript writes a double.
export function canon(v, full = false) {
  if (v === true) return 'true';
  if (v === false) return 'false';
  if (v === null) { if (full) return 'null'; throw new CanonError('null is not allowed'); }
  if (typeof v === 'string') return encStr(v);
  if (typeof v === 'number') v = new JNum(String(v));
  if (v instanceof JNum) {
    const x = v.value;
    if (full) {
      if (!Number.isFinite(x)) throw new CanonError(`number ${v.raw} is not a finite double`);
      return String(x);
    }
    if (!v.isInt || !(Math.abs(x) < 2 ** 53)) throw new CanonError(`number ${v.raw} is not an integer with |n| < 2^53`);
    return String(x);
  }
  if (Array.isArray(v)) return '[' + v.map((e) => canon(e, full)).join(',') + ']';
  const keys = Object.keys(v).sort(); // UTF-16 code unit order
  return '{' + keys.map((k) => encStr(k) + ':' + canon(v[k], full)).join(',') + '}';
}

// Decodes text and returns the value if re-encoding gives the same text.
function parseCanonical(text) {
  let v;
  try { v = parseJSON(text); } catch (e) { return { err: `not JSON: ${e.message}` }; }
  let c;
  try { c = canon(v); } catch (e) { return { err: `not canonical: ${e.message}` }; }
  if (c !== text) return { err: 'not canonical (re-encoding gives other bytes)' };
  return { value: v };
}

// ---------------------------------------------------------------------------
// Small encodings.

const B64RE = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
// strict standard base64: padding, no line breaks, unused bits zero
function b64strict(s) {
  if (typeof s !== 'string' || !B64RE.test(s)) return null;
  const b = Buffer.from(s, 'base64');
  return b.toString('base64') === s ? b : null;
}
// Go's base64.StdEncoding (padding required; unused bits not checked)
function b64std(s) {
  if (typeof s !== 'string' || !B64RE.test(s)) return null;
  return Buffer.from(s, 'base64');
}
const sha256 = (b) => crypto.createHash('sha256').update(b).digest();
const hex = (b) => Buffer.from(b).toString('hex');
const utf8 = (s) => Buffer.from(s, 'utf8');

// RFC 3339 -> nanoseconds since the epoch (BigInt), or null.
const RFC3339 = /^([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.([0-9]+))?(Z|[+-][0-9]{2}:[0-9]{2})$/;
function daysFromCivil(y, m, d) {
  y -= m <= 2 ? 1 : 0;
  const era = Math.floor(y / 400);
  const yoe = y - era * 400;
  const doy = Math.floor((153 * (m + (m > 2 ? -3 : 9)) + 2) / 5) + d - 1;
  const doe = yoe * 365 + Math.floor(yoe / 4) - Math.floor(yoe / 100) + doy;
  return era * 146097 + doe - 719468;
}
function civilFromDays(z) {
  z += 719468;
  const era = Math.floor(z / 146097);
  const doe = z - era * 146097;
  const yoe = Math.floor((doe - Math.floor(doe / 1460) + Math.floor(doe / 36524) - Math.floor(doe / 146096)) / 365);
  const doy = doe - (365 * yoe + Math.floor(yoe / 4) - Math.floor(yoe / 100));
  const mp = Math.floor((5 * doy + 2) / 153);
  const d = doy - Math.floor((153 * mp + 2) / 5) + 1;
  const m = mp + (mp < 10 ? 3 : -9);
  return [yoe + era * 400 + (m <= 2 ? 1 : 0), m, d];
}
export function parseTime(s) {
  if (typeof s !== 'string') return null;
  const m = RFC3339.exec(s);
  if (!m) return null;
  const [y, mo, d, h, mi, se] = m.slice(1, 7).map(Number);
  if (mo < 1 || mo > 12 || d < 1 || h > 23 || mi > 59 || se > 59) return null;
  const mdays = [31, (y % 4 === 0 && y % 100 !== 0) || y % 400 === 0 ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
  if (d > mdays[mo - 1]) return null;
  let off = 0;
  if (m[8] !== 'Z') {
    const oh = Number(m[8].slice(1, 3)), om = Number(m[8].slice(4, 6));
    if (oh > 23 || om > 59) return null;
    off = (oh * 60 + om) * 60 * (m[8][0] === '-' ? -1 : 1);
  }
  const secs = daysFromCivil(y, mo, d) * 86400 + h * 3600 + mi * 60 + se - off;
  const frac = m[7] ? BigInt(m[7].slice(0, 9).padEnd(9, '0')) : 0n; // digits past ns are truncated
  return BigInt(secs) * 1000000000n + frac;
}
// Go's time.RFC3339Nano in UTC.
export function formatTime(ns) {
  let secs = ns / 1000000000n, frac = ns % 1000000000n;
  if (frac < 0n) { frac += 1000000000n; secs -= 1n; }
  const s = Number(secs);
  const days = Math.floor(s / 86400), rem = s - days * 86400;
  const [y, m, d] = civilFromDays(days);
  const p = (x, w = 2) => String(x).padStart(w, '0');
  let out = `${p(y, 4)}-${p(m)}-${p(d)}T${p(Math.floor(rem / 3600))}:${p(Math.floor(rem / 60) % 60)}:${p(rem % 60)}`;
  if (frac !== 0n) out += '.' + String(frac).padStart(9, '0').replace(/0+$/, '');
  return out + 'Z';
}

// ---------------------------------------------------------------------------
// RFC 9162 Merkle proofs.

const leafHash = (entry) => sha256(Buffer.concat([Buffer.from([0]), entry]));
const nodeHash = (l, r) => sha256(Buffer.concat([Buffer.from([1]), l, r]));

function verifyInclusion(index, size, leaf, proof, root) {
  let fn = BigInt(index), sn = BigInt(size) - 1n;
  if (fn > sn) return false;
  let r = leaf;
  for (const p of proof) {
    if (sn === 0n) return false;
    if ((fn & 1n) === 1n || fn === sn) {
      r = nodeHash(p, r);
      if ((fn & 1n) === 0n) while ((fn & 1n) === 0n && fn !== 0n) { fn >>= 1n; sn >>= 1n; }
    } else {
      r = nodeHash(r, p);
    }
    fn >>= 1n; sn >>= 1n;
  }
  return sn === 0n && r.equals(root);
}

function verifyConsistency(first, second, firstRoot, secondRoot, proof) {
  first = BigInt(first); second = BigInt(second);
  if (first > second) return false;
  if (first === second) return proof.length === 0 && firstRoot.equals(secondRoot);
  if (first === 0n) return proof.length === 0; // the empty tree is a prefix of every tree
  if (proof.length === 0) return false;
  let path = proof;
  if ((first & (first - 1n)) === 0n) path = [firstRoot, ...proof];
  let fn = first - 1n, sn = second - 1n;
  while ((fn & 1n) === 1n) { fn >>= 1n; sn >>= 1n; }
  let fr = path[0], sr = path[0];
  for (const c of path.slice(1)) {
    if (sn === 0n) return false;
    if ((fn & 1n) === 1n || fn === sn) {
      fr = nodeHash(c, fr); sr = nodeHash(c, sr);
      if ((fn & 1n) === 0n) while ((fn & 1n) === 0n && fn !== 0n) { fn >>= 1n; sn >>= 1n; }
    } else {
      sr = nodeHash(sr, c);
    }
    fn >>= 1n; sn >>= 1n;
  }
  return sn === 0n && fr.equals(firstRoot) && sr.equals(secondRoot);
}

// ---------------------------------------------------------------------------
// C2SP signed notes and checkpoints.

const SPACE = /[\t\n\v\f\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]/;
const validName = (name) => name !== '' && !SPACE.test(name) && !name.includes('+');
const chop = (s, sep) => { const i = s.indexOf(sep); return i < 0 ? [s, ''] : [s.slice(0, i), s.slice(i + sep.length)]; };

// "<name>+<hash>+<base64(0x01 || key)>" -> {name, hash, key} or throws.
export function parseVerifierKey(vkey) {
  const [name, rest] = chop(vkey, '+');
  const [hash16, key64] = chop(rest, '+');
  const key = b64std(key64);
  if (!/^[0-9a-fA-F]{8}$/.test(hash16) || !key || key.length === 0 || !validName(name)) throw new Error('malformed verifier key');
  const hash = parseInt(hash16, 16) >>> 0;
  const want = sha256(Buffer.concat([utf8(name + '\n'), key])).readUInt32BE(0);
  if (hash !== want) throw new Error('verifier key hash does not match its name and key');
  if (key[0] !== 1 || key.length !== 33) throw new Error('verifier key is not Ed25519');
  const pub = crypto.createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: key.subarray(1).toString('base64url') }, format: 'jwk' });
  return { name, hash, pub };
}

// Opens a signed note as golang.org/x/mod/sumdb/note.Open does; returns the text.
function openNote(msg, vk) {
  for (let i = 0; i < msg.length; i++) {
    const c = msg.charCodeAt(i);
    if (c < 0x20 && c !== 0x0a) throw new Error('malformed note: control character');
  }
  const split = msg.lastIndexOf('\n\n');
  if (split < 0) throw new Error('malformed note: no signature block');
  const text = msg.slice(0, split + 1);
  let sigs = msg.slice(split + 2);
  if (sigs.length === 0 || !sigs.endsWith('\n')) throw new Error('malformed note: signature block');
  let verified = 0, count = 0;
  const seen = new Set();
  while (sigs.length > 0) {
    const nl = sigs.indexOf('\n');
    let line = sigs.slice(0, nl);
    sigs = sigs.slice(nl + 1);
    if (!line.startsWith('\u2014 ')) throw new Error('malformed note: signature line');
    line = line.slice(2);
    const [name, b64] = chop(line, ' ');
    const sig = b64std(b64);
    if (!sig || !validName(name) || b64 === '' || sig.length < 5) throw new Error('malformed note: signature');
    if (++count > 100) throw new Error('malformed note: too many signatures');
    const hash = sig.readUInt32BE(0);
    if (name !== vk.name || hash !== vk.hash) continue; // another signer's: ignored
    const key = `${name}+${hash}`;
    if (seen.has(key)) continue;
    seen.add(key);
    let ok = false;
    try { ok = sig.length === 68 && crypto.verify(null, utf8(text), vk.pub, sig.subarray(4)); } catch { ok = false; }
    if (!ok) throw new Error('invalid signature by the log key');
    verified++;
  }
  if (verified === 0) throw new Error('no signature by the log key');
  return text;
}

function parseCheckpoint(note, vk, origin) {
  const text = openNote(note, vk);
  const lines = text.slice(0, -1).split('\n');
  if (lines.length < 3) throw new Error('checkpoint has fewer than three lines');
  if (lines[0] !== origin) throw new Error(`checkpoint origin ${JSON.stringify(lines[0])} is not log.origin ${JSON.stringify(origin)}`);
  if (!/^(0|[1-9][0-9]*)$/.test(lines[1])) throw new Error('checkpoint size is not a decimal');
  const root = b64strict(lines[2]);
  if (!root || root.length !== 32) throw new Error('checkpoint root is not base64 of 32 bytes');
  return { size: BigInt(lines[1]), root, text };
}

// ---------------------------------------------------------------------------
// Keys.

function derToPem(der) {
  const b = der.toString('base64').match(/.{1,64}/g).join('\n');
  return `-----BEGIN PUBLIC KEY-----\n${b}\n-----END PUBLIC KEY-----\n`;
}
// VERIFY.md step 2: "a PEM block of type PUBLIC KEY holding a DER
// SubjectPublicKeyInfo (text around the block is ignored)". The first PEM
// block is taken (RFC 7468 framing; whitespace in the body ignored, standard
// base64 with padding), and must be of type PUBLIC KEY.
function pemPublicKeyDer(pem) {
  const m = /-----BEGIN ([^\n-]*)-----\r?\n([\s\S]*?)-----END \1-----/.exec(pem);
  if (!m) throw new Error('no PEM block');
  if (m[1] !== 'PUBLIC KEY') throw new Error(`PEM block of type ${JSON.stringify(m[1])}, not PUBLIC KEY`);
  const body = m[2].replace(/[ \t\r\n]/g, '');
  const der = b64std(body);
  if (!der || der.length === 0) throw new Error('PEM body is not base64');
  const key = crypto.createPublicKey({ key: der, format: 'der', type: 'spki' });
  if (key.asymmetricKeyType !== 'ec' && key.asymmetricKeyType !== 'ed25519') throw new Error(`a ${key.asymmetricKeyType} key, not ECDSA or Ed25519`);
  return der;
}

// ECDSA (DER over SHA-256), Ed25519, RSA PKCS #1 v1.5 with SHA-256.
function verifySig(key, data, sig, allowRSA) {
  try {
    switch (key.asymmetricKeyType) {
      case 'ec': return crypto.verify('sha256', data, { key, dsaEncoding: 'der' }, sig);
      case 'ed25519': return crypto.verify(null, data, key, sig);
      case 'rsa': return allowRSA && crypto.verify('sha256', data, { key, padding: crypto.constants.RSA_PKCS1_PADDING }, sig);
      default: return false;
    }
  } catch { return false; }
}

// ---------------------------------------------------------------------------
// X.509 (node:crypto X509Certificate).

const MONTHS = { Jan: 0, Feb: 1, Mar: 2, Apr: 3, May: 4, Jun: 5, Jul: 6, Aug: 7, Sep: 8, Oct: 9, Nov: 10, Dec: 11 };
// "Nov 28 04:42:46 2026 GMT" -> ns (BigInt)
function certTime(s) {
  const m = /^([A-Z][a-z]{2}) +([0-9]{1,2}) ([0-9]{2}):([0-9]{2}):([0-9]{2}) ([0-9]{4}) GMT$/.exec(s);
  if (!m || !(m[1] in MONTHS)) return null;
  const secs = daysFromCivil(Number(m[6]), MONTHS[m[1]] + 1, Number(m[2])) * 86400 + Number(m[3]) * 3600 + Number(m[4]) * 60 + Number(m[5]);
  return BigInt(secs) * 1000000000n;
}
function validAt(cert, t) {
  const nb = certTime(cert.validFrom), na = certTime(cert.validTo);
  return nb !== null && na !== null && t >= nb && t <= na;
}
const CLIENT_AUTH = '1.3.6.1.5.5.7.3.2', ANY_EKU = '2.5.29.37.0';
const ekuAllowsClientAuth = (cert) => {
  const eku = cert.keyUsage; // Node 20: the extended key usage OIDs, undefined when absent
  return !eku || eku.length === 0 || eku.includes(CLIENT_AUTH) || eku.includes(ANY_EKU);
};
function uriSANs(cert) {
  const san = cert.subjectAltName;
  if (!san) return [];
  const out = [];
  // entries are "TYPE:value" joined by ", "; newer Node versions JSON-quote values that are ambiguous
  const re = /(?:^|, )URI:("(?:[^"\\]|\\.)*"|[^,]*)/g;
  let m;
  while ((m = re.exec(san))) {
    let v = m[1];
    if (v.startsWith('"')) { try { v = JSON.parse(v); } catch { continue; } }
    out.push(v);
  }
  return out;
}
function loadCA(pem) {
  const blocks = String(pem).match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g) || [];
  const certs = blocks.map((b) => new crypto.X509Certificate(b));
  if (certs.length === 0) throw new Error('no certificate in the CA file');
  return certs;
}
// The leaf must be issued and signed directly by one of the CA certificates
// (they are roots), both valid at t, the root a CA, and every certificate's
// extended key usage (when it has one) allowing client authentication.
function chainsTo(leaf, roots, t) {
  if (!validAt(leaf, t)) return `certificate not valid at ${formatTime(t)}`;
  if (!ekuAllowsClientAuth(leaf)) return 'certificate is not for client authentication';
  for (const root of roots) {
    if (leaf.raw.equals(root.raw)) return null;
    let issued = false;
    try { issued = leaf.checkIssued(root) && leaf.verify(root.publicKey); } catch { issued = false; }
    if (!issued) continue;
    if (!root.ca) continue;
    if (!validAt(root, t)) continue;
    if (!ekuAllowsClientAuth(root)) continue;
    return null;
  }
  return "certificate does not chain to the operator's CA for client authentication";
}

// ---------------------------------------------------------------------------
// Step 1: schema.

const MAX_SAFE = 2n ** 53n - 1n;
const T = {
  str: (v) => typeof v === 'string',
  // an integer in 0…2^53−1 ("-0" is not written as a non-negative integer)
  uint: (v) => v instanceof JNum && v.isInt && !v.raw.startsWith('-') && BigInt(v.raw) <= MAX_SAFE,
  int: (v) => v instanceof JNum && v.isInt,
  // an integer in 0…2^64−1, as the reference reads step 10's indexes (completeness.mjs)
  uint64: (v) => v instanceof JNum && v.isInt && !v.raw.startsWith('-') && BigInt(v.raw) < 2n ** 64n,
  bool: (v) => typeof v === 'boolean',
  obj: (v) => isObj(v),
  metadata: (v) => isObj(v),
  b64: (v) => b64strict(v) !== null,
  hashes: (v) => Array.isArray(v) && v.every((e) => { const b = b64strict(e); return b !== null && b.length === 32; }),
  objarr: (v) => Array.isArray(v) && v.every(isObj),
};
const TYPE_NAME = { str: 'a string', uint: 'an integer in 0…2^53−1', uint64: 'an integer in 0…2^64−1', int: 'an integer', bool: 'a boolean', obj: 'an object', metadata: 'an object', b64: 'a strict base64 string', hashes: 'an array of strict base64 strings of 32 bytes each', objarr: 'an array of objects' };
const TOP = { format: ['str', 1], created_at: ['str', 1], v: ['uint', 1], evidence: ['obj', 1, 'evidence'], log: ['obj', 1, 'log'], keys: ['obj', 1, 'keys'], consistency: ['obj', 0, 'consistency'], completeness: ['obj', 0, 'completeness'] };
const SCHEMA = {
  bundle: { ...TOP, events: ['objarr', 1, 'event'] },
  header: { ...TOP, event_count: ['uint', 1] }, // the stream form's first line
  evidence: { evidence_id: ['str', 1], sha256: ['str', 1], media_type: ['str', 1], kind: ['str', 1], case_id: ['str', 1], size: ['int', 1], metadata: ['metadata', 0], withheld: ['bool', 0] },
  log: { origin: ['str', 1], checkpoint: ['str', 1], tree_size: ['uint', 1], timestamps: ['objarr', 0, 'timestamp'] },
  timestamp: { authority: ['str', 1], response: ['b64', 1] },
  event: { seq: ['uint', 1], log_index: ['uint', 1], entry: ['str', 1], record: ['str', 0], inclusion_proof: ['hashes', 1], receipt: ['obj', 1, 'receipt'] },
  receipt: { payload: ['str', 1], key_id: ['str', 1], signature: ['b64', 1] },
  keys: { log_verifier_key: ['str', 1], receipt_public_key_pem: ['str', 1] },
  consistency: { from_size: ['uint', 1], proof: ['hashes', 1] },
  // step 10 (completeness.mjs, added by the Custody team)
  completeness: { entry: ['str', 1], log_index: ['uint64', 1], inclusion_proof: ['hashes', 1], map_leaf: ['str', 1], map_index: ['uint64', 1], map_proof: ['hashes', 1] },
};
function checkSchema(obj, kind, where, fail) {
  const spec = SCHEMA[kind];
  for (const k of Object.keys(obj)) if (!(k in spec)) fail(`${where}: unknown key ${JSON.stringify(k)}`);
  for (const [k, [type, required, sub]] of Object.entries(spec)) {
    if (!has(obj, k)) { if (required) fail(`${where}: missing ${k}`); continue; }
    const v = obj[k];
    if (v === null) { fail(`${where}.${k} is null`); continue; }
    if (!T[type](v)) { fail(`${where}.${k} is not ${TYPE_NAME[type]}`); continue; }
    if (sub && type === 'objarr') v.forEach((e, i) => checkSchema(e, sub, `${where}.${k}[${i}]`, fail));
    else if (sub) checkSchema(v, sub, `${where}.${k}`, fail);
  }
}

// LOG_FORMAT.md, "Event record": a record's top-level keys are exactly these
// (another key makes it non-canonical for this format version).
const RECORD_KEYS = {
  v: isInt, evidence_id: isStr, seq: isInt, type: isStr, recorded_at: isStr, performer: isStr, counterparty: isStr,
  purpose: isStr, salt: isStr, sha256: isStr, prev_index: isInt, prev_leaf_hash: isStr, details: isObj,
};

// Step 1 of a JSON text that must be an object: UTF-8, strict JSON.
function parseObject(buf, what) {
  let text;
  try { text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(buf); } catch { return { err: `${what} is not UTF-8` }; }
  let v;
  try { v = parseJSON(text); } catch (e) { return { err: `${what} is not strict JSON: ${e.message}` }; }
  if (!isObj(v)) return { err: `${what} is not a JSON object` };
  return { value: v };
}

// ---------------------------------------------------------------------------
// The verifier. One run holds only the header and what steps 5 and 7 carry
// from one event to the next, so the stream form is checked in memory that
// does not grow with the history; the document form is fed the same way.

class Run {
  constructor(opts) {
    this.opts = opts;
    this.failures = [];
    this.notChecked = [];
    this.untrusted = [];
    this.cannotProve = []; // step 10's residual (completeness.mjs)
    this.facts = []; // step 10's "history complete" (completeness.mjs)
  }

  fail(step, message) { this.failures.push({ step, message }); }

  result() {
    const { failures, notChecked, untrusted } = this;
    const order = (f) => STEPS.indexOf(f.step);
    failures.sort((a, b) => order(a) - order(b)); // stable: keeps order within a step
    let outcome;
    if (failures.length) outcome = 'failed';
    else if (untrusted.length) outcome = 'untrusted_keys';
    else if (notChecked.length) outcome = 'verified_with_limits';
    else outcome = 'verified';
    // exit 2 when the failure is in step 1 (the input is not a well-formed bundle)
    const exitCode = outcome === 'verified' || outcome === 'verified_with_limits' ? 0 : failures.length && failures[0].step === 'format' ? 2 : 1;
    return { outcome, step: failures.length ? failures[0].step : undefined, failures, notChecked, untrustedKeys: untrusted, unauthenticated: failures.length ? [] : this.unauthenticated || ['created_at'], cannotProve: this.cannotProve, facts: failures.length ? [] : this.facts, completeness: this.completenessOut || null, exitCode };
  }

  // Step 1's value checks shared by the document and the header line.
  formatTop(h, wantFormat) {
    const f = (m) => this.fail('format', m);
    if (h.format !== wantFormat) f(`format is not ${JSON.stringify(wantFormat)}`);
    if (big(h.v) !== 1n) f('v is not 1');
    if (parseTime(h.created_at) === null) f('created_at is not an RFC 3339 date-time');
  }

  // Steps 2 and 3, and what the later steps need from the header.
  begin(h) {
    const opts = this.opts;
    this.h = h;
    this.ev = h.evidence;
    this.withheld = this.ev.withheld === true;

    // ---- Step 2: keys
    let logKey = null, logKeyErr = null, receiptDer = null;
    this.receiptKeyErr = null;
    if (opts.logKey != null) {
      const k = String(opts.logKey).trim();
      try { logKey = parseVerifierKey(k); } catch (e) { throw new Error(`the supplied log key: ${e.message}`); }
      if (h.keys.log_verifier_key !== k) this.fail('keys', 'keys.log_verifier_key is not the log key you supplied');
    } else {
      this.untrusted.push('log verifier key taken from the bundle');
      try { logKey = parseVerifierKey(h.keys.log_verifier_key); } catch (e) { logKeyErr = `keys.log_verifier_key does not parse: ${e.message}`; }
    }
    if (opts.receiptKeyPem != null) {
      try { receiptDer = pemPublicKeyDer(String(opts.receiptKeyPem)); } catch (e) { throw new Error(`the supplied receipt key: ${e.message}`); }
      if (h.keys.receipt_public_key_pem !== derToPem(receiptDer)) this.fail('keys', 'keys.receipt_public_key_pem is not the receipt key you supplied');
    } else {
      this.untrusted.push('receipt key taken from the bundle');
      try { receiptDer = pemPublicKeyDer(h.keys.receipt_public_key_pem); } catch (e) { this.receiptKeyErr = `keys.receipt_public_key_pem does not parse (${e.message}): the receipt cannot be verified`; }
    }
    this.receiptKey = receiptDer ? crypto.createPublicKey({ key: receiptDer, format: 'der', type: 'spki' }) : null;
    this.receiptKeyId = receiptDer ? hex(sha256(receiptDer)) : null;
    this.logKey = logKey;

    // ---- Step 3: checkpoint
    this.cp = null;
    if (logKey) {
      try {
        const cp = parseCheckpoint(h.log.checkpoint, logKey, h.log.origin);
        if (cp.size !== big(h.log.tree_size)) this.fail('checkpoint', `checkpoint size ${cp.size} is not log.tree_size ${h.log.tree_size.raw}`);
        else this.cp = cp;
      } catch (e) { this.fail('checkpoint', `log.checkpoint: ${e.message}`); }
    } else {
      this.fail('checkpoint', `${logKeyErr}: the checkpoint cannot be verified`);
    }
    // ---- Step 3: timestamps (only over a verified checkpoint) and witnesses
    const stamps = has(h.log, 'timestamps') ? h.log.timestamps : [];
    this.unauthenticated = stamps.length ? ['created_at', 'log.timestamps[].authority'] : ['created_at'];
    if (this.cp) {
      const chains = opts.tsaChainPem != null ? [].concat(opts.tsaChainPem) : [];
      if (chains.length === 0) this.notChecked.push(stamps.length ? 'time (timestamps not checked: no authority chain given)' : 'time (no timestamp, no authority given)');
      else if (stamps.length === 0) this.notChecked.push('time (the bundle carries no timestamp)');
      else stamps.forEach((t, i) => {
        const errs = [];
        for (const c of chains) {
          try { verifyTimestamp(b64strict(t.response), utf8(this.cp.text), c); return; } catch (e) { errs.push(e.message); }
        }
        this.fail('checkpoint', `log.timestamps[${i}] does not verify against any authority given: ${errs.join('; ')}`);
      });
    }
    if (opts.policy != null) {
      const pol = parsePolicy(opts.policy);
      if (pol.quorum === null) this.notChecked.push('split view (the witness policy requires no witness)');
      else {
        const w = checkWitnesses(pol, String(h.log.checkpoint));
        if (w.invalid.length) this.fail('checkpoint', `a cosignature of ${w.invalid.join(', ')} does not verify`);
        else if (!w.satisfied) this.fail('checkpoint', `the checkpoint lacks the witness quorum (cosigned by ${w.signed.map((x) => x.name).join(', ') || 'none'})`);
      }
    } else this.notChecked.push('split view (no witness policy given)');

    // ---- what step 7 needs
    this.roots = null;
    if (opts.caPem != null) this.roots = loadCA(opts.caPem);
    else if (!this.withheld) this.notChecked.push("signers' certificates not chained to the operator's CA (no CA given)");
    if (this.withheld) this.notChecked.push('who held the item and the hand-off signatures (records withheld)');
    // custody state (step 7), null once step 7 cannot go on (records withheld or broken)
    this.custody = this.withheld ? null : { custodian: null, pending: null };
    // what step 5 carries: the previous event's log index and leaf hash
    this.prev = null;
    this.count = 0;
    // step 10 (completeness.mjs): the commitment and the item's map leaf
    this.completeness = new Completeness(h.completeness, h.evidence.evidence_id, big(h.log.tree_size), this.cp ? this.cp.root : null, { parseJSON, canon, JNum });
  }

  // Steps 4–7 for events[i] (already through step 1).
  event(e, i) {
    const ev = this.ev, log = this.h.log;
    const f = (m) => this.fail('event', `events[${i}]: ${m}`);
    const x = { entry: null, record: null, receipt: null };
    x.leaf = leafHash(utf8(e.entry));
    x.leafHex = hex(x.leaf);
    const seq = e.seq.value, logIndex = e.log_index.value; // both in 0…2^53−1 (step 1)

    // ---- Step 4.1: entry
    const pe = parseCanonical(e.entry);
    if (pe.err) f(`entry ${pe.err}`);
    else if (!isObj(pe.value)) f('entry is not an object');
    else {
      const en = pe.value;
      x.entry = en;
      if (intVal(en.v) !== 1) f('entry v is not 1');
      if (en.evidence_id !== ev.evidence_id) f('entry evidence_id is not evidence.evidence_id');
      if (!eqI(en.seq, e.seq)) f('entry seq is not events[i].seq');
      for (const k of ['type', 'time', 'record_sha256']) if (!isStr(en[k])) f(`entry has no string ${k}`);
    }
    // ---- Step 4.2: record
    if (this.withheld) {
      if (has(e, 'record')) f('record present although evidence.withheld is true');
    } else if (!has(e, 'record')) {
      f('record missing (evidence.withheld is not true)');
    } else {
      const pr = parseCanonical(e.record);
      if (pr.err) f(`record ${pr.err}`);
      else if (!isObj(pr.value)) f('record is not an object');
      else {
        const r = pr.value;
        let ok = true;
        for (const k of Object.keys(r)) {
          if (!(k in RECORD_KEYS)) { f(`record has the key ${JSON.stringify(k)}, not one of LOG_FORMAT.md's (not canonical for format v1)`); ok = false; } else if (!RECORD_KEYS[k](r[k])) { f(`record ${k} has the wrong type`); ok = false; }
        }
        if (intVal(r.v) !== 1) { f('record v is not 1'); ok = false; }
        if (x.entry) {
          if (hex(sha256(utf8(e.record))) !== x.entry.record_sha256) f("SHA-256 of record is not the entry's record_sha256");
          if (!isStr(r.evidence_id) || r.evidence_id !== x.entry.evidence_id) f("record evidence_id is not the entry's");
          if (!isStr(r.type) || r.type !== x.entry.type) f("record type is not the entry's");
          if (!isInt(r.seq) || !isInt(x.entry.seq) || r.seq.value !== x.entry.seq.value) f("record seq is not the entry's");
          if (!isStr(r.recorded_at) || r.recorded_at !== x.entry.time) f("record recorded_at is not the entry's time");
        }
        if (ok) x.record = r;
      }
    }
    // ---- Step 4.3: inclusion
    if (big(e.log_index) >= big(log.tree_size)) f('log_index is not below log.tree_size');
    else if (this.cp) {
      const proof = e.inclusion_proof.map(b64strict);
      if (!verifyInclusion(big(e.log_index), big(log.tree_size), x.leaf, proof, this.cp.root)) f('inclusion proof does not lead to the checkpoint root');
    } else f('inclusion not checked: the checkpoint did not verify');
    // ---- Step 4.4: receipt
    const rc = e.receipt;
    if (this.receiptKeyErr) f(this.receiptKeyErr);
    else {
      if (rc.key_id !== this.receiptKeyId) f('receipt key_id is not the receipt key id');
      if (!verifySig(this.receiptKey, utf8(rc.payload), b64strict(rc.signature), false)) f('receipt signature does not verify');
    }
    const pp = parseCanonical(rc.payload);
    if (pp.err) f(`receipt payload ${pp.err}`);
    else if (!isObj(pp.value)) f('receipt payload is not an object');
    else {
      const p = pp.value;
      x.receipt = p;
      if (intVal(p.v) !== 1) f('receipt v is not 1');
      if (p.evidence_id !== ev.evidence_id) f("receipt evidence_id is not the bundle's");
      if (p.log_origin !== log.origin) f('receipt log_origin is not log.origin');
      if (!eqI(p.log_index, e.log_index)) f("receipt log_index is not the event's");
      if (p.leaf_hash !== x.leafHex) f("receipt leaf_hash is not the entry's leaf hash");
      if (!x.entry || p.time !== x.entry.time) f("receipt time is not the entry's time");
      if (seq === 0) { // "the event whose seq is 0"
        if (p.type !== 'ingest') f('receipt type is not "ingest"');
      } else {
        if (p.type !== 'event') f('receipt type is not "event"');
        if (!x.entry || p.event_type !== x.entry.type) f("receipt event_type is not the entry's type");
        if (!eqI(p.seq, e.seq)) f("receipt seq is not the event's");
      }
    }

    // ---- Step 5: chain (carrying only the previous event's index and leaf hash)
    {
      const g = (m) => this.fail('chain', m);
      if (seq !== i) g(`position ${i} holds seq ${e.seq.raw}`);
      // With every prev_index below its own log_index (checked below) the
      // indexes increase, which is how "no log_index appears twice" is
      // checked without remembering them all.
      if (this.prev && logIndex <= this.prev.logIndex) g(`events[${i}] log_index ${logIndex} does not follow the previous event's ${this.prev.logIndex} (it may appear twice)`);
      const en = x.entry;
      if (en && i === 0) {
        if (en.type !== 'ingest') g('event 0 is not an ingest');
        if (has(en, 'prev_index') || has(en, 'prev_leaf_hash')) g('the ingest entry carries prev_index or prev_leaf_hash');
      } else if (en) {
        if (en.type === 'ingest') g(`events[${i}] is a second ingest`);
        if (has(en, 'sha256')) g(`events[${i}] entry carries sha256`);
        if (!isInt(en.prev_index) || en.prev_index.value !== this.prev.logIndex) g(`events[${i}] prev_index is not the previous event's log_index`);
        if (en.prev_leaf_hash !== this.prev.leafHex) g(`events[${i}] prev_leaf_hash is not the previous event's leaf hash`);
        if (isInt(en.prev_index) && !(en.prev_index.value < logIndex)) g(`events[${i}] prev_index is not below its log_index`);
      }
    }

    if (i === 0) this.item(x);
    this.custodyStep(x, i);
    this.completeness.event(big(e.seq), big(e.log_index), x.leaf);
    this.prev = { logIndex, leafHex: x.leafHex };
    this.count = i + 1;
  }

  // ---- Step 6: the item's facts (event 0 = the ingest)
  item(x) {
    const ev = this.ev, withheld = this.withheld;
    const f = (m) => this.fail('item', m);
    const R = x.receipt, rec = x.record;
    const det = rec && isObj(rec.details) ? rec.details : null;
    if (!x.entry || x.entry.sha256 !== ev.sha256) f("evidence.sha256 is not the ingest entry's sha256");
    if (!R) f('no ingest receipt to bind the item to');
    else {
      if (R.sha256 !== ev.sha256) f("evidence.sha256 is not the ingest receipt's");
      if (!eqI(R.size, ev.size)) f("evidence.size is not the ingest receipt's");
      if (R.media_type !== ev.media_type) f("evidence.media_type is not the ingest receipt's");
      if (R.case_id !== ev.case_id) f("evidence.case_id is not the ingest receipt's");
      if (R.kind !== ev.kind) f("evidence.kind is not the ingest receipt's");
      if (typeof R.special !== 'boolean') f("the ingest receipt's special is not a boolean");
      else if (withheld && R.special !== true) f('evidence.withheld is true but the item is not special-category');
    }
    if (withheld) {
      if (has(ev, 'metadata')) f('evidence.metadata present although withheld');
      return;
    }
    if (!has(ev, 'metadata')) f('evidence.metadata missing');
    if (!rec) return; // step 4 failed
    if (rec.sha256 !== ev.sha256) f("evidence.sha256 is not the ingest record's");
    if (!det) { f('the ingest record has no details object'); return; }
    if (has(ev, 'metadata')) {
      let mh = null;
      try { mh = hex(sha256(utf8(canon(ev.metadata, true)))); } catch (e) { f(`evidence.metadata: ${e.message}`); }
      if (mh !== null && mh !== det.metadata_sha256) f("SHA-256 of evidence.metadata is not the ingest record's details.metadata_sha256");
    }
    if (!eqI(det.size, ev.size)) f("evidence.size is not the record's details.size");
    if (det.media_type !== ev.media_type) f("evidence.media_type is not the record's details.media_type");
    if (det.case_id !== ev.case_id) f("evidence.case_id is not the record's details.case_id");
    if (det.kind !== ev.kind) f("evidence.kind is not the record's details.kind");
    if (R) {
      if (R.special !== det.special) f("the ingest receipt's special is not the record's details.special");
      let same = false;
      try { same = isObj(R.storage) && isObj(det.storage) && canon(R.storage) === canon(det.storage); } catch { same = false; }
      if (!same) f("the ingest receipt's storage is not the record's details.storage");
    }
  }

  // A signed statement (VERIFY.md step 7): byte equality with the rebuilt
  // statement, the signer's certificate, signature and (given the CA) chain.
  statement(where, s, performer, rebuild) {
    const f = (m) => this.fail('custody', `${where}: ${m}`);
    if (!isObj(s)) { f('no signed statement'); return; }
    if (!isStr(s.statement) || !isStr(s.signature) || !isStr(s.certificate)) { f('statement, signature and certificate must be strings'); return; }
    const ps = parseCanonical(s.statement);
    if (ps.err) { f(`statement ${ps.err}`); return; }
    const st = ps.value;
    if (!isObj(st)) { f('statement is not an object'); return; }
    const signedAt = parseTime(st.signed_at);
    if (signedAt === null) f('statement signed_at is not an RFC 3339 time');
    let want = null;
    try { want = canon(rebuild(st, signedAt === null ? null : formatTime(signedAt))); } catch (e) { f(e.message); }
    if (want !== null && want !== s.statement) f('statement is not, byte for byte, the one rebuilt from the record and the bundle');
    const der = b64strict(s.certificate), sig = b64strict(s.signature);
    if (!der || !sig) { f('certificate or signature is not strict base64'); return; }
    let cert;
    try { cert = new crypto.X509Certificate(der); } catch { f('certificate does not parse as X.509'); return; }
    if (!isStr(performer) || !uriSANs(cert).includes(performer)) f(`certificate does not carry the performer ${JSON.stringify(performer)} as a URI SAN`);
    if (!verifySig(cert.publicKey, utf8(s.statement), sig, true)) f("signature does not verify with the certificate's key");
    if (this.roots && signedAt !== null) {
      const why = chainsTo(cert, this.roots, signedAt);
      if (why) f(why);
    }
  }

  // ---- Step 7: one record through the custody state machine
  custodyStep(x, i) {
    const C = this.custody;
    if (!C) return;
    const r = x.record;
    if (!r) { this.custody = null; return; } // step 4 failed: step 7 cannot go on
    const ev = this.ev;
    const where = `events[${i}] (${r.type})`;
    const g = (m) => this.fail('custody', `${where}: ${m}`);
    const d = isObj(r.details) ? r.details : Object.create(null);
    const need = (v, what) => { if (!isStr(v)) throw new Error(`${what} is not a string`); return v; };
    const at = parseTime(r.recorded_at);
    if (at === null) { g('recorded_at is not an RFC 3339 time'); this.custody = null; return; }
    if (C.pending && C.pending.expiresAt !== null && at >= C.pending.expiresAt && r.type !== 'release_expired') g('the pending release had lapsed: the record must be release_expired');
    if (r.type === 'ingest') {
      if (i !== 0) { g('ingest only as event 0'); return; }
      if (!isStr(r.performer)) { g('no performer'); this.custody = null; return; }
      C.custodian = r.performer;
      if (has(d, 'collector_signature')) this.capture(d, r);
      return;
    }
    if (C.custodian === null) { g('no ingest before this event'); this.custody = null; return; }
    switch (r.type) {
      case 'release': {
        if (r.performer !== C.custodian) g('performer is not the custodian');
        if (C.pending) g('a release is already pending');
        if (!isStr(r.counterparty) || r.counterparty === '' || r.counterparty === r.performer) g('counterparty not set, or the performer');
        const exp = parseTime(d.expires_at);
        if (exp === null || !(exp > at)) g('details.expires_at is not a time after recorded_at');
        this.statement(`${where} statement`, d, r.performer, (st, signedAt) => {
          if (has(d, 'reason') && !isStr(d.reason)) throw new Error('details.reason is not a string');
          return { evidence_id: ev.evidence_id, from: need(r.performer, 'performer'), reason: has(d, 'reason') ? d.reason : '', sha256: ev.sha256, signed_at: need(signedAt, 'signed_at'), to: need(r.counterparty, 'counterparty'), type: 'custody.release', v: 1 };
        });
        if (!C.pending) C.pending = { seq: intVal(r.seq), recipient: r.counterparty, expiresAt: exp }; // exp null: failed above
        break;
      }
      case 'accept':
        if (!C.pending) { g('no release pending'); break; }
        if (r.performer !== C.pending.recipient) g("performer is not the release's recipient");
        if (intVal(d.release_seq) !== C.pending.seq) g("details.release_seq is not the pending release's seq");
        if (r.counterparty !== C.custodian) g('counterparty is not the custodian');
        this.statement(`${where} statement`, d, r.performer, (st, signedAt) => {
          if (!isInt(d.release_seq)) throw new Error('details.release_seq is not an integer');
          return { evidence_id: ev.evidence_id, from: need(r.counterparty, 'counterparty'), release_seq: d.release_seq, sha256: ev.sha256, signed_at: need(signedAt, 'signed_at'), to: need(r.performer, 'performer'), type: 'custody.accept', v: 1 };
        });
        C.custodian = r.performer;
        C.pending = null;
        break;
      case 'release_cancelled':
        if (!C.pending) { g('no release pending'); break; }
        if (r.performer !== C.custodian) g('performer is not the custodian');
        if (intVal(d.release_seq) !== C.pending.seq) g("details.release_seq is not the pending release's seq");
        if (r.counterparty !== C.pending.recipient) g("counterparty is not the release's recipient");
        C.pending = null;
        break;
      case 'release_expired': // its counterparty is not checked
        if (!C.pending) { g('no release pending'); break; }
        if (r.performer !== SERVICE) g(`performer is not ${SERVICE}`);
        if (intVal(d.release_seq) !== C.pending.seq) g("details.release_seq is not the pending release's seq");
        if (C.pending.expiresAt === null) g('the pending release has no valid expires_at');
        else {
          if (d.expired_at !== formatTime(C.pending.expiresAt)) g("details.expired_at is not the release's expires_at");
          if (!(at >= C.pending.expiresAt)) g('recorded before the release expired');
        }
        C.pending = null;
        break;
      case 'analysis': case 'derivation': case 'submission_to_court':
        if (r.performer !== C.custodian) g('performer is not the custodian');
        break;
      case 'access': case 'verification': case 'annotation':
        break;
      default:
        g('unknown event type');
    }
  }

  // The collector's capture statement (only when the ingest record has
  // details.collector_signature).
  capture(d, rec) {
    const ev = this.ev;
    const meta = has(ev, 'metadata') ? ev.metadata : null;
    const metaCap = meta && isObj(meta.capture) && has(meta.capture, 'captured_at') ? meta.capture.captured_at : undefined;
    this.statement('capture statement', d.collector_signature, rec.performer, (st, signedAt) => {
      if (st.case_id !== d.case_id) throw new Error("capture statement case_id is not the ingest record's details.case_id");
      if (!isStr(d.case_id)) throw new Error('details.case_id is not a string');
      const o = { case_id: d.case_id, collector: rec.performer, sha256: ev.sha256, signed_at: signedAt, size: ev.size, type: 'custody.capture', v: 1 };
      if (signedAt === null) throw new Error('signed_at is not a time');
      if (has(st, 'captured_at')) {
        const t = parseTime(st.captured_at);
        if (t === null) throw new Error('capture statement captured_at is not an RFC 3339 time');
        if (metaCap === undefined || parseTime(metaCap) !== t) throw new Error('capture statement captured_at is not the instant of evidence.metadata.capture.captured_at');
        o.captured_at = formatTime(t);
      } else if (metaCap !== undefined) {
        throw new Error('evidence.metadata states a capture time the collector did not sign');
      }
      return o;
    });
  }

  // Steps 8 and 9.
  end() {
    const opts = this.opts, ev = this.ev, h = this.h;
    // ---- Step 8: the evidence file
    if (opts.file != null) {
      if (hex(sha256(opts.file)) !== ev.sha256) this.fail('file', 'SHA-256 of the file is not evidence.sha256');
      if (BigInt(opts.file.length) !== big(ev.size)) this.fail('file', "the file's length is not evidence.size");
    } else {
      this.notChecked.push('the evidence file (none given)');
    }
    // ---- Step 9: consistency
    if (opts.earlierCheckpoint != null) {
      const f = (m) => this.fail('consistency', m);
      const cp = this.cp;
      if (!this.logKey) f('no usable log key for the earlier checkpoint');
      else if (!cp) f("the bundle's checkpoint did not verify: consistency cannot be checked");
      else {
        let old = null;
        try { old = parseCheckpoint(String(opts.earlierCheckpoint), this.logKey, h.log.origin); } catch (e) { f(`earlier checkpoint: ${e.message}`); }
        if (old) {
          if (old.size > cp.size) f('the earlier checkpoint is larger than log.tree_size');
          else if (old.size === cp.size) { if (!old.root.equals(cp.root)) f('the earlier checkpoint has the same size but another root: the log forked'); }
          else if (!has(h, 'consistency')) f('no consistency proof from the earlier checkpoint');
          else if (big(h.consistency.from_size) !== old.size) f("consistency.from_size is not the earlier checkpoint's size");
          else if (!verifyConsistency(old.size, cp.size, old.root, cp.root, h.consistency.proof.map(b64strict))) f("consistency proof does not verify from the earlier root to the bundle's");
        }
      }
    } else if (has(h, 'consistency')) {
      this.notChecked.push('the consistency proof (no earlier checkpoint given)');
    }
    // ---- Step 10: history completeness (completeness.mjs)
    const k = this.completeness.finish(this.count, this.prev ? BigInt(this.prev.logIndex) : 0n, ev.evidence_id, big(h.log.tree_size));
    this.completenessOut = k;
    if (k.notChecked) this.notChecked.push(k.notChecked);
    if (k.check && !k.check.ok) this.fail('completeness', `history completeness: ${k.check.detail}`);
    if (k.cannotProve) this.cannotProve.push(k.cannotProve);
    if (k.fact) this.facts.push(k.fact);
    return this.result();
  }
}

const STREAM_FORMAT = 'custody-bundle-stream';

// Whether a first line (bytes before the first \n) opens the stream form:
// a JSON object whose format is "custody-bundle-stream".
export function isStreamHeader(firstLine) {
  if (firstLine.length > MAX_LINE) return false;
  const p = parseObject(firstLine, 'first line');
  return !p.err && p.value.format === STREAM_FORMAT;
}
const firstLineOf = (buf) => { const nl = buf.indexOf(0x0a); return nl < 0 ? buf : buf.subarray(0, nl); };

// The document form (BUNDLE.md "Shape").
export function verifyDocument(bundleBytes, opts = {}) {
  const run = new Run(opts);
  const buf = Buffer.isBuffer(bundleBytes) ? bundleBytes : utf8(String(bundleBytes));
  const ffail = (m) => run.fail('format', m);
  if (buf.length > MAX_BUNDLE) { ffail('bundle larger than 256 MiB'); return run.result(); }
  const p = parseObject(buf, 'bundle');
  if (p.err) { ffail(p.err); return run.result(); }
  const b = p.value;
  checkSchema(b, 'bundle', 'bundle', ffail);
  if (run.failures.length) return run.result();
  run.formatTop(b, 'custody-bundle');
  if (b.events.length === 0) ffail('events is empty');
  if (run.failures.length) return run.result();
  run.begin(b);
  b.events.forEach((e, i) => run.event(e, i));
  return run.end();
}

// The stream form (BUNDLE.md and VERIFY.md "The stream form"): lines is an
// iterable of {line: Buffer, terminated: bool} or {tooLong: true} (a line
// over 1 MiB, not counting its \n), consumed one at a time; nothing but the
// header and the carried state is kept. A \r before the \n is JSON
// whitespace, so CRLF line ends are accepted (as the reference does).
export function verifyStream(lines, opts = {}) {
  const run = new Run(opts);
  const ffail = (m) => run.fail('format', m);
  const it = lines[Symbol.iterator]();
  // one line through step 1's framing; returns the parsed object or null
  const take = (l, what) => {
    if (l.tooLong) { ffail(`${what} is longer than 1 MiB`); return null; }
    // VERIFY.md: lines are "separated by \n", so the last may lack one (BUNDLE.md
    // says they "end with \n"; README: doc gaps). A line cut short does not parse.
    const p = parseObject(l.line, what);
    if (p.err) { ffail(p.err); return null; }
    return p.value;
  };
  const first = it.next();
  if (first.done) { ffail('empty stream'); return run.result(); }
  const h = take(first.value, 'header line');
  if (!h) return run.result();
  checkSchema(h, 'header', 'header', ffail);
  if (run.failures.length) return run.result();
  run.formatTop(h, STREAM_FORMAT);
  if (big(h.event_count) === 0n) ffail('event_count is 0 (a bundle has at least one event)');
  if (run.failures.length) return run.result();
  const n = h.event_count.value;
  run.begin(h);
  let i = 0;
  for (let r = it.next(); !r.done; r = it.next()) {
    const what = `event line ${i + 1} (line ${i + 2})`;
    if (i >= n) { ffail(`more event lines than event_count ${n}`); return run.result(); }
    const e = take(r.value, what);
    if (!e) return run.result();
    const before = run.failures.length;
    checkSchema(e, 'event', `events[${i}]`, ffail);
    if (run.failures.length > before) return run.result();
    run.event(e, i);
    i++;
  }
  if (i < n) { ffail(`the stream is cut short: ${i} event lines, event_count ${n}`); return run.result(); }
  return run.end();
}

// Lines of an in-memory buffer.
export function* bufferLines(buf) {
  let start = 0;
  while (start < buf.length) {
    const nl = buf.indexOf(0x0a, start);
    const end = nl < 0 ? buf.length : nl;
    if (end - start > MAX_LINE) { yield { tooLong: true }; return; }
    yield { line: buf.subarray(start, end), terminated: nl >= 0 };
    start = end + 1;
  }
}

// Lines of a file descriptor, read in 64 KiB chunks; a line is held only
// until it is consumed, and never more than 1 MiB of it.
export function* fdLines(fd, position = 0) {
  const chunk = Buffer.allocUnsafe(64 * 1024);
  let parts = [], len = 0;
  for (;;) {
    const n = fs.readSync(fd, chunk, 0, chunk.length, position);
    if (n === 0) break;
    position += n;
    const data = chunk.subarray(0, n);
    let start = 0;
    while (start < n) {
      const nl = data.indexOf(0x0a, start);
      const end = nl < 0 ? n : nl;
      len += end - start;
      if (len > MAX_LINE) { yield { tooLong: true }; return; }
      parts.push(Buffer.from(data.subarray(start, end)));
      if (nl < 0) break;
      yield { line: parts.length === 1 ? parts[0] : Buffer.concat(parts, len), terminated: true };
      parts = []; len = 0;
      start = nl + 1;
    }
  }
  if (parts.length) yield { line: Buffer.concat(parts, len), terminated: false };
}

// Either form, in memory: the first line decides.
export function verifyBundle(bundleBytes, opts = {}) {
  const buf = Buffer.isBuffer(bundleBytes) ? bundleBytes : utf8(String(bundleBytes));
  return isStreamHeader(firstLineOf(buf)) ? verifyStream(bufferLines(buf), opts) : verifyDocument(buf, opts);
}

// Either form, from a file: the stream form is read a line at a time.
export function verifyFile(file, opts = {}) {
  const fd = fs.openSync(file, 'r');
  try {
    const head = fdLines(fd).next();
    if (!head.done && !head.value.tooLong && isStreamHeader(head.value.line)) return verifyStream(fdLines(fd), opts);
    const size = fs.fstatSync(fd).size;
    if (size > MAX_BUNDLE) { const run = new Run(opts); run.fail('format', 'bundle larger than 256 MiB'); return run.result(); }
    return verifyDocument(fs.readFileSync(fd), opts);
  } finally { fs.closeSync(fd); }
}

// ---------------------------------------------------------------------------
// CLI

function readMaybeFile(v) {
  try { if (fs.statSync(v).isFile()) return fs.readFileSync(v, 'utf8'); } catch { /* a literal */ }
  return v;
}

function main(argv) {
  const a = {};
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i];
    if (k === '--json') { a.json = true; continue; }
    if (!k.startsWith('--') || i + 1 >= argv.length) { console.error(`usage: node verify.mjs --bundle F [--log-key KEY] [--receipt-key PEM] [--ca PEM] [--file F] [--checkpoint OLD] [--policy FILE] [--tsa-chain PEM] [--json]`); return 2; }
    a[k.slice(2)] = argv[++i];
  }
  if (!a.bundle) { console.error('--bundle is required'); return 2; }
  let r;
  try {
    r = verifyFile(a.bundle, {
      logKey: a['log-key'] != null ? readMaybeFile(a['log-key']) : undefined,
      receiptKeyPem: a['receipt-key'] != null ? fs.readFileSync(a['receipt-key'], 'utf8') : undefined,
      caPem: a.ca != null ? fs.readFileSync(a.ca, 'utf8') : undefined,
      file: a.file != null ? fs.readFileSync(a.file) : undefined,
      earlierCheckpoint: a.checkpoint != null ? fs.readFileSync(a.checkpoint, 'utf8') : undefined,
      policy: a.policy != null ? fs.readFileSync(a.policy, 'utf8') : undefined,
      tsaChainPem: a['tsa-chain'] != null ? fs.readFileSync(a['tsa-chain'], 'utf8') : undefined,
    });
  } catch (e) { console.error(`error: ${e.message}`); return 2; }
  if (a.json) {
    console.log(JSON.stringify({ outcome: r.outcome, step: r.step, failures: r.failures, not_checked: r.notChecked, untrusted_keys: r.untrustedKeys, unauthenticated: r.unauthenticated, facts: r.facts, cannot_prove: r.cannotProve }, null, 1));
  } else {
    const head = { verified: 'VERIFIED: every check passed, against the keys you supplied.', verified_with_limits: 'VERIFIED WITH LIMITS: every check made passed; some things were not checked.', untrusted_keys: 'UNTRUSTED KEYS: the checks passed against keys taken from the bundle itself; this is not a verification.', failed: `FAILED at step ${r.step}.` }[r.outcome];
    console.log(head);
    for (const x of r.failures) console.log(`  FAIL [${x.step}] ${x.message}`);
    if (r.notChecked.length) { console.log('Not checked:'); for (const x of r.notChecked) console.log(`  - ${x}`); }
    if (r.untrustedKeys.length) { console.log('Keys not supplied:'); for (const x of r.untrustedKeys) console.log(`  - ${x}`); }
    if (r.unauthenticated.length) console.log(`Unauthenticated context (shown, never relied on): ${r.unauthenticated.join(', ')}`);
    for (const f of r.facts) console.log(`${f.name}: ${f.value} (checked against ${f.boundBy})`);
    if (r.cannotProve.length) { console.log('What the bundle cannot prove:'); for (const x of r.cannotProve) console.log(`  - ${x}`); }
  }
  return r.exitCode;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  process.exitCode = main(process.argv.slice(2));
}
