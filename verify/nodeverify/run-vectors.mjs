// Runs the independent verifier (verify.mjs) against every conformance vector
// in testdata/verify-vectors/vectors.json and compares outcome, first failing
// step and (when given) the unauthenticated fields with the vector's expect.
// A raw file whose first line is a stream-form header ("custody-bundle-stream")
// is verified in the stream form, a line at a time.
//
//   node run-vectors.mjs [REPO_ROOT] [--step10 OUT.json]   (default root: two directories up)
//
// --step10 writes, for every vector in order, what step 10 (history
// completeness, completeness.mjs) reported: {name, check: {ok, detail} or
// absent, notChecked, cannotProve, fact}; nodeverify_test.go compares it
// with the Go reference's report, text for text.
//
// Exits 0 when every vector agrees, 1 otherwise.

import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { verifyDocument, verifyStream, fdLines, isStreamHeader } from './verify.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const args = process.argv.slice(2);
const step10At = args.indexOf('--step10');
const step10Out = step10At >= 0 ? path.resolve(args.splice(step10At, 2)[1]) : null;
const root = path.resolve(args[0] || path.join(here, '..', '..'));
const step10 = [];
const dir = path.join(root, 'testdata', 'verify-vectors');
const vf = JSON.parse(fs.readFileSync(path.join(dir, 'vectors.json'), 'utf8'));
const read = (p, enc) => fs.readFileSync(path.join(dir, p), enc);

// RFC 6901 pointer -> [parent, key]
function locate(doc, pointer) {
  if (pointer === '') return [null, null];
  if (!pointer.startsWith('/')) throw new Error(`bad pointer ${pointer}`);
  const parts = pointer.slice(1).split('/').map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
  let cur = doc;
  for (const p of parts.slice(0, -1)) {
    if (cur === null || typeof cur !== 'object' || !(p in cur)) throw new Error(`pointer ${pointer}: no ${p}`);
    cur = cur[Array.isArray(cur) ? Number(p) : p];
  }
  return [cur, parts[parts.length - 1]];
}
const arrIndex = (arr, k, forAdd) => {
  if (forAdd && k === '-') return arr.length;
  if (!/^(0|[1-9][0-9]*)$/.test(k)) throw new Error(`bad array index ${k}`);
  const i = Number(k);
  if (i > arr.length || (!forAdd && i === arr.length)) throw new Error(`array index ${k} out of range`);
  return i;
};
// RFC 6902 add, remove, replace
function applyPatch(doc, ops) {
  for (const op of ops) {
    const [parent, key] = locate(doc, op.path);
    if (parent === null) { if (op.op === 'remove') throw new Error('cannot remove the root'); doc = structuredClone(op.value); continue; }
    const value = structuredClone(op.value);
    if (Array.isArray(parent)) {
      const i = arrIndex(parent, key, op.op === 'add');
      if (op.op === 'add') parent.splice(i, 0, value);
      else if (op.op === 'remove') parent.splice(i, 1);
      else if (op.op === 'replace') parent[i] = value;
      else throw new Error(`unsupported op ${op.op}`);
    } else {
      if (op.op === 'add') parent[key] = value;
      else if (op.op === 'remove' || op.op === 'replace') {
        if (!Object.prototype.hasOwnProperty.call(parent, key)) throw new Error(`${op.op} of missing ${op.path}`);
        if (op.op === 'remove') delete parent[key]; else parent[key] = value;
      } else throw new Error(`unsupported op ${op.op}`);
    }
  }
  return doc;
}

const trust = {
  logKey: read(vf.trust.log_key, 'utf8'),
  receiptKeyPem: read(vf.trust.receipt_key, 'utf8'),
  caPem: read(vf.trust.ca, 'utf8'),
  earlierCheckpoint: read(vf.trust.earlier_checkpoint, 'utf8'),
  policy: read(vf.trust.policy, 'utf8'),
  tsaChainPem: read(vf.trust.tsa_chain, 'utf8'),
};
const bases = new Map();
const base = (p) => { if (!bases.has(p)) bases.set(p, JSON.parse(read(p, 'utf8'))); return structuredClone(bases.get(p)); };

const start = Date.now();
let agree = 0, streams = 0;
const disagreements = [];
for (const v of vf.vectors) {
  let got;
  try {
    const opts = {
      logKey: v.keys ? trust.logKey : undefined,
      receiptKeyPem: v.keys ? trust.receiptKeyPem : undefined,
      caPem: v.ca ? trust.caPem : undefined,
      earlierCheckpoint: v.earlier_checkpoint ? trust.earlierCheckpoint : undefined,
      policy: v.policy ? trust.policy : undefined,
      tsaChainPem: v.tsa_chain ? trust.tsaChainPem : undefined,
      file: v.file ? read(v.file) : undefined,
    };
    if (v.raw) {
      // the first line decides the form; the stream form is read a line at a time
      const fd = fs.openSync(path.join(dir, v.raw), 'r');
      try {
        const first = fdLines(fd).next();
        const stream = !first.done && !first.value.tooLong && isStreamHeader(first.value.line);
        if (stream) streams++;
        got = stream ? verifyStream(fdLines(fd), opts) : verifyDocument(fs.readFileSync(fd), opts);
      } finally { fs.closeSync(fd); }
    } else {
      got = verifyDocument(Buffer.from(JSON.stringify(applyPatch(base(v.bundle), v.patch || [])), 'utf8'), opts);
    }
  } catch (e) {
    got = { outcome: 'error', step: undefined, failures: [{ step: '-', message: e.stack }], unauthenticated: [] };
  }
  const k = got.completeness || {};
  step10.push({ name: v.name, check: k.check, notChecked: k.notChecked, cannotProve: k.cannotProve, fact: k.fact });
  const exp = v.expect;
  const problems = [];
  if (got.outcome !== exp.outcome) problems.push(`outcome ${got.outcome}, want ${exp.outcome}`);
  if (exp.outcome === 'failed' && got.step !== exp.step) problems.push(`step ${got.step}, want ${exp.step}`);
  if (exp.unauthenticated && JSON.stringify([...got.unauthenticated].sort()) !== JSON.stringify([...exp.unauthenticated].sort())) {
    problems.push(`unauthenticated ${JSON.stringify(got.unauthenticated)}, want ${JSON.stringify(exp.unauthenticated)}`);
  }
  if (problems.length === 0) agree++;
  else disagreements.push({ name: v.name, problems, failures: got.failures, notChecked: got.notChecked });
}

for (const d of disagreements) {
  console.log(`DISAGREE ${d.name}: ${d.problems.join('; ')}`);
  for (const f of (d.failures || []).slice(0, 3)) console.log(`    [${f.step}] ${f.message}`);
  if (d.notChecked && d.notChecked.length) console.log(`    not checked: ${d.notChecked.join('; ')}`);
}
console.log(`${agree}/${vf.vectors.length} vectors agree (${streams} of them in the stream form; ${((Date.now() - start) / 1000).toFixed(1)} s)`);
if (step10Out) fs.writeFileSync(step10Out, JSON.stringify(step10));
process.exitCode = disagreements.length === 0 ? 0 : 1;
