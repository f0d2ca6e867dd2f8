// The custody report (docs/REPORT.md): one printable, self-contained HTML
// page a court reads, rendered from a verification report. This file is
// the only implementation: the /verify page embeds it (verifypage.go puts
// it into the page's inline script), and `custody report` runs the same
// text in a JavaScript engine inside the Go binary (goja). So it must stay
// a pure function of its inputs: no DOM, no clock, no locale, no random,
// no fetch; the same inputs give the same string in every engine.
//
// CustodyReport.renderReport(report, bundle, keys, meta) returns a full HTML
// document; renderReportBody(...) the <main class="custody-report"> element
// alone (what the page shows); css is the style both use.
//
//   report: the verification report as Go's verify.Report marshals it to
//           JSON (outcome, ok, checks, facts, unauthenticated, not_checked,
//           cannot_prove, trusted_from_bundle); absent lists count as empty.
//   bundle: the parsed bundle document (the stream form as its header with
//           an "events" array), or null when it could not be read.
//   keys:   what the court supplied, as text (an empty string: not given):
//           log_verifier_key, receipt_public_key_pem, client_ca_pem,
//           witness_policy, tsa_chain_pems (array), source (where they came
//           from, in words). Fingerprints are computed here (fingerprint()).
//   meta:   generated_at (RFC 3339), generator ("custody report", "the
//           /verify page"), bundle_file {name, sha256}, evidence_file {name}
//           or null.
var CustodyReport = (() => {
"use strict";

const REPORT_CSS = String.raw`
@page { margin: 14mm 13mm 15mm; }
body.custody-report-doc { margin: 0; background: #fff; }
.custody-report { font: 10pt/1.45 "Liberation Sans", "Helvetica Neue", Arial, "DejaVu Sans", sans-serif; color: #1a1a1a; max-width: 184mm; margin: 0 auto; -webkit-print-color-adjust: exact; print-color-adjust: exact; }
@media screen { body.custody-report-doc .custody-report { padding: 10mm 8mm 16mm; } }
.custody-report h1 { font-size: 17pt; line-height: 1.2; margin: 0 0 3pt; }
.custody-report h2 { font-size: 12.5pt; margin: 16pt 0 5pt; padding-bottom: 2pt; border-bottom: 1.5px solid #1a1a1a; break-after: avoid; page-break-after: avoid; }
.custody-report h3 { font-size: 10.5pt; margin: 10pt 0 3pt; break-after: avoid; page-break-after: avoid; }
.custody-report p { margin: 3pt 0 5pt; }
.custody-report ul { margin: 3pt 0 5pt; padding-left: 14pt; }
.custody-report li { margin: 1.5pt 0; }
.custody-report .sub { color: #555; font-size: 8.5pt; margin: 0; }
.custody-report .note { color: #444; font-size: 8.5pt; }
.custody-report .mono { font-family: "DejaVu Sans Mono", "Liberation Mono", Menlo, Consolas, monospace; font-size: 8pt; overflow-wrap: anywhere; word-break: break-all; }
.custody-report .fp { word-break: normal; overflow-wrap: normal; }
.custody-report .verdict { border: 2.5px solid #1f7a3a; border-radius: 4px; padding: 8pt 11pt 7pt; margin: 10pt 0 8pt; background: #eaf6ee; break-inside: avoid; page-break-inside: avoid; }
.custody-report .verdict .word { font-size: 21pt; font-weight: 800; letter-spacing: 0.02em; margin: 0 0 2pt; color: #125c2a; }
.custody-report .verdict .lead { font-size: 10.5pt; margin: 0 0 4pt; }
.custody-report .verdict.limits { border-color: #5b7a1f; background: #f2f6e6; }
.custody-report .verdict.limits .word { color: #3f5c12; }
.custody-report .verdict.not { border-color: #a61b1b; border-width: 3.5px; background: #fdecec; }
.custody-report .verdict.not .word { color: #a61b1b; font-size: 24pt; }
.custody-report .verdict ul { font-size: 9pt; }
.custody-report .verdict .failed-list { font-size: 8pt; color: #5a1010; }
.custody-report .unverified-banner { border: 2px dashed #a61b1b; color: #a61b1b; background: #fff7f7; font-weight: 700; font-size: 9pt; padding: 3pt 7pt; margin: 4pt 0 6pt; break-inside: avoid; }
.custody-report table { border-collapse: collapse; width: 100%; font-size: 9pt; margin: 2pt 0 6pt; }
.custody-report th, .custody-report td { text-align: left; vertical-align: top; padding: 2.5pt 6pt 2.5pt 0; border-bottom: 0.75px solid #d4d4d4; width: auto; font-weight: 400; }
.custody-report th { font-weight: 600; }
.custody-report thead th { border-bottom: 1.25px solid #1a1a1a; font-size: 8.5pt; }
.custody-report tbody th { font-weight: 600; width: 33%; }
.custody-report tr { break-inside: avoid; page-break-inside: avoid; }
.custody-report td.src { color: #555; font-size: 8pt; width: 27%; }
.custody-report table.events td.seq { white-space: nowrap; width: 7%; }
.custody-report table.events td.when { white-space: nowrap; width: 17%; }
.custody-report table.events td.what { width: 14%; font-weight: 600; }
.custody-report table.events td.who { width: 20%; }
.custody-report .who-name { font-weight: 600; }
.custody-report .who-role { color: #555; font-size: 8pt; }
.custody-report .fail { color: #a61b1b; font-weight: 700; }
.custody-report .pass { color: #1f7a3a; }
.custody-report figure.timeline { margin: 4pt 0 4pt; break-inside: avoid; page-break-inside: avoid; }
.custody-report figure.timeline figcaption { font-size: 8pt; color: #444; margin: 0 0 2pt; }
.custody-report svg.tl { width: 100%; height: auto; display: block; }
.custody-report svg text { font-family: "Liberation Sans", "Helvetica Neue", Arial, "DejaVu Sans", sans-serif; }
.custody-report .legend { display: flex; flex-wrap: wrap; gap: 2pt 12pt; font-size: 8pt; margin: 3pt 0 6pt; padding: 0; list-style: none; break-inside: avoid; }
.custody-report .legend li { display: flex; align-items: center; gap: 3pt; margin: 0; }
.custody-report .legend svg { width: 16px; height: 16px; flex: none; }
.custody-report .keep { break-inside: avoid; page-break-inside: avoid; }
.custody-report .checks li { font-size: 8.5pt; }
.custody-report .checks .step { color: #555; font-size: 7.5pt; text-transform: uppercase; }
.custody-report footer { margin-top: 16pt; border-top: 0.75px solid #999; padding-top: 4pt; font-size: 8pt; color: #555; }
`; // end REPORT_CSS

// ---- small helpers, the same in every engine.
const esc = (v) => String(v === undefined || v === null ? "" : v).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
const isObj = (v) => v !== null && typeof v === "object" && !Array.isArray(v);
const obj = (v) => (isObj(v) ? v : {});
const arr = (v) => (Array.isArray(v) ? v : []);
const str = (v) => (typeof v === "string" ? v : v === undefined || v === null ? "" : typeof v === "object" ? JSON.stringify(v) : String(v));
const plural = (n, one, many) => `${n} ${n === 1 ? one : many || one + "s"}`;
function tryJSON(text) {
  if (typeof text !== "string") return null;
  try { return JSON.parse(text); } catch (e) { return null; }
}
// Thousands separators, by hand (no locale).
function groupDigits(n) {
  const s = String(n);
  if (!/^-?\d+$/.test(s)) return s;
  const neg = s[0] === "-", d = neg ? s.slice(1) : s;
  let out = "";
  for (let i = 0; i < d.length; i++) { if (i > 0 && (d.length - i) % 3 === 0) out += ","; out += d[i]; }
  return (neg ? "-" : "") + out;
}
function humanSize(n) {
  if (typeof n !== "number" || !isFinite(n)) return str(n);
  const units = ["KiB", "MiB", "GiB", "TiB"];
  let text = groupDigits(n) + (n === 1 ? " byte" : " bytes");
  if (n >= 1024) {
    let u = 0, div = 1024;
    while (u < units.length - 1 && n >= div * 1024) { div *= 1024; u++; }
    const tenths = Math.round((n * 10) / div);
    text += ` (${Math.floor(tenths / 10)}.${tenths % 10} ${units[u]})`;
  }
  return text;
}
// Times: RFC 3339 as written in records and metadata; shown in UTC as
// stated, by string manipulation only (no Date: its parsing and
// formatting differ between engines).
const TIME_RE = /^(\d{4}-\d{2}-\d{2})[Tt ](\d{2}:\d{2}:\d{2})(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$/;
function timeParts(t) {
  const m = TIME_RE.exec(str(t));
  if (!m) return null;
  const zone = m[4].toUpperCase() === "Z" ? "UTC" : "UTC" + m[4];
  return { date: m[1], time: m[2], frac: m[3] || "", zone };
}
// fmtTime: "2026-11-28 10:29:35 UTC"; ms adds the milliseconds.
function fmtTime(t, ms) {
  const p = timeParts(t);
  if (!p) return str(t);
  const frac = ms && p.frac ? (p.frac + "000").slice(0, 4) : "";
  return `${p.date} ${p.time}${frac} ${p.zone}`;
}
function fmtDuration(ns) {
  if (typeof ns !== "number" || !isFinite(ns) || ns < 0) return str(ns);
  let s = Math.floor(ns / 1e9);
  const h = Math.floor(s / 3600); s -= h * 3600;
  const m = Math.floor(s / 60); s -= m * 60;
  const parts = [];
  if (h) parts.push(h + " h");
  if (m) parts.push(m + " min");
  if (s || parts.length === 0) parts.push(s + " s");
  return parts.join(" ");
}

// ---- SHA-256, UTF-8, base64 and PEM, for fingerprints (FIPS 180-4).
const K = [0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
  0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
  0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
  0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3, 0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2];
function sha256(bytes) {
  const n = bytes.length, total = ((n + 9 + 63) >> 6) << 6;
  const m = new Uint8Array(total);
  m.set(bytes);
  m[n] = 0x80;
  const bits = n * 8;
  for (let i = 0; i < 8; i++) m[total - 1 - i] = Math.floor(bits / Math.pow(2, 8 * i)) & 0xff;
  const h = [0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19];
  const w = new Array(64);
  const rot = (x, r) => (x >>> r) | (x << (32 - r));
  for (let o = 0; o < total; o += 64) {
    for (let i = 0; i < 16; i++) w[i] = (m[o + 4 * i] << 24) | (m[o + 4 * i + 1] << 16) | (m[o + 4 * i + 2] << 8) | m[o + 4 * i + 3];
    for (let i = 16; i < 64; i++) {
      const s0 = rot(w[i - 15], 7) ^ rot(w[i - 15], 18) ^ (w[i - 15] >>> 3);
      const s1 = rot(w[i - 2], 17) ^ rot(w[i - 2], 19) ^ (w[i - 2] >>> 10);
      w[i] = (w[i - 16] + s0 + w[i - 7] + s1) | 0;
    }
    let [a, b, c, d, e, f, g, hh] = h;
    for (let i = 0; i < 64; i++) {
      const t1 = (hh + (rot(e, 6) ^ rot(e, 11) ^ rot(e, 25)) + ((e & f) ^ (~e & g)) + K[i] + w[i]) | 0;
      const t2 = ((rot(a, 2) ^ rot(a, 13) ^ rot(a, 22)) + ((a & b) ^ (a & c) ^ (b & c))) | 0;
      hh = g; g = f; f = e; e = (d + t1) | 0; d = c; c = b; b = a; a = (t1 + t2) | 0;
    }
    h[0] = (h[0] + a) | 0; h[1] = (h[1] + b) | 0; h[2] = (h[2] + c) | 0; h[3] = (h[3] + d) | 0;
    h[4] = (h[4] + e) | 0; h[5] = (h[5] + f) | 0; h[6] = (h[6] + g) | 0; h[7] = (h[7] + hh) | 0;
  }
  const out = new Uint8Array(32);
  for (let i = 0; i < 8; i++) for (let j = 0; j < 4; j++) out[4 * i + j] = (h[i] >>> (24 - 8 * j)) & 0xff;
  return out;
}
function utf8(s) {
  const out = [];
  for (let i = 0; i < s.length; i++) {
    let c = s.charCodeAt(i);
    if (c >= 0xd800 && c < 0xdc00 && i + 1 < s.length) {
      const d = s.charCodeAt(i + 1);
      if (d >= 0xdc00 && d < 0xe000) { c = 0x10000 + ((c - 0xd800) << 10) + (d - 0xdc00); i++; }
    }
    if (c >= 0xd800 && c < 0xe000) c = 0xfffd; // a lone surrogate
    if (c < 0x80) out.push(c);
    else if (c < 0x800) out.push(0xc0 | (c >> 6), 0x80 | (c & 63));
    else if (c < 0x10000) out.push(0xe0 | (c >> 12), 0x80 | ((c >> 6) & 63), 0x80 | (c & 63));
    else out.push(0xf0 | (c >> 18), 0x80 | ((c >> 12) & 63), 0x80 | ((c >> 6) & 63), 0x80 | (c & 63));
  }
  return new Uint8Array(out);
}
const B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
function b64decode(s) {
  s = s.replace(/[\s=]/g, "");
  if (/[^A-Za-z0-9+/]/.test(s)) return null;
  const out = [];
  let acc = 0, bits = 0;
  for (const ch of s) {
    acc = (acc << 6) | B64.indexOf(ch);
    bits += 6;
    if (bits >= 8) { bits -= 8; out.push((acc >> bits) & 0xff); }
  }
  return new Uint8Array(out);
}
function b64encode(b) {
  let s = "";
  for (let i = 0; i < b.length; i += 3) {
    const n = (b[i] << 16) | ((b[i + 1] || 0) << 8) | (b[i + 2] || 0);
    s += B64[n >> 18] + B64[(n >> 12) & 63] + (i + 1 < b.length ? B64[(n >> 6) & 63] : "=") + (i + 2 < b.length ? B64[n & 63] : "=");
  }
  return s;
}
const hex = (b) => Array.from(b, (x) => (x < 16 ? "0" : "") + x.toString(16)).join("");
// pemBlocks returns the DER of each PEM block of that type, in order.
function pemBlocks(text, type) {
  const out = [];
  const re = /-----BEGIN ([A-Z0-9 ]+)-----([\s\S]*?)-----END \1-----/g;
  let m;
  while ((m = re.exec(str(text))) !== null) {
    if (m[1] !== type) continue;
    const der = b64decode(m[2]);
    if (der && der.length) out.push(der);
  }
  return out;
}
// fingerprint is how a trust file writes a SHA-256 (verify.Fingerprint):
// upper-case hex in 16 groups of four, separated by spaces.
function fingerprint(bytes) {
  const h = hex(sha256(bytes)).toUpperCase();
  const groups = [];
  for (let i = 0; i < h.length; i += 4) groups.push(h.slice(i, i + 4));
  return groups.join(" ");
}

// ---- the bundle's events, read for display. Records are the canonical
// JSON texts in events[].record; entries give type and time when records
// are withheld.
const SERVICE = "urn:custody:service:custodyd";
const TYPES = {
  ingest: { label: "Logged (ingest)", short: "logged" },
  release: { label: "Release offered", short: "released" },
  accept: { label: "Release accepted", short: "accepted" },
  release_cancelled: { label: "Release withdrawn", short: "withdrawn" },
  release_expired: { label: "Release lapsed", short: "lapsed" },
  access: { label: "Access", short: "access" },
  analysis: { label: "Analysis", short: "analysis" },
  derivation: { label: "Derivation", short: "derivation" },
  verification: { label: "Integrity check", short: "integrity" },
  submission_to_court: { label: "Submitted to court", short: "to court" },
  annotation: { label: "Note", short: "note" },
};
const knownType = (t) => typeof t === "string" && Object.prototype.hasOwnProperty.call(TYPES, t);
const typeInfo = (t) => (knownType(t) ? TYPES[t] : null) || { label: t ? "Unknown type: " + t : "Unreadable event", short: t ? String(t).slice(0, 10) : "?" };

// eventFailures maps an event's seq to the names of its failed checks
// ("record commitment", "receipt"...), from the report's checks named
// "event #N (log L): what".
function eventFailures(report) {
  const out = Object.create(null);
  for (const c of arr(obj(report).checks).map(obj)) {
    if (c.ok === true) continue;
    const m = /^event #(\d+) \(log \d+\): (.*)$/.exec(str(c.name));
    if (m) (out[m[1]] = out[m[1]] || []).push(m[2]);
  }
  return out;
}

function readEvents(bundle, report) {
  const failures = eventFailures(report);
  return arr(obj(bundle).events).map((raw, i) => {
    const ev = obj(raw);
    const entry = obj(tryJSON(ev.entry));
    const rec = tryJSON(ev.record);
    const r = obj(rec);
    return {
      pos: i,
      seq: typeof ev.seq === "number" ? ev.seq : i,
      logIndex: ev.log_index,
      type: str(r.type || entry.type),
      time: str(r.recorded_at || entry.time),
      hasRecord: isObj(rec),
      performer: str(r.performer),
      counterparty: str(r.counterparty),
      purpose: str(r.purpose),
      details: obj(r.details),
      failed: failures[String(typeof ev.seq === "number" ? ev.seq : i)] || [],
    };
  });
}

// party splits an identity URI (urn:custody:<role>:<name>) for display.
function party(id) {
  const m = /^urn:custody:([^:]+):(.+)$/.exec(str(id));
  if (!m) return { name: str(id) || "(unnamed)", role: "", id: str(id) };
  if (id === SERVICE) return { name: "the service", role: "custodyd", id };
  return { name: m[2], role: m[1], id };
}
function whoHTML(id) {
  if (!id) return "";
  const p = party(id);
  return `<span class="who-name">${esc(p.name)}</span>${p.role ? ` <span class="who-role">(${esc(p.role)})</span>` : ""}`;
}

// custody replays the hand-offs for the picture: who held the item from
// which event to which, and every release with how it ended. It never
// judges (the verifier did); a history that breaks the rules is drawn as
// it reads.
function custody(evs) {
  const periods = [], releases = [];
  let holder = null, pending = null;
  const close = (at, how) => { if (holder) { holder.to = at; holder.how = how; periods.push(holder); holder = null; } };
  for (const e of evs) {
    switch (e.type) {
      case "ingest":
        close(e.pos, "");
        if (e.performer) holder = { who: e.performer, from: e.pos, to: -1, how: "" };
        break;
      case "release":
        if (pending) { pending.to = e.pos; pending.end = "superseded"; releases.push(pending); }
        pending = { seq: e.seq, from: e.performer, recipient: e.counterparty, start: e.pos, to: -1, end: "pending" };
        break;
      case "accept":
        if (pending) { pending.to = e.pos; pending.end = "accepted"; releases.push(pending); pending = null; }
        close(e.pos, "handed over");
        if (e.performer) holder = { who: e.performer, from: e.pos, to: -1, how: "" };
        break;
      case "release_cancelled":
      case "release_expired":
        if (pending) { pending.to = e.pos; pending.end = e.type === "release_cancelled" ? "withdrawn" : "lapsed"; releases.push(pending); pending = null; }
        break;
    }
  }
  if (holder) periods.push(holder);
  if (pending) releases.push(pending);
  return { periods, releases };
}

// ---- the timeline picture (inline SVG). The horizontal axis is the
// order of events, one column each, not a time scale: the times are
// written under the columns. Long histories are cut into rows of at most
// MAX_COLS columns, each its own figure (a page break never cuts one).
const W = 680, LABEL_W = 142, PAD_R = 8, HEAD_H = 30, LANE_H = 44, FOOT_H = 36, MAX_COLS = 10;
const PALETTE = ["#2b6cb0", "#2f855a", "#b7791f", "#6b46c1", "#2c7a7b", "#975a16", "#4a5568", "#b83280"];
const INK = "#1a1a1a";
const f1 = (x) => String(Math.round(x * 10) / 10);

// marker draws an event's symbol centred at (x, y).
function marker(type, x, y, color) {
  const c = color || INK;
  switch (type) {
    case "ingest": return `<circle cx="${f1(x)}" cy="${f1(y)}" r="5.5" fill="${INK}" stroke="#fff" stroke-width="1.5"/>`;
    case "access": return `<ellipse cx="${f1(x)}" cy="${f1(y)}" rx="6.5" ry="4" fill="#fff" stroke="${c}" stroke-width="1.4"/><circle cx="${f1(x)}" cy="${f1(y)}" r="1.9" fill="${c}"/>`;
    case "analysis": return `<rect x="${f1(x - 4.5)}" y="${f1(y - 4.5)}" width="9" height="9" fill="#fff" stroke="${INK}" stroke-width="1.5"/>`;
    case "derivation": return `<path d="M${f1(x)} ${f1(y - 5.5)}L${f1(x + 5.5)} ${f1(y + 4.5)}L${f1(x - 5.5)} ${f1(y + 4.5)}Z" fill="#fff" stroke="${INK}" stroke-width="1.5"/>`;
    case "submission_to_court": return `<path d="M${f1(x)} ${f1(y - 6.5)}L${f1(x + 6.5)} ${f1(y)}L${f1(x)} ${f1(y + 6.5)}L${f1(x - 6.5)} ${f1(y)}Z" fill="${INK}" stroke="#fff" stroke-width="1"/>`;
    case "verification": return `<circle cx="${f1(x)}" cy="${f1(y)}" r="5.5" fill="#fff" stroke="${INK}" stroke-width="1.4"/><path d="M${f1(x - 3)} ${f1(y)}L${f1(x - 0.8)} ${f1(y + 2.4)}L${f1(x + 3.2)} ${f1(y - 2.6)}" fill="none" stroke="${INK}" stroke-width="1.4"/>`;
    case "annotation": return `<path d="M${f1(x - 4.5)} ${f1(y - 5.5)}H${f1(x + 2)}L${f1(x + 4.5)} ${f1(y - 3)}V${f1(y + 5.5)}H${f1(x - 4.5)}Z" fill="#fff" stroke="${INK}" stroke-width="1.3"/>`;
    case "release_cancelled": return `<path d="M${f1(x - 4.5)} ${f1(y - 4.5)}L${f1(x + 4.5)} ${f1(y + 4.5)}M${f1(x + 4.5)} ${f1(y - 4.5)}L${f1(x - 4.5)} ${f1(y + 4.5)}" stroke="#a61b1b" stroke-width="2.2"/>`;
    case "release_expired": return `<circle cx="${f1(x)}" cy="${f1(y)}" r="5.5" fill="#fff" stroke="#a61b1b" stroke-width="1.4"/><path d="M${f1(x)} ${f1(y - 3.5)}V${f1(y)}H${f1(x + 3)}" fill="none" stroke="#a61b1b" stroke-width="1.3"/>`;
    case "release": return `<path d="M${f1(x - 6)} ${f1(y)}H${f1(x + 3)}" stroke="${INK}" stroke-width="1.5" stroke-dasharray="2.5 1.8"/><path d="M${f1(x + 2)} ${f1(y - 3.5)}L${f1(x + 6.5)} ${f1(y)}L${f1(x + 2)} ${f1(y + 3.5)}Z" fill="${INK}"/>`;
    case "accept": return `<path d="M${f1(x - 6)} ${f1(y)}H${f1(x + 3)}" stroke="${INK}" stroke-width="2"/><path d="M${f1(x + 2)} ${f1(y - 3.5)}L${f1(x + 6.5)} ${f1(y)}L${f1(x + 2)} ${f1(y + 3.5)}Z" fill="${INK}"/>`;
  }
  return `<circle cx="${f1(x)}" cy="${f1(y)}" r="5.5" fill="#fff" stroke="#a61b1b" stroke-width="1.3"/><text x="${f1(x)}" y="${f1(y + 3)}" font-size="8" text-anchor="middle" fill="#a61b1b">?</text>`;
}
const arrowHead = (x, y, down, color) => `<path d="M${f1(x - 3.5)} ${f1(down ? y - 6 : y + 6)}L${f1(x)} ${f1(y)}L${f1(x + 3.5)} ${f1(down ? y - 6 : y + 6)}Z" fill="${color}"/>`;
// clip shortens text to about fit px at size px per character.
function clip(text, fit, size) {
  const max = Math.max(3, Math.floor(fit / (size * 0.56)));
  return text.length <= max ? text : text.slice(0, max - 1) + "…";
}

function markerTitle(e) {
  let t = `#${e.seq} ${typeInfo(e.type).label}`;
  if (e.performer) t += " by " + party(e.performer).name;
  if (e.purpose) t += "; purpose: " + e.purpose;
  if (isObj(e.details.authority)) t += "; authority: " + authorityText(e.details.authority);
  if (e.details.note) t += "; " + str(e.details.note);
  return t;
}

// wrap breaks text into at most n lines of about fit px at size px per
// character, the last one clipped.
function wrap(text, fit, size, n) {
  const max = Math.max(3, Math.floor(fit / (size * 0.56)));
  const lines = [];
  let rest = text;
  while (rest.length > max && lines.length < n - 1) {
    let cut = rest.lastIndexOf(" ", max);
    if (cut <= 0) cut = max;
    lines.push(rest.slice(0, cut));
    rest = rest.slice(cut).replace(/^ /, "");
  }
  lines.push(clip(rest, fit, size));
  return lines;
}

function lanesOf(evs, withheld) {
  if (withheld || !evs.some((e) => e.hasRecord)) return [{ id: "", name: withheld ? "holders withheld" : "holders unreadable", role: "", color: "#4a5568" }];
  const ids = [];
  const add = (id) => { if (id && id !== SERVICE && !ids.includes(id)) ids.push(id); };
  for (const e of evs) {
    add(e.performer);
    add(e.counterparty);
  }
  return ids.map((id, i) => { const p = party(id); return { id, name: p.name, role: p.role, color: PALETTE[i % PALETTE.length] }; });
}

function timelineSVG(evs, lanes, cust, from, to, cols, segIndex, unverified) {
  const colW = (W - LABEL_W - PAD_R) / cols;
  const laneY = (i) => HEAD_H + i * LANE_H + LANE_H / 2;
  const colX = (pos) => LABEL_W + (pos - from + 0.5) * colW;
  const H = HEAD_H + lanes.length * LANE_H + FOOT_H;
  const laneOf = (id) => { const i = lanes.findIndex((l) => l.id === id); return i < 0 ? (lanes.length === 1 && lanes[0].id === "" ? 0 : -1) : i; };
  const parts = [];
  const hatch = `cr-hatch-${segIndex}`;
  parts.push(`<svg class="tl" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" role="img" aria-label="custody timeline, events #${esc(evs[from].seq)} to #${esc(evs[to - 1].seq)}">`);
  parts.push(`<defs><pattern id="${hatch}" width="5" height="5" patternUnits="userSpaceOnUse" patternTransform="rotate(45)"><rect width="5" height="5" fill="#fff"/><rect width="2" height="5" fill="#8a8a8a"/></pattern></defs>`);
  if (unverified) parts.push(`<rect x="0" y="0" width="${W}" height="${H}" fill="#fff5f5"/><text x="4" y="12" font-size="9.5" font-weight="700" fill="#a61b1b">UNVERIFIED</text>`);
  // Lanes: name and role on the left, a rule across.
  lanes.forEach((l, i) => {
    const y = laneY(i);
    parts.push(`<g class="lane" data-party="${esc(l.id)}"><line x1="${LABEL_W - 4}" y1="${f1(y)}" x2="${W - PAD_R}" y2="${f1(y)}" stroke="#d4d4d4" stroke-width="1"/>`);
    parts.push(`<rect x="2" y="${f1(y - 9)}" width="4" height="18" fill="${l.color}"/>`);
    parts.push(`<text x="10" y="${f1(l.role ? y - 1 : y + 3.5)}" font-size="10.5" font-weight="700" fill="${INK}">${esc(clip(l.name, LABEL_W - 16, 10.5))}</text>`);
    if (l.role) parts.push(`<text x="10" y="${f1(y + 10)}" font-size="8.5" fill="#555">${esc(clip(l.role, LABEL_W - 16, 8.5))}</text>`);
    parts.push("</g>");
  });
  // Column heads: the event number and a short name; gridlines.
  let lastDate = "";
  for (let p = from; p < to; p++) {
    const e = evs[p], x = colX(p);
    parts.push(`<line x1="${f1(x)}" y1="${HEAD_H - 3}" x2="${f1(x)}" y2="${f1(HEAD_H + lanes.length * LANE_H)}" stroke="#ececec" stroke-width="1"/>`);
    parts.push(`<text x="${f1(x)}" y="11" font-size="9.5" font-weight="700" text-anchor="middle" fill="${e.failed.length ? "#a61b1b" : INK}">#${esc(e.seq)}</text>`);
    if (e.failed.length) parts.push(`<text class="failed" x="${f1(x)}" y="22" font-size="8" font-weight="700" text-anchor="middle" fill="#a61b1b">FAILED</text>`);
    else parts.push(`<text x="${f1(x)}" y="22" font-size="8" text-anchor="middle" fill="#333">${esc(clip(typeInfo(e.type).short, colW - 2, 8))}</text>`);
    const tp = timeParts(e.time);
    const footY = HEAD_H + lanes.length * LANE_H;
    if (tp) {
      if (tp.date !== lastDate || p === from) parts.push(`<text x="${f1(x)}" y="${footY + 23}" font-size="7.5" text-anchor="middle" fill="#333">${esc(tp.date)}</text>`);
      parts.push(`<text x="${f1(x)}" y="${footY + 32}" font-size="7.5" text-anchor="middle" fill="#333">${esc(tp.time)}</text>`);
      lastDate = tp.date;
    }
  }
  // Custody bands: who held the item, from the event that gave it to
  // them to the one that passed it on.
  const last = evs.length - 1;
  for (const per of cust.periods) {
    const li = laneOf(per.who);
    if (li < 0) continue;
    const end = per.to < 0 ? last + 1 : per.to;
    if (end < from || per.from >= to) continue;
    const x1 = per.from < from ? LABEL_W : colX(per.from);
    const x2 = end >= to ? (per.to < 0 && to - 1 === last ? W - PAD_R - 6 : W - PAD_R) : colX(end);
    const y = laneY(li);
    parts.push(`<rect class="band" data-holder="${esc(per.who)}" data-from="${esc(evs[per.from].seq)}" x="${f1(x1)}" y="${f1(y - 6)}" width="${f1(Math.max(x2 - x1, 1))}" height="12" rx="2" fill="${lanes[li].color}" fill-opacity="0.8"/>`);
    if (per.to < 0 && to - 1 === last) parts.push(`<path d="M${f1(x2)} ${f1(y - 8)}L${f1(x2 + 6)} ${f1(y)}L${f1(x2)} ${f1(y + 8)}Z" fill="${lanes[li].color}"/>`);
  }
  // Releases waiting to be accepted: hatched on the recipient's lane.
  for (const rel of cust.releases) {
    const li = laneOf(rel.recipient);
    if (li < 0) continue;
    const end = rel.to < 0 ? last + 1 : rel.to;
    if (end < from || rel.start >= to) continue;
    const x1 = rel.start < from ? LABEL_W : colX(rel.start);
    const x2 = end >= to ? W - PAD_R : colX(end);
    const y = laneY(li);
    parts.push(`<rect class="pending" data-release="${esc(rel.seq)}" x="${f1(x1)}" y="${f1(y - 4)}" width="${f1(Math.max(x2 - x1, 1))}" height="8" fill="url(#${hatch})" stroke="#8a8a8a" stroke-width="0.8"/>`);
  }
  // Events: hand-offs as arrows between lanes, the rest as symbols on the
  // lane of whoever acted; the number of each is the column head.
  for (let p = from; p < to; p++) {
    const e = evs[p], x = colX(p);
    const a = laneOf(e.performer), b = laneOf(e.counterparty);
    if ((e.type === "release" || e.type === "accept") && a >= 0 && b >= 0 && a !== b && lanes.length > 1) {
      // release: from the releaser (performer) to the recipient, dashed;
      // accept: from the releaser (counterparty) to the accepter, solid.
      const [s, t] = e.type === "release" ? [a, b] : [b, a];
      const ys = laneY(s), yt = laneY(t), down = yt > ys;
      const tip = down ? yt - 7 : yt + 7;
      parts.push(`<g class="ev" data-seq="${esc(e.seq)}" data-type="${esc(e.type)}"><title>${esc(markerTitle(e))}</title><line x1="${f1(x)}" y1="${f1(ys)}" x2="${f1(x)}" y2="${f1(tip)}" stroke="${INK}" stroke-width="${e.type === "accept" ? 2 : 1.5}"${e.type === "release" ? ' stroke-dasharray="3 2"' : ""}/>`);
      parts.push(arrowHead(x, tip + (down ? 1 : -1), down, INK));
      parts.push(`<circle cx="${f1(x)}" cy="${f1(ys)}" r="3" fill="${INK}"/></g>`);
      continue;
    }
    let li = a;
    if (e.type === "release_cancelled" || e.type === "release_expired") li = b >= 0 ? b : a;
    if (li < 0) li = lanes.length === 1 ? 0 : -1;
    if (li < 0) continue;
    const y = laneY(li);
    parts.push(`<g class="ev" data-seq="${esc(e.seq)}" data-type="${esc(e.type)}"><title>${esc(markerTitle(e))}</title>${marker(e.type, x, y, lanes[li].color)}`);
    // An access names its purpose and authority under its mark.
    if (e.type === "access" && e.hasRecord) {
      const auth = isObj(e.details.authority) ? [str(e.details.authority.type), str(e.details.authority.identifier)].filter(Boolean).join(" ") || "authority" : "";
      const lines = wrap(e.purpose || "no purpose stated", colW - 4, 7, 2);
      if (auth) lines.push(...wrap(auth, colW - 4, 7, 2));
      lines.forEach((t, k) => parts.push(`<text x="${f1(x)}" y="${f1(y + 14 + 7.5 * k)}" font-size="7" text-anchor="middle" fill="#333">${esc(clip(t, colW - 4, 7))}</text>`));
    }
    parts.push("</g>");
  }
  parts.push("</svg>");
  return parts.join("");
}

const LEGEND = [
  ["ingest", "logged by the collector (custody begins)"],
  ["release", "release offered to a named recipient"],
  ["accept", "release accepted: custody passes"],
  ["release_cancelled", "release withdrawn"],
  ["release_expired", "release lapsed unanswered"],
  ["access", "access (download), with its purpose"],
  ["analysis", "analysis"],
  ["derivation", "derivation (a new item made from it)"],
  ["verification", "integrity check by the service"],
  ["submission_to_court", "submitted to court"],
  ["annotation", "note"],
];
function legendHTML(types, lanesMany) {
  const items = [];
  items.push(`<li><svg viewBox="0 0 16 16" aria-hidden="true"><rect x="1" y="5" width="14" height="6" rx="1.5" fill="#2b6cb0" fill-opacity="0.8"/></svg>holds the item</li>`);
  if (types.has("release")) items.push(`<li><svg viewBox="0 0 16 16" aria-hidden="true"><rect x="1" y="5" width="14" height="6" fill="#8a8a8a" fill-opacity="0.6"/></svg>offered, not yet accepted (hatched)</li>`);
  for (const [t, text] of LEGEND) {
    if (!types.has(t)) continue;
    let icon;
    if (lanesMany && (t === "release" || t === "accept")) {
      icon = `<line x1="8" y1="1" x2="8" y2="10" stroke="${INK}" stroke-width="${t === "accept" ? 2 : 1.5}"${t === "release" ? ' stroke-dasharray="3 2"' : ""}/>${arrowHead(8, 15, true, INK)}`;
    } else icon = marker(t, 8, 8, "#2b6cb0");
    items.push(`<li><svg viewBox="0 0 16 16" aria-hidden="true">${icon}</svg>${esc(text)}</li>`);
  }
  return `<ul class="legend">${items.join("")}</ul>`;
}

function timelineHTML(evs, lanes, cust, unverified) {
  if (evs.length === 0) return `<p class="note">The bundle holds no events to draw.</p></div>`;
  const segs = Math.ceil(evs.length / MAX_COLS);
  const per = Math.ceil(evs.length / segs);
  const out = [];
  for (let s = 0; s < segs; s++) {
    const from = s * per, to = Math.min(evs.length, from + per);
    if (from >= to) break;
    const cap = segs > 1 ? `<figcaption>Events #${esc(evs[from].seq)} to #${esc(evs[to - 1].seq)} (part ${s + 1} of ${segs})</figcaption>` : "";
    out.push(`<figure class="timeline">${cap}${timelineSVG(evs, lanes, cust, from, to, per, s, unverified)}</figure>`);
    if (s === 0) out.push("</div>");
  }
  const types = new Set(evs.map((e) => (knownType(e.type) ? e.type : "?")));
  out.push(legendHTML(types, lanes.length > 1));
  return out.join("");
}

// ---- the event table.
function authorityText(a) {
  a = obj(a);
  const parts = [];
  const head = [str(a.type), str(a.identifier)].filter(Boolean).join(" ");
  if (head) parts.push(head);
  if (a.issued_by) parts.push("issued by " + str(a.issued_by));
  if (a.valid_from || a.valid_until) parts.push("valid " + (a.valid_from ? "from " + fmtTime(a.valid_from) : "") + (a.valid_from && a.valid_until ? " " : "") + (a.valid_until ? "until " + fmtTime(a.valid_until) : ""));
  return parts.join(", ");
}
function locationText(l) {
  l = obj(l);
  const parts = [];
  if (l.description) parts.push(str(l.description));
  const p = isObj(l.point) ? l.point : l.latitude !== undefined ? l : null;
  if (p && p.latitude !== undefined) {
    let pt = `${str(p.latitude)}, ${str(p.longitude)}`;
    const extra = [];
    if (p.accuracy_m !== undefined) extra.push("±" + str(p.accuracy_m) + " m");
    if (p.altitude_m !== undefined) extra.push("altitude " + str(p.altitude_m) + " m");
    if (extra.length) pt += " (" + extra.join(", ") + ")";
    parts.push("lat, lon " + pt);
  }
  return parts.join("; ");
}
function deviceText(d) {
  d = obj(d);
  const parts = [[str(d.make), str(d.model)].filter(Boolean).join(" ")];
  if (d.serial_number) parts.push("serial " + str(d.serial_number));
  if (d.unique_id) parts.push("id " + str(d.unique_id));
  if (d.software) parts.push("software " + str(d.software));
  return parts.filter(Boolean).join(", ");
}
const SHOWN = new Set(["reason", "expires_at", "release_seq", "expired_at", "note", "outcome", "authority", "instrument", "started_at", "ended_at", "location",
  "related_evidence_id", "related_sha256", "content_ok", "log_ok", "tree_size", "statement", "signature", "certificate", "collector_signature", "storage",
  "case_id", "kind", "size", "media_type", "special", "metadata_sha256"]);
function eventDetails(e, trusted) {
  const d = e.details, out = [];
  const line = (label, value, mono) => { if (value !== "" && value !== undefined) out.push(`<div>${label ? esc(label) + ": " : ""}${mono ? `<span class="mono">${esc(value)}</span>` : esc(value)}</div>`); };
  const signed = (what) => (d.signature ? `<div>${esc(what)}${trusted ? "; the signature verifies" : " (not verified)"}</div>` : "");
  switch (e.type) {
    case "ingest":
      line("", [str(d.kind), d.case_id ? "case " + str(d.case_id) : "", typeof d.size === "number" ? humanSize(d.size) : "", str(d.media_type)].filter(Boolean).join(", "));
      if (isObj(d.collector_signature)) out.push(`<div>capture statement signed by the collector${trusted ? "; the signature verifies" : " (not verified)"}</div>`);
      break;
    case "release":
      out.push(`<div>to ${whoHTML(e.counterparty)}</div>`);
      line("reason", str(d.reason));
      if (d.expires_at) line("lapses unless accepted by", fmtTime(d.expires_at));
      out.push(signed("signed by the releaser"));
      break;
    case "accept":
      out.push(`<div>from ${whoHTML(e.counterparty)}${d.release_seq !== undefined ? ` (release #${esc(str(d.release_seq))})` : ""}</div>`);
      out.push(signed("signed by the recipient"));
      break;
    case "release_cancelled":
      out.push(`<div>release${d.release_seq !== undefined ? " #" + esc(str(d.release_seq)) : ""} to ${whoHTML(e.counterparty)} withdrawn</div>`);
      line("reason", str(d.reason));
      break;
    case "release_expired":
      out.push(`<div>release${d.release_seq !== undefined ? " #" + esc(str(d.release_seq)) : ""} to ${whoHTML(e.counterparty)} lapsed unanswered</div>`);
      if (d.expired_at) line("at", fmtTime(d.expired_at));
      break;
    case "verification":
      line("outcome", str(d.outcome));
      if (d.content_ok !== undefined) line("stored content intact", d.content_ok === true ? "yes" : d.content_ok === false ? "no" : str(d.content_ok));
      if (d.log_ok !== undefined) line("log entries intact", d.log_ok === true ? "yes" : d.log_ok === false ? "no" : str(d.log_ok));
      break;
    default:
      if (e.counterparty) out.push(`<div>with ${whoHTML(e.counterparty)}</div>`);
  }
  line("purpose", e.purpose);
  if (isObj(d.authority)) line("authority", authorityText(d.authority));
  if (e.type !== "release" && e.type !== "release_cancelled") line("note", str(d.note));
  if (e.type !== "verification") line("outcome", str(d.outcome));
  if (isObj(d.instrument)) line("instrument", [str(d.instrument.name), str(d.instrument.version)].filter(Boolean).join(" "));
  if (d.started_at || d.ended_at) line("from–to", [d.started_at ? fmtTime(d.started_at) : "", d.ended_at ? fmtTime(d.ended_at) : ""].join(" – "));
  if (isObj(d.location)) line("place", locationText(d.location));
  if (d.related_evidence_id) line("new item", str(d.related_evidence_id), true);
  if (d.related_sha256) line("its SHA-256", str(d.related_sha256), true);
  if (e.type !== "verification" && d.tree_size !== undefined) line("tree size", str(d.tree_size));
  for (const k of Object.keys(d)) if (!SHOWN.has(k)) line(k, str(d[k]));
  return out.join("");
}
function eventTable(evs, withheld, trusted) {
  const rows = evs.map((e) => {
    const who = e.hasRecord ? whoHTML(e.performer) : `<span class="note">${withheld ? "withheld" : "unreadable"}</span>`;
    const failed = e.failed.length ? `<div class="fail">this event failed its checks: ${esc(e.failed.join(", "))}</div>` : "";
    return `<tr><td class="seq">#${esc(e.seq)}<div class="note">log ${esc(str(e.logIndex))}</div></td><td class="when">${esc(fmtTime(e.time, true))}</td>` +
      `<td class="what">${esc(typeInfo(e.type).label)}</td><td class="who">${who}</td><td>${failed}${e.hasRecord ? eventDetails(e, trusted) : ""}</td></tr>`;
  });
  return `<table class="events"><thead><tr><th>Event</th><th>When (service clock)</th><th>What</th><th>By</th><th>Details</th></tr></thead><tbody>${rows.join("")}</tbody></table>`;
}

function periodsTable(evs, cust, trusted) {
  if (cust.periods.length === 0) return "";
  const at = (p) => (p >= 0 && p < evs.length ? `#${esc(evs[p].seq)}, ${esc(fmtTime(evs[p].time))}` : "");
  const rows = cust.periods.map((p) => `<tr><td>${whoHTML(p.who)}</td><td>${at(p.from)}</td><td>${p.to < 0 ? "still the holder at the last event" : at(p.to) + (p.how ? " (" + esc(p.how) + ")" : "")}</td></tr>`);
  const rel = cust.releases.map((r) => `<tr><td>#${esc(r.seq)}</td><td>${whoHTML(r.from)}</td><td>${whoHTML(r.recipient)}</td><td>${r.to < 0 ? "still pending at the last event" : esc(r.end) + " at " + at(r.to)}</td></tr>`);
  return `<h3>${trusted ? "Custody periods" : "Custody periods (unverified)"}</h3><table><thead><tr><th>Holder</th><th>From</th><th>Until</th></tr></thead><tbody>${rows.join("")}</tbody></table>` +
    (rel.length ? `<h3>Hand-offs offered</h3><table><thead><tr><th>Release</th><th>Offered by</th><th>To</th><th>How it ended</th></tr></thead><tbody>${rel.join("")}</tbody></table>` : "");
}

// ---- the item's facts.
function factRows(report, bundle, trusted) {
  const ev = obj(obj(bundle).evidence);
  const named = Object.create(null);
  for (const f of arr(report.facts)) named[str(obj(f).name)] = obj(f);
  // Bound values come from the report's facts; unverified ones from the
  // bundle as it stands.
  const val = (factName, fallback) => (trusted ? (named[factName] ? str(named[factName].value) : "") : fallback === undefined ? "" : str(fallback));
  let md = {};
  if (trusted) md = obj(tryJSON(named.metadata ? named.metadata.value : ""));
  else md = obj(ev.metadata);
  const cap = obj(md.capture), emb = obj(md.embedded);
  const rows = [];
  const row = (label, value, src, mono) => { if (value !== "") rows.push(`<tr><th>${esc(label)}</th><td${mono ? ' class="mono"' : ""}>${esc(value)}</td><td class="src">${esc(src)}</td></tr>`); };
  const ingestRec = trusted ? "the signed ingest record" : "as the bundle states it";
  row("Case", val("case", ev.case_id), trusted ? "the signed ingest record and receipt" : ingestRec);
  row("Kind", val("kind", ev.kind), trusted ? "the signed ingest record and receipt" : ingestRec);
  row("File name", str(md.filename), trusted ? "the collector, logged at ingest" : ingestRec);
  row("Description", str(md.description), trusted ? "the collector, logged at ingest" : ingestRec);
  const size = trusted ? val("size") : typeof ev.size === "number" ? humanSize(ev.size) : str(ev.size);
  row("Size", trusted && /^\d+ bytes$/.test(size) ? humanSize(Number(size.split(" ")[0])) : size, trusted ? "the signed ingest receipt" : ingestRec);
  row("SHA-256", val("sha256", ev.sha256), trusted ? "the log entry and receipt of the ingest" : ingestRec, true);
  row("Media type", val("media type (sniffed by the service)", ev.media_type), trusted ? "read from the bytes by the service; the signed receipt" : ingestRec);
  if (str(md.declared_media_type)) row("Media type declared", str(md.declared_media_type), trusted ? "the collector, logged at ingest" : ingestRec);
  if (trusted) row("Special category", named["special category"] ? (str(named["special category"].value) === "true" ? "yes (biometric data: records restricted)" : "no") : "", "the signed ingest receipt");
  else if (ev.withheld === true) row("Special category", "yes, according to the bundle (records withheld)", ingestRec);
  row("Collected by", trusted ? (named.collector ? party(named.collector.value).name + " (" + str(named.collector.value) + ")" : "") : "", "the signed ingest record");
  row("Logged at", trusted ? fmtTime(val("ingested at (service clock)"), true) : "", "the service's clock, in the log entry");
  row("Captured at, as stated", cap.captured_at ? fmtTime(cap.captured_at, true) : "", trusted ? "the collector's statement, logged at ingest" : ingestRec);
  row("Place, as stated", isObj(cap.location) ? locationText(cap.location) : "", trusted ? "the collector's statement, logged at ingest" : ingestRec);
  row("Device, as stated", isObj(cap.device) ? deviceText(cap.device) : "", trusted ? "the collector's statement, logged at ingest" : ingestRec);
  row("Captured at, embedded in the file", emb.captured_at ? fmtTime(emb.captured_at, true) : "", trusted ? "the file's own metadata (e.g. the camera clock), read at ingest" : ingestRec);
  row("Place, embedded in the file", isObj(emb.location) ? locationText(emb.location) : "", trusted ? "the file's own metadata, read at ingest" : ingestRec);
  row("Device, embedded in the file", isObj(emb.device) ? deviceText(emb.device) : "", trusted ? "the file's own metadata, read at ingest" : ingestRec);
  if (emb.duration !== undefined) row("Duration, embedded in the file", fmtDuration(emb.duration), trusted ? "the file's own metadata, read at ingest" : ingestRec);
  if (arr(md.seizure_attachments).length) row("Seizure attachments", arr(md.seizure_attachments).map(str).join(", "), trusted ? "the collector, logged at ingest" : ingestRec, true);
  row("Evidence id", trusted ? val("evidence id") : str(ev.evidence_id), trusted ? "every log entry and receipt" : ingestRec, true);
  if (trusted) {
    for (const name of ["existed no later than", "same log as the witnesses", "history complete"]) {
      if (named[name]) row({ "existed no later than": "Existed no later than", "same log as the witnesses": "Same log as the witnesses saw", "history complete": "History complete" }[name], str(named[name].value), str(named[name].bound_by));
    }
  }
  return rows.join("");
}

// ---- keys.
function keyRows(keys, bundle, report) {
  keys = obj(keys);
  const bk = obj(obj(bundle).keys);
  const fromBundle = new Set(arr(report.trusted_from_bundle).map(str));
  const rows = [];
  const row = (what, value, fp, src, untrusted) => rows.push(`<tr data-key="${esc(what)}"><th>${esc(what)}</th><td>${value}${fp ? `<div class="mono fp">fingerprint ${esc(fp)}</div>` : ""}</td><td class="src${untrusted ? " fail" : ""}">${esc(src)}</td></tr>`);
  const supplied = "supplied by the court" + (keys.source ? " (" + str(keys.source) + ")" : "");
  const notIndependent = "taken from the bundle itself: NOT an independent trust anchor";
  // The log key: its text, as written (trimmed).
  const lk = str(keys.log_verifier_key).trim();
  if (lk) row("Log verifier key", `<span class="mono">${esc(lk)}</span>`, fingerprint(utf8(lk)), supplied);
  else if (fromBundle.has("log verifier key") && str(bk.log_verifier_key)) row("Log verifier key", `<span class="mono">${esc(bk.log_verifier_key)}</span>`, fingerprint(utf8(str(bk.log_verifier_key))), notIndependent, true);
  else row("Log verifier key", "none", "", "not supplied");
  // The receipt key: its DER SubjectPublicKeyInfo.
  const rk = str(keys.receipt_public_key_pem), rkFromBundle = !rk && fromBundle.has("receipt public key");
  const der = pemBlocks(rk || (rkFromBundle ? str(bk.receipt_public_key_pem) : ""), "PUBLIC KEY")[0];
  if (der) row("Receipt public key", `key id <span class="mono">${esc(hex(sha256(der)))}</span>`, fingerprint(der), rkFromBundle ? notIndependent : supplied, rkFromBundle);
  else row("Receipt public key", rk ? "unreadable" : "none", "", rk ? supplied : "not supplied");
  const certs = (text) => pemBlocks(text, "CERTIFICATE").map((d) => fingerprint(d));
  const ca = certs(keys.client_ca_pem);
  if (ca.length) row("Operator's client CA", ca.map((fp, i) => `<div class="mono fp">certificate ${i + 1}: ${esc(fp)}</div>`).join(""), "", supplied);
  else row("Operator's client CA", "not supplied", "", "the hand-off signers' certificates were not checked against it");
  const policy = str(keys.witness_policy);
  if (policy) row("Witness policy", "given", fingerprint(utf8(policy)), supplied);
  else row("Witness policy", "not supplied", "", "no independent witness was required");
  const tsa = arr(keys.tsa_chain_pems).map((p) => certs(p));
  if (tsa.some((c) => c.length)) row("Timestamp authorities", tsa.map((c, i) => c.map((fp, j) => `<div class="mono fp">authority ${i + 1}, certificate ${j + 1}: ${esc(fp)}</div>`).join("")).join(""), "", supplied);
  else row("Timestamp authorities", "none used", "", "the bundle's timestamps, if any, were not checked");
  return rows.join("");
}

// ---- the verdict, in plain words.
const OUTCOME_WORDS = {
  verified: "VERIFIED",
  verified_with_limits: "VERIFIED, WITH LIMITS",
};
function verdictHTML(report, bundle, meta, withheld) {
  const outcome = str(report.outcome);
  const success = outcome === "verified" || outcome === "verified_with_limits";
  const checks = arr(report.checks).map(obj);
  const failed = checks.filter((c) => c.ok !== true);
  const notChecked = arr(report.not_checked).map(str);
  const fileCheck = checks.find((c) => c.step === "file");
  const fileName = meta.evidence_file && meta.evidence_file.name ? `“${str(meta.evidence_file.name)}”` : "you supplied";
  const out = [];
  if (success) {
    const limits = outcome === "verified_with_limits";
    out.push(`<div class="verdict ${limits ? "limits" : "ok"}" data-outcome="${esc(outcome)}"><p class="word">${OUTCOME_WORDS[outcome]}</p>`);
    out.push(`<p class="lead">${limits
      ? `The custody record of this item is intact as far as it could be checked. Every check made passed against the keys the court supplied: the facts and the custody history below are those the operator's log recorded, and none of it was changed since. ${esc(plural(notChecked.length, "point"))} could not be checked; they are listed under “What could not be checked” and limit what this report shows.`
      : "The custody record of this item is intact. Every check passed against the keys the court supplied: the facts and the custody history below are those the operator's log recorded, and none of it was changed since."}</p><ul>`);
    if (fileCheck) out.push(`<li>The evidence file ${fileName === "you supplied" ? "you supplied" : esc(fileName)} is the logged item: its SHA-256 and size are those logged at ingest.</li>`);
    else out.push("<li>No evidence file was compared: the report proves the item's SHA-256, not that a particular file has it.</li>");
    if (withheld) out.push("<li>The records of this special-category item were withheld from the requester: the report shows the chain's shape (order, kinds and times of events), not who held the item.</li>");
    out.push("<li>What a record says is what its author stated at the time; the log proves it was recorded then and not changed, not that it is true.</li></ul></div>");
    return out.join("");
  }
  out.push(`<div class="verdict not" data-outcome="${esc(outcome || "failed")}"><p class="word">NOT VERIFIED</p>`);
  if (outcome === "untrusted_keys") {
    out.push(`<p class="lead">This bundle checks out only against keys it carries itself, and anyone can make such a bundle: nothing in it is established. Obtain the log and receipt keys (the trust file) from the operator over a separate channel, and verify again.</p>`);
  } else if (!bundle) {
    out.push(`<p class="lead">The file given is not a readable court bundle. Nothing in it can be relied on.</p>`);
  } else {
    out.push(`<p class="lead">${esc(plural(failed.length, "check"))} failed: the bundle was altered or damaged, or it is not what the operator's log recorded. Nothing in it can be relied on; its content is shown below for inspection only, marked UNVERIFIED.</p>`);
  }
  if (fileCheck && fileCheck.ok !== true) out.push(`<p class="lead"><strong>The evidence file ${fileName === "you supplied" ? "you supplied" : esc(fileName)} does not match the logged item.</strong></p>`);
  if (failed.length) out.push(`<div class="failed-list">What failed:<ul>${failed.slice(0, 20).map((c) => `<li>${esc(str(c.name))}: ${esc(str(c.detail))}</li>`).join("")}${failed.length > 20 ? `<li>and ${failed.length - 20} more (listed under “Every check”)</li>` : ""}</ul></div>`);
  out.push("</div>");
  return out.join("");
}

// checksHTML lists every check; each event's passing checks are summed up
// (four per event), failures listed one by one.
function checksHTML(report) {
  const checks = arr(report.checks).map(obj);
  const items = [];
  let evPass = 0, evEvents = new Set();
  for (const c of checks) {
    if (c.step === "event" && c.ok === true) {
      evPass++;
      const m = /^event #(\d+)/.exec(str(c.name));
      if (m) evEvents.add(m[1]);
      continue;
    }
    items.push(c);
  }
  const li = (c) => `<li><span class="step">${esc(str(c.step))}</span> <span class="${c.ok === true ? "pass" : "fail"}">${c.ok === true ? "passed" : "FAILED"}</span> ${esc(str(c.name))}: ${esc(str(c.detail))}</li>`;
  const out = [];
  const firstEvent = items.findIndex((c) => c.step === "event" || c.step === "chain");
  let pos = firstEvent < 0 ? items.length : firstEvent;
  if (evPass) {
    const s = `<li><span class="step">event</span> <span class="pass">passed</span> ${esc(plural(evPass, "check"))} of ${esc(plural(evEvents.size, "event"))}: each event's log entry, record commitment, inclusion in the signed checkpoint and signed receipt</li>`;
    items.splice(pos, 0, { html: s });
  }
  for (const c of items) out.push(c.html || li(c));
  return `<ul class="checks">${out.join("")}</ul>`;
}

// CANNOT_PROVE is what no bundle proves, whatever the court brings
// (docs/VERIFY.md, "What a bundle cannot prove"); the report's own
// cannot_prove, listed first, adds what this bundle leaves open.
const CANNOT_PROVE = [
  "That what a record states is true: the log proves who recorded what and that it was not changed since, not that the statement was right.",
  "Who the person behind an identity is: that is the statement of the operator's certificate authority, not of the log.",
  "When things happened, beyond the bounds a timestamp or a witness gives: an RFC 3161 timestamp shows the log existed no later than its time; nothing bounds how early an event happened, and times inside records are the operator's or the collector's statements.",
  "That the operator shows everyone the same log, unless the court's witnesses cosigned the checkpoint; even then, witnesses colluding with the operator could cosign a fork.",
];

function listOr(items, none) {
  items = arr(items).map(str);
  return items.length ? `<ul>${items.map((t) => `<li>${esc(t)}</li>`).join("")}</ul>` : `<p class="note">${esc(none)}</p>`;
}

function renderReportBody(report, bundle, keys, meta) {
  report = obj(report);
  meta = obj(meta);
  bundle = isObj(bundle) ? bundle : null;
  const outcome = str(report.outcome);
  const trusted = outcome === "verified" || outcome === "verified_with_limits";
  const ev = obj(obj(bundle).evidence);
  const withheld = ev.withheld === true;
  const evs = readEvents(bundle, report);
  const lanes = lanesOf(evs, withheld);
  const cust = custody(evs);
  const id = str(report.evidence_id) || str(ev.evidence_id);
  const unverified = (what) => `<div class="unverified-banner">UNVERIFIED: ${esc(what)} as the bundle states it, shown for inspection only. Do not rely on it.</div>`;
  const out = [];
  out.push(`<main class="custody-report" data-outcome="${esc(outcome || "failed")}">`);
  out.push(`<header><h1>Custody report${id ? " — " + esc(id) : ""}</h1>`);
  const bf = obj(meta.bundle_file);
  out.push(`<p class="sub">Made <span class="generated">${meta.generated_at ? esc(fmtTime(meta.generated_at)) + " " : ""}by ${esc(str(meta.generator) || "Custody")}</span> from the court bundle${bf.name ? " “" + esc(str(bf.name)) + "”" : ""}${bf.sha256 ? ` (SHA-256 <span class="mono">${esc(str(bf.sha256))}</span>)` : ""}, checked offline as docs/VERIFY.md specifies.</p></header>`);
  out.push(verdictHTML(report, bundle, meta, withheld));

  if (bundle) {
    out.push(`<section class="facts"><h2>The item${trusted ? "" : " (UNVERIFIED)"}</h2>`);
    if (trusted) out.push(`<p class="note">These facts were logged when the item was taken in, and have not changed since. What the collector stated is their word; what is “embedded in the file” is what the file itself says (for example the camera's clock), read by the service.</p>`);
    else out.push(unverified("the item's description,"));
    out.push(`<table><tbody>${factRows(report, bundle, trusted)}</tbody></table></section>`);

    out.push(`<section class="custody"><div class="keep"><h2>Who held it, when${trusted ? "" : " (UNVERIFIED)"}</h2>`);
    if (!trusted) out.push(unverified("the custody history,"));
    out.push(`<p class="note">${withheld
      ? "The records of this item were withheld from the requester, so who held it is not shown: only the order, kinds and times of its events, which the public log states."
      : "One row per person or office; a coloured band shows who held the item, an arrow each hand-off (dashed: offered; solid: accepted, signed by both). Columns are the events in order (not to scale); times are the service's clock, in UTC."}</p>`);
    // The heading stays with the first row of the picture (timelineHTML
    // closes the div.keep after it).
    out.push(timelineHTML(evs, lanes, cust, !trusted));
    if (!withheld) out.push(periodsTable(evs, cust, trusted));
    out.push(`</section>`);

    out.push(`<section class="events"><h2>Events${trusted ? "" : " (UNVERIFIED)"}</h2>`);
    if (!trusted) out.push(unverified("every event,"));
    out.push(eventTable(evs, withheld, trusted));
    out.push(`</section>`);
  }

  out.push(`<section class="keys keep"><h2>Keys used</h2><p class="note">Fingerprints are SHA-256 in groups of four, computed as <span class="mono">custody keys</span> computes them: read them back to the operator over a separate channel.</p>`);
  out.push(`<table><tbody>${keyRows(keys, bundle, report)}</tbody></table></section>`);

  out.push(`<section class="limits"><h2>What could not be checked</h2>`);
  out.push(listOr(report.not_checked, "Nothing: every check was made."));
  out.push(`<h3>What no bundle proves</h3>`);
  out.push(listOr(arr(report.cannot_prove).map(str).concat(CANNOT_PROVE), ""));
  const ctx = arr(report.unauthenticated).map(obj);
  if (ctx.length) {
    out.push(`<h3>Unauthenticated context</h3><p class="note">No signature covers these; they are shown for context only and must not be relied on.</p>`);
    out.push(`<table><tbody>${ctx.map((f) => `<tr><th>${esc(str(f.name))}</th><td class="mono">${esc(str(f.value))}</td></tr>`).join("")}</tbody></table>`);
  }
  out.push(`</section>`);

  out.push(`<section class="details"><h2>Technical details: every check</h2>`);
  out.push(`<p class="note">Verifier outcome: <span class="mono">${esc(outcome || "failed")}</span>.${arr(report.trusted_from_bundle).length ? " Keys taken from the bundle itself: " + esc(arr(report.trusted_from_bundle).map(str).join(", ")) + "." : ""}</p>`);
  out.push(checksHTML(report));
  out.push(`</section>`);
  out.push(`<footer>Anyone can repeat these checks offline with the same bundle and keys: <span class="mono">custody verify --bundle BUNDLE --trust TRUST.json</span>, or the service's /verify page. This report is a rendering of that verification; it adds nothing to it.</footer>`);
  out.push(`</main>`);
  return out.join("");
}

function renderReport(report, bundle, keys, meta) {
  const r = obj(report);
  const outcome = str(r.outcome);
  const word = OUTCOME_WORDS[outcome] || "NOT VERIFIED";
  const id = str(r.evidence_id) || str(obj(obj(isObj(bundle) ? bundle : {}).evidence).evidence_id);
  const styleHash = "sha256-" + b64encode(sha256(utf8(REPORT_CSS)));
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src '${styleHash}'; base-uri 'none'; form-action 'none'">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Custody report${id ? " " + esc(id) : ""}: ${esc(word)}</title>
<style>${REPORT_CSS}</style>
</head>
<body class="custody-report-doc">
${renderReportBody(report, bundle, keys, meta)}
</body>
</html>
`;
}

return { renderReport, renderReportBody, css: REPORT_CSS, fingerprint: (text) => fingerprint(utf8(str(text))) };
})();
