// Reads vitest's JSON report, prints one closing line "N passed, N failed, N skipped"
// and exits non-zero if anything failed, was skipped, or nothing ran at all.
import { readFileSync } from "node:fs";

const path = process.argv[2];
let report;
try {
  report = JSON.parse(readFileSync(path, "utf8"));
} catch (err) {
  console.error(`test report ${path} could not be read: ${err.message}`);
  process.exit(1);
}
const results = report.testResults.flatMap((file) =>
  file.assertionResults.map((a) => ({ file: file.name, title: a.fullName, status: a.status })),
);
const passed = results.filter((r) => r.status === "passed").length;
const failed = results.filter((r) => r.status === "failed").length;
const skipped = results.filter((r) => ["pending", "skipped", "todo", "disabled"].includes(r.status));
const suiteErrors = report.testResults.filter(
  (f) => f.status === "failed" && f.assertionResults.length === 0,
);
for (const s of skipped) console.error(`skipped: ${s.title} (${s.file})`);
for (const f of suiteErrors) console.error(`test file failed to run: ${f.name}: ${f.message}`);
console.log(`${passed} passed, ${failed + suiteErrors.length} failed, ${skipped.length} skipped`);
if (failed > 0 || suiteErrors.length > 0 || skipped.length > 0 || passed === 0) process.exit(1);
