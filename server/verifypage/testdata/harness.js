// The conformance harness: runs verifier cases through the page's
// window.custodyVerify and returns the reports. verifypage_test.go
// evaluates it in the served /verify page (in headless Chromium) as
//   (HARNESS)(DATA)
// where DATA is {files: {path: base64}, cases: [...]}. A case names its
// bundle either as raw (a file, verified byte for byte), or as base plus
// patch (RFC 6902 add, remove, replace applied to the parsed base, then
// JSON.stringify: formatting is not significant), and the trust files to
// give: logKey, receiptKey, ca, earlierCheckpoint, policy, file (paths into files), or
// logKeyText/receiptKeyText to give exact strings.
async (data) => {
  const bytes = (path) => Uint8Array.from(atob(data.files[path]), (c) => c.charCodeAt(0));
  const text = (path) => new TextDecoder().decode(bytes(path));
  const unescape = (s) => s.replace(/~1/g, "/").replace(/~0/g, "~");
  function apply(doc, op) {
    const parts = op.path.split("/").slice(1).map(unescape);
    let node = doc;
    for (const p of parts.slice(0, -1)) {
      if (node === null || typeof node !== "object" || !(p in node)) throw new Error("no " + p + " in " + op.path);
      node = node[Array.isArray(node) ? Number(p) : p];
    }
    const last = parts[parts.length - 1];
    if (Array.isArray(node)) {
      const i = Number(last);
      if (!/^[0-9]+$/.test(last) || i > node.length || (i === node.length && op.op !== "add")) throw new Error("bad index " + op.path);
      if (op.op === "add") node.splice(i, 0, structuredClone(op.value));
      else if (op.op === "replace") node[i] = structuredClone(op.value);
      else if (op.op === "remove") node.splice(i, 1);
      else throw new Error("unknown op " + op.op);
      return;
    }
    if (op.op !== "add" && !Object.hasOwn(node, last)) throw new Error(op.op + ": no " + op.path);
    if (op.op === "add" || op.op === "replace") node[last] = structuredClone(op.value);
    else if (op.op === "remove") delete node[last];
    else throw new Error("unknown op " + op.op);
  }
  const results = [];
  for (const c of data.cases) {
    let bundle;
    if (c.raw) bundle = bytes(c.raw);
    else if (c.patch && c.patch.length) {
      const doc = JSON.parse(text(c.base));
      for (const op of c.patch) apply(doc, op);
      bundle = JSON.stringify(doc);
    } else bundle = bytes(c.base);
    const opts = {};
    if (c.logKey) opts.logKey = text(c.logKey).trim();
    if (c.logKeyText !== undefined) opts.logKey = c.logKeyText;
    if (c.receiptKey) opts.receiptKeyPEM = text(c.receiptKey);
    if (c.receiptKeyText !== undefined) opts.receiptKeyPEM = c.receiptKeyText;
    if (c.ca) opts.caPEM = text(c.ca);
    if (c.earlierCheckpoint) opts.earlierCheckpoint = text(c.earlierCheckpoint);
    if (c.policy) opts.policy = text(c.policy);
    if (c.file) opts.fileBytes = bytes(c.file);
    const r = await window.custodyVerify(bundle, opts);
    results.push({
      name: c.name, outcome: r.outcome, ok: r.ok, headline: r.headline,
      checks: r.checks, facts: r.facts, unauthenticated: r.unauthenticated,
      not_checked: r.not_checked, cannot_prove: r.cannot_prove, trusted_from_bundle: r.trusted_from_bundle,
    });
  }
  return results;
}
