// Step 10, history completeness: the bundle's history-map proof
// (docs/HISTORY_MAP.md; BUNDLE.md's "completeness"). ADDED BY THE CUSTODY
// TEAM, not by the independent author: it is a port of the Go reference
// (verify/verify.go beginCompleteness, the events' completion and
// finishCompleteness; historymap's ParseEntry, ParseLeaf, VerifyLeaf and
// Completion), with the reference's check name, messages, "not checked",
// "cannot prove" and fact texts. It shows the reference is implementable
// as written, not that an outsider found the documentation sufficient.
//
// The strict JSON reading and canonical encoding are the independent
// verifier's (verify.mjs), passed in, so one JSON reader serves the whole
// verifier.
import crypto from 'node:crypto';

const sha256 = (b) => crypto.createHash('sha256').update(b).digest();
const utf8 = (s) => Buffer.from(s, 'utf8');
const hex = (b) => Buffer.from(b).toString('hex');
const leafHash = (b) => sha256(Buffer.concat([Buffer.from([0]), b]));
const nodeHash = (l, r) => sha256(Buffer.concat([Buffer.from([1]), l, r]));
const isObj = (v) => v !== null && typeof v === 'object' && !Array.isArray(v);

export const ENTRY_TYPE = 'history_map';
const BOUND = 'the history map committed in the log (docs/HISTORY_MAP.md)';

// ---- RFC 9162 §2.1.3.2 inclusion proof, as transparency-dev/merkle's
// proof.VerifyInclusion (its error texts, but for the root mismatch, which
// Go prints with both roots in full).
const bitLen = (x) => (x === 0n ? 0 : x.toString(2).length);
const ones = (x) => [...x.toString(2)].filter((c) => c === '1').length;
function verifyInclusion(index, size, leaf, proof, root) {
  if (index >= size) throw new Error(`index is beyond size: ${index} >= ${size}`);
  const inner = bitLen(index ^ (size - 1n));
  const border = ones(index >> BigInt(inner));
  if (proof.length !== inner + border) throw new Error(`wrong proof size ${proof.length}, want ${inner + border}`);
  let h = leaf;
  for (let i = 0; i < inner; i++) h = ((index >> BigInt(i)) & 1n) === 0n ? nodeHash(h, proof[i]) : nodeHash(proof[i], h);
  for (const p of proof.slice(inner)) h = nodeHash(p, h);
  if (!h.equals(root)) throw new Error('calculated root does not match expected root');
}

// ---- historymap's readers. J is { parseJSON, canon, JNum } of verify.mjs.
function canonical(text, J) { // events.ParseCanonical
  const v = J.parseJSON(text);
  if (!isObj(v)) throw new Error('not a JSON object');
  let again = null;
  try { again = J.canon(v); } catch { again = null; }
  if (again !== text) throw new Error('not in canonical form');
  return v;
}
const nonNeg = (v, J) => (v instanceof J.JNum && v.isInt && !v.raw.startsWith('-') ? BigInt(v.raw) : null);
function hash32(v) {
  if (typeof v !== 'string' || v.length !== 64 || !/^[0-9a-fA-F]*$/.test(v) || v !== v.toLowerCase()) return null;
  return Buffer.from(v, 'hex');
}

// historymap.ParseEntry: the commitment, null for an entry that is not one
// (its type is not "history_map"), or it throws.
function parseEntry(text, J) {
  let obj;
  try { obj = canonical(text, J); } catch (e) { throw new Error(`log entry: ${e.message}`); }
  const v = obj.v;
  if (!(v instanceof J.JNum && v.isInt && BigInt(v.raw) === 1n)) throw new Error(`log entry: format version ${v instanceof J.JNum ? v.raw : v === undefined ? '<nil>' : String(v)}, this reader knows 1`);
  if (obj.type !== ENTRY_TYPE) return null;
  const c = { treeSize: nonNeg(obj.tree_size, J), mapSize: nonNeg(obj.map_size, J), mapRoot: hash32(obj.map_root) };
  if (c.treeSize === null) throw new Error('map commitment: "tree_size" is not a non-negative integer');
  if (c.mapSize === null) throw new Error('map commitment: "map_size" is not a non-negative integer');
  if (c.mapRoot === null) throw new Error('map commitment: "map_root" is not 32 bytes of lower-case hex');
  const again = `{"map_root":"${hex(c.mapRoot)}","map_size":${c.mapSize},"tree_size":${c.treeSize},"type":"${ENTRY_TYPE}","v":1}`;
  if (again !== text) throw new Error('map commitment: unknown fields');
  if (c.mapSize > c.treeSize) throw new Error(`map commitment: ${c.mapSize} leaves from ${c.treeSize} entries`);
  return c;
}

