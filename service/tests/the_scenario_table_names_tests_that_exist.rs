//! `service/tests/scenarios.md` maps the 40 scenarios of `docs/test-scenarios.md` (issue #14)
//! to the tests that check them. This test keeps the table honest: one row per scenario, in
//! order; a status that is `covered`, `partly` or `not covered`; every test it names is a file
//! that exists (a path from the workspace root) and, for `file.rs::name`, a file that defines
//! `fn name`; a `covered` row names a test and misses nothing, a `partly` row names a test and
//! says what is missing, a `not covered` row says what is missing; and the counts below the
//! table agree with the rows.
//!
//! Each check lists every bad row in one failure message.

#![allow(clippy::expect_used)]

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

/// Scenarios in `docs/test-scenarios.md`.
const SCENARIOS: u32 = 40;

/// The statuses a row may have.
const STATUSES: [&str; 3] = ["covered", "partly", "not covered"];

/// One data row of the table.
struct Row {
    /// Line number in `scenarios.md` (1-based), for messages.
    line: usize,
    /// The `#` cell, as written.
    number: String,
    status: String,
    /// The `tests` cell split at `<br>`, each entry trimmed, empty entries dropped.
    tests: Vec<String>,
    missing: String,
}

impl Row {
    fn label(&self) -> String {
        format!("line {} (scenario {:?})", self.line, self.number)
    }
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the service crate's directory has a parent: the workspace root")
        .to_path_buf()
}

fn table_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/scenarios.md")
}

fn table_text() -> String {
    let path = table_path();
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read the scenario table {}: {e}", path.display()))
}

/// The cells of a Markdown table line, or `None` for a line outside the table.
fn cells(line: &str) -> Option<Vec<String>> {
    let inner = line.trim().strip_prefix('|')?;
    let inner = inner.strip_suffix('|').unwrap_or(inner);
    Some(inner.split('|').map(|c| c.trim().to_string()).collect())
}

fn is_separator(cells: &[String]) -> bool {
    cells
        .iter()
        .all(|c| !c.is_empty() && c.chars().all(|ch| ch == '-' || ch == ':'))
}

/// The data rows of the table (not the header, not the separator). Panics, listing every
/// such line, when a table line does not have exactly five cells.
fn rows() -> Vec<Row> {
    let text = table_text();
    let mut rows = Vec::new();
    let mut malformed = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let Some(cells) = cells(line) else { continue };
        if is_separator(&cells) || cells.first().is_some_and(|c| c == "#") {
            continue;
        }
        let [number, _scenario, status, tests, missing] = <[String; 5]>::try_from(cells)
            .unwrap_or_else(|c| {
                malformed.push(format!("line {}: {} cells, not 5", i + 1, c.len()));
                Default::default()
            });
        rows.push(Row {
            line: i + 1,
            number,
            status,
            tests: tests
                .split("<br>")
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .map(str::to_string)
                .collect(),
            missing,
        });
    }
    assert!(
        malformed.is_empty(),
        "malformed rows in {}:\n{}",
        table_path().display(),
        malformed.join("\n")
    );
    rows
}

fn is_ident_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

fn is_identifier(name: &str) -> bool {
    name.chars().next().is_some_and(|c| !c.is_ascii_digit()) && name.chars().all(is_ident_char)
}

/// Whether `source` holds `fn name` as whole words (not `fn name_longer`, not `xfn name`).
fn defines_fn(source: &str, name: &str) -> bool {
    let needle = format!("fn {name}");
    source.match_indices(&needle).any(|(at, _)| {
        let before = source.get(..at).and_then(|s| s.chars().next_back());
        let after = source
            .get(at + needle.len()..)
            .and_then(|s| s.chars().next());
        !before.is_some_and(is_ident_char) && !after.is_some_and(is_ident_char)
    })
}

/// What is wrong with one `tests` entry, if anything.
fn check_entry(root: &Path, entry: &str) -> Option<String> {
    let (file, name) = match entry.split_once("::") {
        Some((file, name)) => (file, Some(name)),
        None => (entry, None),
    };
    let relative = Path::new(file);
    if !file.ends_with(".rs")
        || !relative
            .components()
            .all(|c| matches!(c, Component::Normal(_)))
    {
        return Some(format!(
            "{entry:?}: not a relative path to a .rs file under the workspace root"
        ));
    }
    let path = root.join(relative);
    let source = match std::fs::read_to_string(&path) {
        Ok(s) => s,
        Err(e) => return Some(format!("{entry:?}: cannot read {}: {e}", path.display())),
    };
    let name = name?;
    if !is_identifier(name) {
        return Some(format!("{entry:?}: {name:?} is not a function name"));
    }
    (!defines_fn(&source, name)).then(|| format!("{entry:?}: {file} has no `fn {name}`"))
}

