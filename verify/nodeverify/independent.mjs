// Witness cosignatures and RFC 3161 timestamps (docs/VERIFY.md step 3,
// "Timestamps" and "Witnesses"), written from that text: the witness
// policy file, cosignature/v1 lines, and a TimeStampResp read with a small
// DER reader (node:crypto has X.509 but no CMS).
import crypto from 'node:crypto';

const utf8 = (s) => Buffer.from(s, 'utf8');
const sha256 = (b) => crypto.createHash('sha256').update(b).digest();
const chop = (s, sep) => { const i = s.indexOf(sep); return i < 0 ? [s, ''] : [s.slice(0, i), s.slice(i + sep.length)]; };
function b64std(s) {
  if (typeof s !== 'string' || !/^[A-Za-z0-9+/]*={0,2}$/.test(s) || s.length % 4 !== 0) return null;
  return Buffer.from(s, 'base64');
}
const SPACE = /[\t\n\v\f\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]/;
const validName = (n) => n !== '' && !SPACE.test(n) && !n.includes('+');

// ---- witness policy (VERIFY.md: the policy file).
const KEYWORDS = ['log', 'witness', 'group', 'quorum', 'any', 'all', 'none'];

// A witness key: <name>+<hash>+<base64(0x04 or 0x01 || 32-byte Ed25519 key)>;
// its key hash is SHA-256(name || "\n" || 0x04 || key)[:4].
function witnessKey(vkey) {
  const [name, rest] = chop(vkey, '+');
  const [hash16, key64] = chop(rest, '+');
  const key = b64std(key64);
  if (hash16.length !== 8 || !key || !validName(name) || key.length !== 33 || (key[0] !== 4 && key[0] !== 1)) throw new Error('malformed witness key');
  const pub = key.subarray(1);
  const hash = sha256(Buffer.concat([utf8(name + '\n'), Buffer.from([4]), pub])).readUInt32BE(0);
  return { name, hash, pub: crypto.createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: pub.toString('base64url') }, format: 'jwk' }) };
}

export function parsePolicy(text) {
  const byName = new Map();
  const witnesses = [];
  let quorum, quorumSeen = false;
  const lines = String(text).split('\n');
  lines.forEach((raw, i) => {
    const line = raw.split('#')[0];
    const f = line.split(SPACE).filter((x) => x !== '');
    if (f.length === 0) return;
    const bad = (m) => { throw new Error(`witness policy line ${i + 1}: ${m}`); };
    const define = (n, c) => { if (KEYWORDS.includes(n)) bad(`${n} is a keyword`); if (byName.has(n)) bad(`${n} defined twice`); byName.set(n, c); };
    switch (f[0]) {
      case 'log': if (f.length < 2 || f.length > 3) bad('log KEY [URL]'); break;
      case 'witness': {
        if (f.length < 3 || f.length > 4) bad('witness NAME VKEY [URL]');
        let key;
        try { key = witnessKey(f[2]); } catch (e) { bad(e.message); }
        const w = { name: f[1], key };
        define(f[1], { w });
        witnesses.push(w);
        break;
      }
      case 'group': {
        if (f.length < 4) bad('group NAME K|any|all MEMBER...');
        const members = f.slice(3).map((m) => { if (!byName.has(m)) bad(`${m} not defined before`); return byName.get(m); });
        if (new Set(members).size !== members.length) bad('a member listed twice');
        const k = f[2] === 'any' ? 1 : f[2] === 'all' ? members.length : /^[1-9][0-9]*$/.test(f[2]) ? Number(f[2]) : 0;
        if (k < 1 || k > members.length) bad(`threshold ${f[2]}`);
        define(f[1], { k, members });
        break;
      }
      case 'quorum':
        if (f.length !== 2) bad('quorum NAME|none');
        if (quorumSeen) bad('a second quorum');
        quorumSeen = true;
        if (f[1] !== 'none') { if (!byName.has(f[1])) bad(`${f[1]} not defined before`); quorum = byName.get(f[1]); }
        break;
      default: bad(`unknown keyword ${f[0]}`);
    }
  });
  if (!quorumSeen) throw new Error('witness policy: no quorum');
  return { witnesses, quorum: quorum || null };
}

