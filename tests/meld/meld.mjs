#!/usr/bin/env node
// An independent implementation of Meld Encrypt's v2 ("β") in-place sections,
// written against WebCrypto (crypto.subtle) the way the Obsidian plugin does it,
// so the Python tests can check mirrorfs against something that shares none of
// its code. Reads one JSON object on stdin, writes one JSON object on stdout.
//
//   encrypt  {"passphrase": "...", "items": [{"plaintext": "...", "hint"?: "...",
//             "visible"?: bool, "salt"?: base64, "iv"?: base64}]}
//            -> {"sections": ["%%🔐β ... 🔐%%", ...]}
//            (salt and iv are random unless given: fixed ones are for known-answer tests)
//   decrypt  {"passphrase": "...", "text": "..."}
//            -> {"sections": [{"plaintext": "...", "hint": "..."|null, "visible": bool}, ...]}
//            exit 2 with {"error": "..."} when a section does not open.

const subtle = globalThis.crypto.subtle;
const ITERATIONS = 210000;
const IV_SIZE = 16;
const SALT_SIZE = 16;
const HIDDEN = ['%%🔐β ', ' 🔐%%'];
const VISIBLE = ['🔐β ', ' 🔐'];
const HINT = '💡';

function toBase64(bytes) {
  let s = '';
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s);
}

function fromBase64(text) {
  const s = atob(text);
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return out;
}

async function deriveKey(passphrase, salt) {
  const material = await subtle.importKey(
    'raw', new TextEncoder().encode(passphrase), 'PBKDF2', false, ['deriveKey']);
  return subtle.deriveKey(
    { name: 'PBKDF2', hash: 'SHA-512', salt, iterations: ITERATIONS },
    material,
    { name: 'AES-GCM', length: 256 },
    false,
    ['encrypt', 'decrypt']);
}

async function encryptOne(passphrase, item) {
  const salt = item.salt ? fromBase64(item.salt) : crypto.getRandomValues(new Uint8Array(SALT_SIZE));
  const iv = item.iv ? fromBase64(item.iv) : crypto.getRandomValues(new Uint8Array(IV_SIZE));
  const key = await deriveKey(passphrase, salt);
  const sealed = new Uint8Array(await subtle.encrypt(
    { name: 'AES-GCM', iv }, key, new TextEncoder().encode(item.plaintext)));
  const all = new Uint8Array(iv.length + salt.length + sealed.length);
  all.set(iv, 0);
  all.set(salt, iv.length);
  all.set(sealed, iv.length + salt.length);
  const [prefix, suffix] = item.visible ? VISIBLE : HIDDEN;
  const hint = item.hint ? HINT + item.hint + HINT : '';
  return prefix + hint + toBase64(all) + suffix;
}

// Meld's own scan: each prefix up to its first suffix, non-greedy, then the
// earliest (longest on a tie) of overlapping matches wins.
function findSections(text) {
  const escape = (s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const found = [];
  for (const [prefix, suffix] of [HIDDEN, VISIBLE]) {
    const re = new RegExp(`${escape(prefix)}([\\s\\S]*?)${escape(suffix)}`, 'gu');
    for (const m of text.matchAll(re)) {
      let content = m[1];
      let hint = null;
      if (content.startsWith(HINT)) {
        const close = content.indexOf(HINT, HINT.length);
        if (close < 0) continue;
        hint = content.substring(HINT.length, close);
        content = content.substring(close + HINT.length);
      }
      found.push({ start: m.index, end: m.index + m[0].length, payload: content, hint, visible: prefix === VISIBLE[0] });
    }
  }
  found.sort((a, b) => (a.start - b.start) || (b.end - a.end));
  const kept = [];
  for (const s of found) {
    if (kept.length && s.start < kept[kept.length - 1].end) continue;
    kept.push(s);
  }
  return kept;
}

async function decryptAll(passphrase, text) {
  const out = [];
  for (const section of findSections(text)) {
    const bytes = fromBase64(section.payload);
    const iv = bytes.slice(0, IV_SIZE);
    const salt = bytes.slice(IV_SIZE, IV_SIZE + SALT_SIZE);
    const key = await deriveKey(passphrase, salt);
    let plain;
    try {
      plain = await subtle.decrypt({ name: 'AES-GCM', iv }, key, bytes.slice(IV_SIZE + SALT_SIZE));
    } catch (e) {
      throw new Error(`section ${out.length + 1} does not open`);
    }
    out.push({ plaintext: new TextDecoder().decode(plain), hint: section.hint, visible: section.visible });
  }
  return out;
}

async function readStdin() {
  const chunks = [];
  for await (const chunk of process.stdin) chunks.push(chunk);
  return JSON.parse(Buffer.concat(chunks).toString('utf8'));
}

async function main() {
  const command = process.argv[2];
  const input = await readStdin();
  let result;
  if (command === 'encrypt') {
    const sections = [];
    for (const item of input.items) sections.push(await encryptOne(input.passphrase, item));
    result = { sections };
  } else if (command === 'decrypt') {
    result = { sections: await decryptAll(input.passphrase, input.text) };
  } else {
    throw new Error(`unknown command ${command}: use encrypt or decrypt`);
  }
  process.stdout.write(JSON.stringify(result));
}

main().catch((e) => {
  process.stdout.write(JSON.stringify({ error: String(e.message || e) }));
  process.exit(2);
});
