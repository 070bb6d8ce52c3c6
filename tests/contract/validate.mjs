// The contract as data, checked by validators that are not ours:
// subjects/schema/asyncapi.json by @asyncapi/parser (AsyncAPI 3.0, no
// error-level diagnostic), each JSON Schema compiled by ajv (draft
// 2020-12, strict), and every valid case of the JSON vectors
// (subjects/vectors/json) accepted by its kind's schema. The schemas are
// weaker than the decoder (byte limits, cross-field rules beyond anyOf),
// so invalid cases are not asked to fail here; one mutation per kind is
// (a required field removed), so that a schema that accepted anything
// would not pass.
//
// usage: node validate.mjs SOURCE_DIR
import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { Parser } from "@asyncapi/parser";
import Ajv2020 from "ajv/dist/2020.js";
import addFormats from "ajv-formats";

const src = process.argv[2];
const schemaDir = join(src, "subjects", "schema");
const vecDir = join(src, "subjects", "vectors", "json");
let failures = 0;
const fail = (msg) => {
  console.error("FAIL " + msg);
  failures++;
};

// AsyncAPI
const parser = new Parser();
const text = readFileSync(join(schemaDir, "asyncapi.json"), "utf8");
const { document, diagnostics } = await parser.parse(text);
const errors = diagnostics.filter((d) => d.severity === 0);
for (const d of errors) fail(`asyncapi.json: ${d.message} at ${d.path.join("/")}`);
if (!document) fail("asyncapi.json did not parse");
else {
  const channels = document.channels().all().length;
  const operations = document.operations().all().length;
  console.log(`asyncapi.json: ${channels} channels, ${operations} operations, ` +
              `${diagnostics.length - errors.length} warnings`);
  if (channels < 20) fail(`asyncapi.json: only ${channels} channels`);
  for (const d of diagnostics.filter((d) => d.severity !== 0))
    console.log(`  note: ${d.message} at ${d.path.join("/")}`);
}

// JSON Schemas
// strict, except that a "required" inside anyOf (lead.scored: contact_id
// or phone) may name properties declared at the top
const ajv = new Ajv2020({ strict: true, strictRequired: false, allErrors: true });
addFormats(ajv);
const schemas = {};
for (const f of readdirSync(schemaDir).sort()) {
  if (!f.endsWith(".json") || f === "asyncapi.json") continue;
  try {
    schemas[f.replace(/\.json$/, "")] = ajv.compile(
      JSON.parse(readFileSync(join(schemaDir, f), "utf8")));
  } catch (e) {
    fail(`${f}: ${e.message}`);
  }
}
console.log(`${Object.keys(schemas).length} JSON Schemas compiled`);

// the valid vectors against their kind's schema
let accepted = 0;
for (const f of readdirSync(vecDir).sort()) {
  const doc = JSON.parse(readFileSync(join(vecDir, f), "utf8"));
  if (doc.format !== "vox-vectors/1") continue; // requests.json: no JSON form
  const validate = schemas[doc.kind];
  if (!validate) {
    fail(`${f}: no schema for ${doc.kind}`);
    continue;
  }
  let first = null;
  for (const c of doc.cases) {
    if (c.error) continue;
    if (!validate(c.json)) fail(`${doc.kind}: "${c.name}": ${ajv.errorsText(validate.errors)}`);
    else accepted++;
    first ??= c.json;
  }
  // the schema is not a yes-to-everything: without a required field, no
  const required = validate.schema.required ?? [];
  if (first && required.length) {
    const broken = { ...first };
    delete broken[required[required.length - 1]];
    if (validate(broken)) fail(`${doc.kind}: accepted without ${required[required.length - 1]}`);
  }
  if (first && validate({ ...first, org_id: 42 })) fail(`${doc.kind}: accepted org_id 42`);
}
console.log(`${accepted} valid vectors accepted by their schemas`);

// the reply vectors against the reply schemas
const replies = JSON.parse(readFileSync(join(vecDir, "replies.json"), "utf8"));
for (const c of replies.cases) {
  const validate = schemas[`${c.subject}.reply`];
  if (!validate) fail(`replies.json: no schema for ${c.subject}.reply`);
  else if (!validate(c.json)) fail(`replies.json: "${c.name}": ${ajv.errorsText(validate.errors)}`);
}
console.log(`${replies.cases.length} reply vectors accepted by their schemas`);
if (accepted < 500) fail(`only ${accepted} vectors checked`);
if (failures) {
  console.error(`${failures} failures`);
  process.exit(1);
}
console.log("contract ok");