// Checks the cosignatures on a checkpoint note (its signature block is
// after the last blank line). Returns {satisfied, signed: [{name, time}],
// invalid: [names]}.
export function checkWitnesses(policy, note) {
  const split = note.lastIndexOf('\n\n');
  const text = split < 0 ? '' : note.slice(0, split + 1);
  const lines = split < 0 ? [] : note.slice(split + 2).split('\n').filter((l) => l !== '');
  const signed = new Map(), invalid = [];
  for (const w of policy.witnesses) {
    for (const l of lines) {
      if (!l.startsWith('\u2014 ')) continue;
      const [name, b64] = chop(l.slice(2), ' ');
      const sig = b64std(b64);
      if (!sig || sig.length < 4 || name !== w.key.name || sig.readUInt32BE(0) !== w.key.hash) continue;
      let ok = false, t = 0n;
      if (sig.length === 4 + 8 + 64) {
        t = sig.readBigUInt64BE(4);
        const msg = utf8(`cosignature/v1\ntime ${t}\n${text}`);
        try { ok = crypto.verify(null, msg, w.key.pub, sig.subarray(12)); } catch { ok = false; }
      }
      if (ok) signed.set(w, new Date(Number(t) * 1000).toISOString().replace('.000Z', 'Z'));
      else invalid.push(w.name);
      break; // the first line of the key counts
    }
  }
  const sat = (c) => (c.w ? signed.has(c.w) : c.members.filter(sat).length >= c.k);
  return {
    satisfied: policy.quorum === null || sat(policy.quorum),
    signed: policy.witnesses.filter((w) => signed.has(w)).map((w) => ({ name: w.name, time: signed.get(w) })),
    invalid,
  };
}

// ---- DER (X.690), just enough for RFC 3161 and CMS (RFC 5652).
function tlv(buf, at) {
  if (at + 2 > buf.length) throw new Error('DER: truncated');
  const tag = buf[at];
  let len = buf[at + 1], hdr = 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n === 0 || n > 4 || at + 2 + n > buf.length) throw new Error('DER: bad length');
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + buf[at + 2 + i];
    hdr += n;
  }
  if (at + hdr + len > buf.length) throw new Error('DER: truncated');
  return { tag, start: at, hdr, len, end: at + hdr + len, body: buf.subarray(at + hdr, at + hdr + len), raw: buf.subarray(at, at + hdr + len) };
}
function children(node) {
  const out = [];
  for (let at = 0; at < node.body.length;) { const c = tlv(node.body, at); out.push(c); at = c.end; }
  return out;
}
const oidOf = (n) => {
  if (n.tag !== 0x06) throw new Error('DER: not an OID');
  const b = n.body, parts = [Math.floor(b[0] / 40), b[0] % 40];
  let v = 0;
  for (let i = 1; i < b.length; i++) { v = v * 128 + (b[i] & 0x7f); if (!(b[i] & 0x80)) { parts.push(v); v = 0; } }
  return parts.join('.');
};
const OID = {
  signedData: '1.2.840.113549.1.7.2', tstInfo: '1.2.840.113549.1.9.16.1.4', messageDigest: '1.2.840.113549.1.9.4',
  sha256: '2.16.840.1.101.3.4.2.1', sha384: '2.16.840.1.101.3.4.2.2', sha512: '2.16.840.1.101.3.4.2.3',
  ekuTimeStamping: '1.3.6.1.5.5.7.3.8', extKeyUsage: '2.5.29.37',
};
const HASHES = { [OID.sha256]: 'sha256', [OID.sha384]: 'sha384', [OID.sha512]: 'sha512' };

// GeneralizedTime YYYYMMDDHHMMSS[.fff]Z -> Date
function generalizedTime(n) {
  const m = /^([0-9]{4})([0-9]{2})([0-9]{2})([0-9]{2})([0-9]{2})([0-9]{2})(\.[0-9]+)?Z$/.exec(n.body.toString('latin1'));
  if (n.tag !== 0x18 || !m) throw new Error('genTime is not a GeneralizedTime');
  return new Date(Date.UTC(+m[1], +m[2] - 1, +m[3], +m[4], +m[5], +m[6], m[7] ? Math.floor(Number(m[7]) * 1000) : 0));
}

// The extended key usage extension of a certificate (DER): {critical, oids}.
function extKeyUsage(der) {
  const tbs = children(children(tlv(der, 0))[0]);
  const exts = tbs.find((c) => c.tag === 0xa3);
  if (!exts) return null;
  for (const e of children(children(exts)[0])) {
    const f = children(e);
    if (oidOf(f[0]) !== OID.extKeyUsage) continue;
    const critical = f.length === 3 && f[1].tag === 0x01 && f[1].body[0] !== 0;
    const value = f[f.length - 1];
    return { critical, oids: children(tlv(value.body, 0)).map(oidOf) };
  }
  return null;
}

function certsFromPem(pem) {
  return (String(pem).match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g) || []).map((b) => new crypto.X509Certificate(b));
}