// historymap.ParseLeaf: exactly the canonical
// {"evidence_id","leaf_hash","log_index","seq"}.
function parseLeaf(text, J) {
  let obj;
  try { obj = canonical(text, J); } catch (e) { throw new Error(`map leaf: ${e.message}`); }
  const l = { evidenceID: obj.evidence_id, seq: nonNeg(obj.seq, J), logIndex: nonNeg(obj.log_index, J), leafHash: hash32(obj.leaf_hash) };
  if (typeof l.evidenceID !== 'string' || l.evidenceID === '') throw new Error('map leaf: "evidence_id" missing or not a string');
  if (l.seq === null) throw new Error('map leaf: "seq" is not a non-negative integer');
  if (l.logIndex === null) throw new Error('map leaf: "log_index" is not a non-negative integer');
  if (l.leafHash === null) throw new Error('map leaf: "leaf_hash" is not 32 bytes of lower-case hex');
  let again = null;
  try { again = J.canon({ evidence_id: l.evidenceID, leaf_hash: hex(l.leafHash), log_index: new J.JNum(String(l.logIndex)), seq: new J.JNum(String(l.seq)) }); } catch { again = null; }
  if (again !== text) throw new Error('map leaf: unknown fields');
  return l;
}

// Completeness is one bundle's step 10, fed the events in order.
//   k: the bundle's "completeness" object (through step 1), or undefined
//   evidenceID, treeSize (BigInt), root (the verified checkpoint's root, or null)
export class Completeness {
  constructor(k, evidenceID, treeSize, root, J) {
    this.k = k;
    this.err = null;
    this.c = null;
    this.leaf = null;
    this.found = false;
    if (!k) return;
    const logIndex = BigInt(k.log_index.raw);
    try {
      let c;
      try { c = parseEntry(k.entry, J); } catch (e) { throw new Error(`completeness.entry: ${e.message}`); }
      if (c === null) throw new Error('completeness.entry is not a history-map commitment (type "history_map")');
      this.c = c;
      if (logIndex >= treeSize) throw new Error(`the commitment's log index ${logIndex} is not below the checkpoint's ${treeSize} entries`);
      if (c.treeSize > logIndex) throw new Error(`the commitment at log index ${logIndex} claims to cover ${c.treeSize} entries; a commitment covers only entries before it`);
      if (!root) throw new Error("the checkpoint does not verify, so the commitment's inclusion cannot be checked");
      try {
        verifyInclusion(logIndex, treeSize, leafHash(utf8(k.entry)), k.inclusion_proof.map((h) => Buffer.from(h, 'base64')), root);
      } catch (e) { throw new Error(`the commitment entry is not in the log at index ${logIndex}: ${e.message}`); }
      // historymap.NewCompletion, VerifyLeaf (the proof's map size is the commitment's)
      const l = parseLeaf(k.map_leaf, J);
      if (l.logIndex >= c.treeSize) throw new Error(`map leaf: log index ${l.logIndex} is not among the ${c.treeSize} entries the map covers`);
      try {
        verifyInclusion(BigInt(k.map_index.raw), c.mapSize, leafHash(utf8(k.map_leaf)), k.map_proof.map((h) => Buffer.from(h, 'base64')), c.mapRoot);
      } catch (e) { throw new Error(`map leaf: ${e.message}`); }
      if (l.evidenceID !== evidenceID) throw new Error(`history map: the leaf is ${l.evidenceID}'s, the bundle is ${evidenceID}'s`);
      this.leaf = l;
    } catch (e) {
      this.err = e.message;
    }
  }

