//! Workflow command escaping, masking order, env-file delimiters and the job summary.

use dhow_github::workflow::{
    Annotation, EnvFile, EnvFileError, Level, Summary, WorkflowLog, annotation_command,
    append_summary, escape_data, escape_property, format_entry, format_entry_with_delimiter,
    mask_values, md_code_block, md_details, md_link, md_table, overwrite_summary, truncate_summary,
};

fn text(bytes: Vec<u8>) -> String {
    String::from_utf8(bytes).expect("utf-8")
}

#[test]
fn data_and_property_escaping_follow_the_runner() {
    assert_eq!(escape_data("100% done\r\nnext"), "100%25 done%0D%0Anext");
    assert_eq!(escape_data("%0A literal"), "%250A literal");
    assert_eq!(escape_data("a:b,c"), "a:b,c");
    assert_eq!(escape_property("a:b,c%\n"), "a%3Ab%2Cc%25%0A");
    assert_eq!(escape_property("%3A"), "%253A");
}

#[test]
fn annotations_carry_escaped_properties() {
    let at = Annotation {
        end_line: Some(4),
        end_column: Some(9),
        ..Annotation::at("config/deploy.yml", 3, Some(5)).titled("servers: bad, really: bad")
    };
    assert_eq!(
        annotation_command(
            Level::Error,
            "unknown key `servrs`\nhint: did you mean servers?",
            &at
        ),
        "::error file=config/deploy.yml,line=3,endLine=4,col=5,endColumn=9,\
         title=servers%3A bad%2C really%3A bad::unknown key `servrs`%0Ahint: did you mean servers?"
    );
    assert_eq!(
        annotation_command(Level::Warning, "50% of hosts", &Annotation::default()),
        "::warning::50%25 of hosts"
    );
    assert_eq!(
        annotation_command(Level::Notice, "n", &Annotation::at("a,b:c.yml", 1, None)),
        "::notice file=a%2Cb%3Ac.yml,line=1::n"
    );
}

#[test]
fn masks_come_first_and_every_later_line_is_redacted() {
    let secrets = ["hunter2-canary", "line-one\nline-two", "", "  "];
    let mut log = WorkflowLog::new(Vec::new(), secrets).expect("log");
    log.group("deploy web on 10.0.0.1").expect("group");
    log.info("password is hunter2-canary, key line-two")
        .expect("info");
    log.error(
        "failed with hunter2-canary",
        &Annotation::at("config/deploy.yml", 2, None),
    )
    .expect("error");
    log.group("next host").expect("group");
    log.warning("w", &Annotation::default()).expect("warning");
    log.notice("n", &Annotation::default()).expect("notice");
    log.debug("d: 100%").expect("debug");
    let out = text(log.finish().expect("finish"));
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines,
        [
            "::add-mask::hunter2-canary",
            "::add-mask::line-one%0Aline-two",
            "::add-mask::line-one",
            "::add-mask::line-two",
            "::group::deploy web on 10.0.0.1",
            "password is ***, key ***",
            "::error file=config/deploy.yml,line=2::failed with ***",
            "::endgroup::",
            "::group::next host",
            "::warning::w",
            "::notice::n",
            "::debug::d: 100%25",
            "::endgroup::",
        ]
    );
    let after_masks = &out[out.find("::group::").expect("group")..];
    assert!(!after_masks.contains("hunter2-canary"));
    assert!(!after_masks.contains("line-two"));
}

#[test]
fn late_masks_and_mask_values() {
    assert_eq!(mask_values("   "), Vec::<String>::new());
    assert_eq!(mask_values("a\r\nb"), ["a\r\nb", "a", "b"]);
    let mut log = WorkflowLog::new(Vec::new(), Vec::<String>::new()).expect("log");
    log.add_mask("tok-123").expect("mask");
    log.add_mask("tok-123").expect("mask twice");
    assert_eq!(log.redact("x tok-123 y"), "x *** y");
    let out = text(log.finish().expect("finish"));
    assert_eq!(out, "::add-mask::tok-123\n");
}

#[test]
fn untrusted_text_cannot_inject_commands() {
    let mut log = WorkflowLog::new(Vec::new(), ["s3cret"]).expect("log");
    log.info("commit message\n::set-env name=X::s3cret")
        .expect("info");
    let out = text(log.finish().expect("finish"));
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 5, "{out}");
    let token = lines[1]
        .strip_prefix("::stop-commands::")
        .expect("stop-commands");
    assert!(token.len() > 20, "token is random: {token}");
    assert_eq!(lines[2], "commit message");
    assert_eq!(lines[3], "::set-env name=X::***");
    assert_eq!(lines[4], format!("::{token}::"));
}

#[test]
fn env_entries_use_heredoc_with_a_random_delimiter() {
    let entry = format_entry_with_delimiter("url", "https://x\ny", "ghadelimiter_D").expect("ok");
    assert_eq!(entry, "url<<ghadelimiter_D\nhttps://x\ny\nghadelimiter_D\n");
    assert_eq!(
        format_entry_with_delimiter("v", "a\nghadelimiter_D\nb", "ghadelimiter_D"),
        Err(EnvFileError::DelimiterInValue("v".into()))
    );
    for bad in ["", "a=b", "a\nb"] {
        assert_eq!(
            format_entry_with_delimiter(bad, "v", "ghadelimiter_D"),
            Err(EnvFileError::InvalidName(bad.into()))
        );
    }
    let one = format_entry("version", "abc").expect("ok");
    let two = format_entry("version", "abc").expect("ok");
    let delim = one
        .lines()
        .next()
        .expect("line")
        .strip_prefix("version<<")
        .expect("heredoc");
    assert!(delim.starts_with("ghadelimiter_") && delim.len() == "ghadelimiter_".len() + 36);
    assert_ne!(one, two, "a fresh delimiter per write");
    assert_eq!(one, format!("version<<{delim}\nabc\n{delim}\n"));
}