#[test]
fn every_scenario_from_1_to_40_has_exactly_one_row_in_order() {
    let rows = rows();
    let mut problems = Vec::new();
    // The line of each scenario's first row.
    let mut seen: BTreeMap<u32, usize> = BTreeMap::new();
    let mut previous: Option<u32> = None;
    for row in &rows {
        let label = row.label();
        let Some(n) = row
            .number
            .parse::<u32>()
            .ok()
            .filter(|n| (1..=SCENARIOS).contains(n))
        else {
            problems.push(format!("{label}: not a scenario number in 1..={SCENARIOS}"));
            continue;
        };
        if let Some(first) = seen.get(&n) {
            problems.push(format!(
                "{label}: scenario {n} already has a row, at line {first}"
            ));
        } else {
            seen.insert(n, row.line);
            if let Some(p) = previous.filter(|&p| n < p) {
                problems.push(format!("{label}: scenario {n} comes after scenario {p}"));
            }
        }
        previous = Some(n);
    }
    for n in (1..=SCENARIOS).filter(|n| !seen.contains_key(n)) {
        problems.push(format!("scenario {n} has no row"));
    }
    assert!(
        problems.is_empty(),
        "the rows of {} are not scenarios 1 to {SCENARIOS}, once each, in order:\n{}",
        table_path().display(),
        problems.join("\n")
    );
}

#[test]
fn every_status_is_covered_partly_or_not_covered() {
    let problems: Vec<String> = rows()
        .iter()
        .filter(|r| !STATUSES.contains(&r.status.as_str()))
        .map(|r| format!("{}: status {:?}", r.label(), r.status))
        .collect();
    assert!(
        problems.is_empty(),
        "statuses other than {STATUSES:?} in {}:\n{}",
        table_path().display(),
        problems.join("\n")
    );
}

#[test]
fn every_named_test_is_a_file_that_exists_and_defines_that_function() {
    let root = workspace_root();
    let mut problems = Vec::new();
    for row in rows() {
        for entry in &row.tests {
            if let Some(p) = check_entry(&root, entry) {
                problems.push(format!("{}: {p}", row.label()));
            }
        }
    }
    assert!(
        problems.is_empty(),
        "{} names tests that do not exist (paths are relative to {}):\n{}",
        table_path().display(),
        root.display(),
        problems.join("\n")
    );
}

#[test]
fn a_covered_row_names_a_test_and_misses_nothing_and_other_rows_say_what_is_missing() {
    let mut problems = Vec::new();
    for row in rows() {
        let label = row.label();
        match row.status.as_str() {
            "covered" => {
                if row.tests.is_empty() {
                    problems.push(format!("{label}: covered, but names no test"));
                }
                if !row.missing.is_empty() {
                    problems.push(format!(
                        "{label}: covered, but says something is missing: {:?}",
                        row.missing
                    ));
                }
            }
            "partly" | "not covered" => {
                if row.status == "partly" && row.tests.is_empty() {
                    problems.push(format!("{label}: partly, but names no test"));
                }
                if row.missing.is_empty() {
                    problems.push(format!(
                        "{label}: {}, but does not say what is missing",
                        row.status
                    ));
                }
            }
            // An unknown status is reported by `every_status_is_covered_partly_or_not_covered`.
            _ => {}
        }
    }
    assert!(
        problems.is_empty(),
        "rows of {} whose `what is missing` disagrees with their status:\n{}",
        table_path().display(),
        problems.join("\n")
    );
}

#[test]
fn the_counts_below_the_table_match_its_rows() {
    let rows = rows();
    let count = |status: &str| rows.iter().filter(|r| r.status == status).count();
    let want = format!(
        "Counts: {} covered, {} partly, {} not covered.",
        count("covered"),
        count("partly"),
        count("not covered")
    );
    let text = table_text();
    let found: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with("Counts:"))
        .collect();
    assert!(
        found == [want.as_str()],
        "{} must have exactly one counts line, and it must match the rows\n  the rows give: {want}\n  the file has: {found:?}",
        table_path().display()
    );
}
