// Checks every ```mermaid block of the Markdown on stdin with Mermaid's own parser
// (mermaid.parse, under jsdom): prints each invalid block with the parser's message and
// exits 1 when any is invalid. Run from the folder where mermaid and jsdom are installed
// (swing_testkit::tools::node_tools), as tests/mermaid.rs does.
import fs from 'fs';
import { createRequire } from 'module';
import { pathToFileURL } from 'url';
// The packages live where the tests installed them (the working directory), not next to
// this script.
const require = createRequire(process.cwd() + '/');
const { JSDOM } = require('jsdom');
const dom = new JSDOM('<!doctype html><html><body></body></html>', { pretendToBeVisual: true });
globalThis.window = dom.window; globalThis.document = dom.window.document;
for (const k of ['navigator','Element','HTMLElement','SVGElement','DOMParser','MutationObserver']) { if (!(k in globalThis)) { try { globalThis[k] = dom.window[k]; } catch(e){} } }
const { default: mermaid } = await import(pathToFileURL(require.resolve('mermaid')).href);
mermaid.initialize({ startOnLoad: false });
const text = fs.readFileSync(0, 'utf8');
const blocks = [...text.matchAll(/```mermaid\n([\s\S]*?)```/g)].map(m => m[1]);
let bad = 0;
for (const [i, b] of blocks.entries()) {
  try { await mermaid.parse(b); } catch (e) { bad++; console.log(`block ${i + 1}: ${e.message || e}`); }
}
console.log(`${blocks.length} blocks, ${bad} invalid`);
process.exit(bad ? 1 : 0);