  // One of the bundle's events, in order (historymap.Completion.Event):
  // seq and logIndex BigInt, leaf its entry's leaf hash.
  event(seq, logIndex, leaf) {
    if (!this.leaf || this.err) return;
    const l = this.leaf, n = this.c.treeSize;
    if (seq === l.seq) {
      if (this.found) this.err = `history map: the bundle holds two events ${seq}`;
      else if (logIndex !== l.logIndex || !leaf.equals(l.leafHash)) {
        this.err = `history map: as of tree size ${n} the item's last entry is ${l.logIndex} (seq ${l.seq}, leaf ${hex(l.leafHash)}); the bundle's event ${seq} is entry ${logIndex} (leaf ${hex(leaf)})`;
      } else this.found = true;
    } else if (seq > l.seq && logIndex < n) {
      this.err = `history map: the bundle's event ${seq} is entry ${logIndex}, before tree size ${n}, yet the item's last entry there is event ${l.seq}`;
    } else if (seq < l.seq && logIndex >= l.logIndex) {
      this.err = `history map: the bundle's event ${seq} is entry ${logIndex}, not before the item's last entry ${l.logIndex} (event ${l.seq})`;
    }
  }

  // After the last event: count is how many events were fed, last the log
  // index of the last one (BigInt). Returns what the report gets:
  // { notChecked?, check?: {ok, detail}, cannotProve?, fact? }.
  finish(count, last, evidenceID, treeSize) {
    const out = {};
    if (count === 0) return out;
    const k = this.k;
    if (!k) {
      out.notChecked = `completeness: the bundle carries no history-map proof, so nothing shows that no event of this item was logged after its last one here (log index ${last}) and before the checkpoint (${treeSize} entries); to be sure, read the public entries in between (/log/tile/entries/…) and check that none names ${evidenceID}`;
      return out;
    }
    let err = this.err;
    if (err === null && this.leaf === null) err = "the history map's proof could not be checked";
    if (err === null && !this.found) {
      err = `history map: as of tree size ${this.c.treeSize} the item's last entry is event ${this.leaf.seq} (entry ${this.leaf.logIndex}), which the bundle does not hold: the bundle is cut short`;
    }
    if (err !== null) { out.check = { ok: false, detail: err }; return out; }
    const n = this.c.treeSize, logIndex = BigInt(k.log_index.raw);
    out.check = { ok: true, detail: `the history map committed at log index ${logIndex} names event #${this.leaf.seq} (log index ${this.leaf.logIndex}) as the item's last among the first ${n} entries: none of the item's events among them is missing` };
    // Unproven: the entries from the map's tree size (or after the last
    // event, if later) to the checkpoint, but for the commitment itself
    // (uint64 arithmetic, as the reference's).
    let from = n, unproven = 0n;
    if (last < treeSize) { // else the last event lies past the checkpoint: step 4 failed
      from = n > last + 1n ? n : last + 1n;
      unproven = treeSize - from;
      if (logIndex >= from) unproven -= 1n;
    }
    if (unproven === 0n) {
      out.fact = { name: 'history complete', value: `at the checkpoint: no event of the item among its ${treeSize} entries is missing`, boundBy: BOUND };
      return out;
    }
    out.cannotProve = `that no event of this item was logged among the ${unproven} entries from log index ${from} to the checkpoint (${treeSize} entries), after the history map's tree size; to be sure, read those public entries (/log/tile/entries/…) and check that none names ${evidenceID}`;
    out.fact = { name: 'history complete', value: `as of log entry ${n}: no event of the item among the first ${n} of the checkpoint's ${treeSize} entries is missing`, boundBy: BOUND };
    return out;
  }
}
