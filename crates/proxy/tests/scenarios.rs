//! Counts the §6 scenarios listed in SCENARIOS.md and checks that every test named on a `pass`
//! row exists, so the printed count cannot claim a test that is not there.

use std::path::Path;

#[test]
fn scenarios_listed_and_passing() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(root.join("tests/SCENARIOS.md")).expect("SCENARIOS.md");
    let mut listed = 0;
    let mut passing = 0;
    let mut missing = Vec::new();
    for line in text.lines().filter(|l| l.starts_with("| 6.")) {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        let (id, tests, status) = (cells[1], cells[3], cells[4]);
        listed += 1;
        match status {
            "pass" => {
                passing += 1;
                for reference in tests.split(", ") {
                    let (file, function) = reference.split_once("::").expect("file::function");
                    let path = [root.join("tests").join(file), root.join("src").join(file)]
                        .into_iter()
                        .find(|p| p.exists());
                    let found = path
                        .and_then(|p| std::fs::read_to_string(p).ok())
                        .is_some_and(|src| src.contains(&format!("fn {function}(")));
                    if !found {
                        missing.push(format!("{id}: {reference}"));
                    }
                }
            }
            not_yet if not_yet.starts_with("not yet: ") => {
                assert_eq!(tests, "—", "{id}: a not-yet row names no tests");
            }
            other => panic!("{id}: unknown status {other:?}"),
        }
    }
    assert!(
        missing.is_empty(),
        "pass rows naming missing tests: {missing:?}"
    );
    eprintln!("kamal-proxy §6 scenarios: {passing} of {listed} pass");
    assert_eq!(listed, 97, "every §6 scenario is listed");
}