#[test]
fn env_file_appends_entries() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("output");
    std::fs::write(&path, "earlier=1\n").expect("seed");
    let file = EnvFile::new(&path);
    file.set("deployment-id", "42").expect("set");
    file.set_all(&[
        ("url", "https://app.example.com"),
        ("log", "l1\nl2 EOF\nEOF"),
    ])
    .expect("set_all");
    let written = std::fs::read_to_string(&path).expect("read");
    assert!(
        written.starts_with("earlier=1\ndeployment-id<<ghadelimiter_"),
        "{written}"
    );
    let parsed = parse_env_file(&written);
    assert_eq!(
        parsed,
        [
            ("earlier".to_owned(), "1".to_owned()),
            ("deployment-id".to_owned(), "42".to_owned()),
            ("url".to_owned(), "https://app.example.com".to_owned()),
            ("log".to_owned(), "l1\nl2 EOF\nEOF".to_owned()),
        ]
    );
}

/// Reads a file the way the runner does (single-line and heredoc entries).
fn parse_env_file(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        if let Some((name, delim)) = line.split_once("<<") {
            let mut value = Vec::new();
            for l in lines.by_ref() {
                if l == delim {
                    break;
                }
                value.push(l);
            }
            out.push((name.to_owned(), value.join("\n")));
        } else if let Some((name, value)) = line.split_once('=') {
            out.push((name.to_owned(), value.to_owned()));
        }
    }
    out
}

#[test]
fn markdown_helpers_escape() {
    assert_eq!(
        md_table(
            &["Host", "Status"],
            &[vec!["10.0.0.1", "ok | <b>"], vec!["h2"]]
        ),
        "| Host | Status |\n|---|---|\n| 10.0.0.1 | ok \\| &lt;b&gt; |\n| h2 |  |\n"
    );
    assert_eq!(
        md_details("Logs <web>", "line\n", false),
        "<details><summary>Logs &lt;web&gt;</summary>\n\nline\n\n</details>\n"
    );
    assert_eq!(md_code_block("", "a ``` b"), "````\na ``` b\n````\n");
    assert_eq!(
        md_link("Roll back [abc]", "https://x/a b"),
        "[Roll back \\[abc\\]](https://x/a%20b)"
    );
}

#[test]
fn summary_snapshot() {
    let mut s = Summary::new();
    s.heading(2, "Deployed app to production")
        .table(
            &["Environment", "Version", "Digest"],
            &[vec!["production", "abc123", "sha256:0f0f"]],
        )
        .heading(3, "Hosts")
        .table(
            &["Host", "Roles", "Status", "Time"],
            &[
                vec!["10.0.0.1", "web", "✅ healthy", "12.3s"],
                vec!["10.0.0.2", "web, job", "❌ failed", "30.0s"],
            ],
        )
        .details(
            "Container log tail (10.0.0.2)",
            &md_code_block("text", "boot\nfatal: DB down"),
            true,
        )
        .list(&[md_link(
            "Roll back to def456",
            "https://github.com/acme/shop/actions/workflows/rollback.yml",
        )])
        .code_block("sh", "gh workflow run rollback.yml -f version=def456");
    let expected = "\
## Deployed app to production

| Environment | Version | Digest |
|---|---|---|
| production | abc123 | sha256:0f0f |

### Hosts

| Host | Roles | Status | Time |
|---|---|---|---|
| 10.0.0.1 | web | ✅ healthy | 12.3s |
| 10.0.0.2 | web, job | ❌ failed | 30.0s |

<details open><summary>Container log tail (10.0.0.2)</summary>

```text
boot
fatal: DB down
```

</details>

- [Roll back to def456](https://github.com/acme/shop/actions/workflows/rollback.yml)

```sh
gh workflow run rollback.yml -f version=def456
```
";
    assert_eq!(s.as_str(), expected);
    assert_eq!(s.render(), expected);

    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("summary.md");
    append_summary(&path, &s).expect("append");
    append_summary(&path, &s).expect("append again");
    assert_eq!(
        std::fs::read_to_string(&path).expect("read"),
        format!("{expected}{expected}")
    );
    overwrite_summary(&path, &s).expect("overwrite");
    assert_eq!(std::fs::read_to_string(&path).expect("read"), expected);
}

#[test]
fn oversized_summaries_are_cut_on_a_line() {
    let big = "row\n".repeat(100);
    let cut = truncate_summary(&big, 120);
    assert!(cut.len() <= 120, "{}", cut.len());
    assert!(cut.starts_with("row\nrow\n"));
    assert!(cut.ends_with("_Summary truncated: it exceeded GitHub's size limit._\n"));
    assert_eq!(truncate_summary("short", 120), "short");
}