// verifyTimestamp checks a DER TimeStampResp over message against a PEM
// chain (a self-signed root and any intermediates), as VERIFY.md's four
// checks say. Returns {time: Date, authority: subject} or throws.
export function verifyTimestamp(resp, message, chainPem) {
  const chain = certsFromPem(chainPem);
  const roots = chain.filter((c) => c.subject === c.issuer && c.checkIssued(c) && c.verify(c.publicKey));
  if (roots.length === 0) throw new Error("the authority's chain has no self-signed root");
  // 1. TimeStampResp ::= SEQUENCE { status PKIStatusInfo, timeStampToken ContentInfo }
  const outer = tlv(resp, 0);
  if (outer.tag !== 0x30 || outer.end !== resp.length) throw new Error('not a DER TimeStampResp');
  const top = children(outer);
  if (top[0].tag !== 0x30 || (top[1] && top[1].tag !== 0x30)) throw new Error('not a DER TimeStampResp');
  const status = children(top[0]);
  if (status[0].tag !== 0x02 || status[0].body.length !== 1 || status[0].body[0] > 1) throw new Error('timestamp not granted');
  if (!top[1]) throw new Error('no token');
  const ci = children(top[1]);
  if (oidOf(ci[0]) !== OID.signedData) throw new Error('token is not CMS SignedData');
  if (ci[1].tag !== 0xa0) throw new Error('token is not CMS SignedData');
  const sdNode = children(ci[1])[0]; // [0] EXPLICIT SignedData
  if (sdNode.tag !== 0x30) throw new Error('token is not CMS SignedData');
  const sd = children(sdNode);
  // SignedData: version, digestAlgorithms, encapContentInfo, [0] certificates, [1] crls, signerInfos
  const encap = children(sd[2]);
  if (oidOf(encap[0]) !== OID.tstInfo) throw new Error('token content is not TSTInfo');
  const eContent = children(encap[1])[0].body; // [0] EXPLICIT OCTET STRING holding the TSTInfo
  const certsNode = sd.find((c) => c.tag === 0xa0);
  const tokenCerts = certsNode ? children(certsNode).map((c) => new crypto.X509Certificate(c.raw)) : [];
  const signerInfos = children(sd[sd.length - 1]);
  if (signerInfos.length !== 1) throw new Error('token has not exactly one signer');
  const si = children(signerInfos[0]);
  // SignerInfo: version, sid, digestAlgorithm, [0] signedAttrs, signatureAlgorithm, signature
  const sid = si[1];
  const digestAlg = HASHES[oidOf(children(si[2])[0])];
  const attrs = si.find((c) => c.tag === 0xa0);
  const sigNode = si[si.findIndex((c) => c.tag === 0xa0) + 2];
  if (!digestAlg || !attrs || !sigNode) throw new Error('signer info unsupported');
  let signer = null;
  if (sid.tag === 0x30) {
    const [, serial] = children(sid);
    signer = tokenCerts.find((c) => BigInt('0x' + c.serialNumber) === BigInt('0x' + (serial.body.toString('hex') || '0')));
  }
  if (!signer) throw new Error("the token does not carry its signer's certificate");
  // signed attributes: messageDigest = H(eContent); signature over SET OF attrs
  let md = null;
  for (const a of children(attrs)) {
    const [t, vals] = children(a);
    if (oidOf(t) === OID.messageDigest) md = children(vals)[0].body;
  }
  if (!md || !md.equals(crypto.createHash(digestAlg).update(eContent).digest())) throw new Error('the signed attributes do not match the TSTInfo');
  const signedBytes = Buffer.concat([Buffer.from([0x31]), attrs.raw.subarray(1)]);
  const key = signer.publicKey;
  const ok = crypto.verify(digestAlg, signedBytes, key.asymmetricKeyType === 'ec' ? { key, dsaEncoding: 'der' } : key, sigNode.body);
  if (!ok) throw new Error('the token signature does not verify');
  // 2. chain to a root of the chain given; EKU timeStamping, critical, alone
  const intermediates = chain.filter((c) => !roots.includes(c)).concat(tokenCerts);
  const chainsUp = (c, depth) => {
    if (depth > 5) return false;
    if (roots.some((r) => c.checkIssued(r) && c.verify(r.publicKey))) return true;
    return intermediates.some((i) => i !== c && c.checkIssued(i) && c.verify(i.publicKey) && i.ca && chainsUp(i, depth + 1));
  };
  if (!chainsUp(signer, 0)) throw new Error("the signer's certificate does not chain to the authority given");
  const eku = extKeyUsage(signer.raw);
  if (!eku || !eku.critical || eku.oids.length !== 1 || eku.oids[0] !== OID.ekuTimeStamping) throw new Error('the signer is not a critical timeStamping-only certificate');
  // 3. TSTInfo: version, policy, messageImprint {alg, hash}, serial, genTime
  const tstNode = tlv(eContent, 0);
  if (tstNode.tag !== 0x30 || tstNode.end !== eContent.length) throw new Error('TSTInfo is not DER');
  const tst = children(tstNode);
  const imprint = children(tst[2]);
  const imprintAlg = HASHES[oidOf(children(imprint[0])[0])];
  if (!imprintAlg || !imprint[1].body.equals(crypto.createHash(imprintAlg).update(message).digest())) throw new Error('the token is over another message');
  // 4. genTime within the signer's validity
  const gen = generalizedTime(tst[4]);
  if (gen < new Date(signer.validFrom) || gen > new Date(signer.validTo)) throw new Error("genTime is outside the signer's validity");
  return { time: gen, authority: signer.subject };
}
