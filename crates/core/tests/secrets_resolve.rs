//! Resolving secrets: which files are read, Kamal's lookup errors, CI mode (the environment
//! fills in what no file defines, and a miss names the reference), in-process
//! `$(kamal secrets ...)` / `$(dhow secrets ...)`, and how `$(...)` commands are run.

use std::cell::RefCell;
use std::collections::BTreeMap;

use dhow_core::secrets::{
    Invocation, Output, Reference, RunError, Runner, Secrets, SecretsError, SecretsFile, Stderr,
    Stdin, secrets_filenames,
};

/// Records every invocation; `sh -c` commands answer from a table, anything else is missing.
#[derive(Default)]
struct Recorder {
    table: Vec<(&'static str, Output)>,
    calls: RefCell<Vec<Invocation>>,
}

impl Runner for Recorder {
    fn run(&self, invocation: &Invocation) -> Result<Output, RunError> {
        self.calls.borrow_mut().push(invocation.clone());
        let command = invocation
            .args
            .get(1)
            .map(String::as_str)
            .unwrap_or_default();
        self.table
            .iter()
            .find(|(c, _)| *c == command)
            .map(|(_, o)| o.clone())
            .ok_or_else(|| RunError::NotFound {
                program: invocation.program.clone(),
            })
    }
}

fn files(pairs: &[(&str, Option<&str>)]) -> Vec<SecretsFile> {
    pairs
        .iter()
        .map(|(path, contents)| SecretsFile {
            path: (*path).to_owned(),
            contents: contents.map(str::to_owned),
        })
        .collect()
}

fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn load(
    pairs: &[(&str, Option<&str>)],
    env: &BTreeMap<String, String>,
) -> Result<Secrets, SecretsError> {
    Secrets::load(&files(pairs), env, &Recorder::default())
}

fn values(secrets: &Secrets) -> Vec<(String, String)> {
    secrets
        .iter()
        .map(|(k, v)| (k.to_owned(), v.expose().clone()))
        .collect()
}

#[test]
fn file_names_follow_the_destination() {
    assert_eq!(
        secrets_filenames(".kamal/secrets", None),
        [
            ".kamal/secrets-common".to_owned(),
            ".kamal/secrets".to_owned()
        ]
    );
    assert_eq!(
        secrets_filenames("config/vault", Some("staging")),
        [
            "config/vault-common".to_owned(),
            "config/vault.staging".to_owned()
        ]
    );
}

#[test]
fn later_files_win_and_missing_files_are_skipped() {
    let secrets = load(
        &[
            (".kamal/secrets-common", Some("A=common\nB=common\n")),
            (".kamal/secrets", Some("B=main\n")),
        ],
        &env(&[]),
    )
    .unwrap();
    assert_eq!(
        values(&secrets),
        [("A".into(), "common".into()), ("B".into(), "main".into())]
    );
    assert_eq!(secrets.files(), [".kamal/secrets-common", ".kamal/secrets"]);
    assert_eq!(secrets.origin("B"), Some((".kamal/secrets", 1)));
    assert_eq!(secrets.origin("A"), Some((".kamal/secrets-common", 1)));

    let only_main = load(
        &[
            (".kamal/secrets-common", None),
            (".kamal/secrets", Some("X=1\n")),
        ],
        &env(&[]),
    )
    .unwrap();
    assert_eq!(only_main.files(), [".kamal/secrets"]);
    assert_eq!(
        only_main.get("Y").unwrap_err().to_string(),
        "Secret 'Y' not found in .kamal/secrets"
    );
}

#[test]
fn kamal_lookup_errors() {
    let secrets = load(
        &[
            (".kamal/secrets-common", Some("A=1\n")),
            (".kamal/secrets", Some("B=\n")),
        ],
        &env(&[]),
    )
    .unwrap();
    assert_eq!(
        secrets.get("C").unwrap_err().to_string(),
        "Secret 'C' not found in .kamal/secrets-common, .kamal/secrets"
    );
    assert!(secrets.is_present("A"));
    assert!(
        !secrets.is_present("B"),
        "blank values are not present (Kamal's key?)"
    );
    assert_eq!(secrets.get("B").unwrap().expose(), "");

    let none = load(
        &[
            (".kamal/secrets-common", None),
            (".kamal/secrets.production", None),
        ],
        &env(&[]),
    )
    .unwrap();
    assert!(none.is_empty());
    assert_eq!(
        none.get("C").unwrap_err().to_string(),
        "Secret 'C' not found, no secret files (.kamal/secrets-common, .kamal/secrets.production) provided"
    );
}

#[test]
fn ci_mode_reads_the_environment_and_names_the_reference() {
    let secrets = load(
        &[
            (".kamal/secrets-common", None),
            (".kamal/secrets", Some("A=file\n")),
        ],
        &env(&[]),
    )
    .unwrap();
    let process_env = env(&[("A", "env-a"), ("GITHUB_TOKEN", "ghs_x")]);
    assert_eq!(
        secrets.resolve("A", &process_env, None).unwrap().expose(),
        "file",
        "files win"
    );
    assert_eq!(
        secrets
            .resolve("GITHUB_TOKEN", &process_env, None)
            .unwrap()
            .expose(),
        "ghs_x"
    );

    let reference = Reference::new("env.secret", "config/deploy.yml", Some(12));
    let error = secrets
        .resolve("DB_PASSWORD", &process_env, Some(&reference))
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "Secret 'DB_PASSWORD' not found in .kamal/secrets (referenced by env.secret in config/deploy.yml:12)"
    );
    assert_eq!(
        error.hint().unwrap(),
        "define DB_PASSWORD in .kamal/secrets, or set DB_PASSWORD in the environment (CI secrets)"
    );

    let none = load(
        &[(".kamal/secrets-common", None), (".kamal/secrets", None)],
        &env(&[]),
    )
    .unwrap();
    assert_eq!(
        none.resolve("GITHUB_TOKEN", &process_env, None)
            .unwrap()
            .expose(),
        "ghs_x"
    );
    let reference = Reference::new("registry.password", "config/deploy.staging.yml", None);
    assert_eq!(
        none.resolve("KAMAL_REGISTRY_PASSWORD", &process_env, Some(&reference))
            .unwrap_err()
            .to_string(),
        "Secret 'KAMAL_REGISTRY_PASSWORD' not found, no secret files (.kamal/secrets-common, .kamal/secrets) provided (referenced by registry.password in config/deploy.staging.yml)"
    );
}

#[test]
fn resolve_all_reports_every_missing_secret() {
    let secrets = load(&[(".kamal/secrets", Some("A=1\n"))], &env(&[])).unwrap();
    let process_env = env(&[("B", "2")]);
    let at = |line| Reference::new("env.secret", "config/deploy.yml", Some(line));
    let (c, d) = (at(7), at(8));
    let found = secrets
        .resolve_all([("A", None), ("B", None)], &process_env)
        .unwrap();
    assert_eq!(
        found
            .iter()
            .map(|(k, v)| format!("{k}={}", v.expose()))
            .collect::<Vec<_>>(),
        ["A=1", "B=2"]
    );
    let errors = secrets
        .resolve_all(
            [("A", None), ("C", Some(&c)), ("B", None), ("D", Some(&d))],
            &process_env,
        )
        .unwrap_err();
    let messages: Vec<String> = errors.iter().map(ToString::to_string).collect();
    assert_eq!(
        messages,
        [
            "Secret 'C' not found in .kamal/secrets (referenced by env.secret in config/deploy.yml:7)",
            "Secret 'D' not found in .kamal/secrets (referenced by env.secret in config/deploy.yml:8)",
        ]
    );
}

#[test]
fn a_destination_file_replaces_the_plain_one() {
    let secrets = load(
        &[
            (".kamal/secrets-common", Some("A=common\n")),
            (".kamal/secrets.staging", Some("B=staging\n")),
        ],
        &env(&[]),
    )
    .unwrap();
    assert_eq!(
        values(&secrets),
        [
            ("A".into(), "common".into()),
            ("B".into(), "staging".into())
        ]
    );
}

#[test]
fn dollar_names_fall_back_to_earlier_files_after_the_environment() {
    let secrets = load(
        &[
            (".kamal/secrets-common", Some("HOST=db.common\nPORT=1\n")),
            (".kamal/secrets", Some("URL=$HOST:$PORT\n")),
        ],
        &env(&[("PORT", "5432")]),
    )
    .unwrap();
    assert_eq!(secrets.get("URL").unwrap().expose(), "db.common:5432");
}

#[test]
fn commands_run_through_the_shell_with_the_terminal() {
    let runner = Recorder {
        table: vec![("cat config/master.key", Output::ok("abc\n"))],
        ..Recorder::default()
    };
    let secrets = Secrets::load(
        &files(&[(
            ".kamal/secrets",
            Some("RAILS_MASTER_KEY=$(cat config/master.key)\n"),
        )]),
        &env(&[]),
        &runner,
    )
    .unwrap();
    assert_eq!(secrets.get("RAILS_MASTER_KEY").unwrap().expose(), "abc");
    let calls = runner.calls.borrow();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].program, "sh");
    assert_eq!(calls[0].args, ["-c", "cat config/master.key"]);
    assert_eq!(
        calls[0].stdin,
        Stdin::Inherit,
        "commands may prompt (vault login ...)"
    );
    assert_eq!(calls[0].stderr, Stderr::Inherit);
}

#[test]
fn a_failing_command_is_an_error_with_file_line_and_command() {
    let runner = Recorder {
        table: vec![(
            "printenv GHCR_TOKEN | grep . || exit 1",
            Output::failed(1, ""),
        )],
        ..Recorder::default()
    };
    let error = Secrets::load(
        &files(&[
            (".kamal/secrets-common", Some("A=1\n")),
            (".kamal/secrets", Some("# registry\n\nKAMAL_REGISTRY_PASSWORD=$(printenv GHCR_TOKEN | grep . || exit 1)\n")),
        ]),
        &env(&[]),
        &runner,
    )
    .unwrap_err();
    assert_eq!(
        error.to_string(),
        ".kamal/secrets:3: `printenv GHCR_TOKEN | grep . || exit 1` (for KAMAL_REGISTRY_PASSWORD) exited with status 1"
    );
}

#[test]
fn a_missing_program_is_reported_with_its_place() {
    let error = load(&[(".kamal/secrets", Some("A=1\nB=$(nope)\n"))], &env(&[])).unwrap_err();
    let rendered = format!("{error} / {}", std::error::Error::source(&error).unwrap());
    assert_eq!(
        rendered,
        ".kamal/secrets:2: could not evaluate `nope` (for B) / sh: command not found"
    );
}

#[test]
fn kamal_and_dhow_secrets_commands_run_in_process() {
    let runner = Recorder::default();
    let text = "\
SECRETS=$(kamal secrets fetch --adapter test --account acct --from Vault DB REG)
DB=$(kamal secrets extract DB $SECRETS)
REG=$(dhow secrets extract REG ${SECRETS})
OTHER=$(  dhow  secrets fetch -a test --account=a X)
LITERAL=\\$(kamal secrets print)
";
    let secrets = Secrets::load(
        &files(&[(".kamal/secrets", Some(text))]),
        &env(&[]),
        &runner,
    )
    .unwrap();
    assert!(runner.calls.borrow().is_empty(), "nothing was spawned");
    assert_eq!(
        secrets.get("SECRETS").unwrap().expose(),
        r#"\{\"Vault/DB\":\"BD/tluaV\",\"Vault/REG\":\"GER/tluaV\"\}"#
    );
    assert_eq!(secrets.get("DB").unwrap().expose(), "BD/tluaV");
    assert_eq!(secrets.get("REG").unwrap().expose(), "GER/tluaV");
    assert_eq!(secrets.get("OTHER").unwrap().expose(), r#"\{\"X\":\"X\"\}"#);
    assert_eq!(
        secrets.get("LITERAL").unwrap().expose(),
        "$(kamal secrets print)"
    );
}

#[test]
fn in_process_errors_keep_kamals_messages() {
    let cases = [
        (
            "S=$(kamal secrets print)\n",
            "`secrets print` cannot be used inside a secrets file",
        ),
        (
            "S=$(kamal secrets fetch -a test X)\n",
            "No value provided for required options '--account'",
        ),
        (
            "S=$(kamal secrets fetch --account a X)\n",
            "No value provided for required options '--adapter'",
        ),
        (
            "S=$(kamal secrets fetch -a vault --account a X)\n",
            "Unknown secrets adapter: vault",
        ),
        (
            "S=$(kamal secrets extract X {})\n",
            "Could not find secret X",
        ),
        (
            "S=$(kamal secrets show X)\n",
            "Could not find command \"show\" in \"secrets\" namespace.",
        ),
        (
            "S=$(kamal secrets fetch -a test --account a --bogus X)\n",
            "Unknown switches \"--bogus\"",
        ),
        (
            "S=$(kamal secrets extract 'X {})\n",
            "Unmatched quote: \"kamal secrets extract 'X {}\"",
        ),
    ];
    for (text, message) in cases {
        let error = load(&[(".kamal/secrets", Some(text))], &env(&[])).unwrap_err();
        let cause = std::error::Error::source(&error)
            .map(ToString::to_string)
            .unwrap_or_default();
        assert!(
            error
                .to_string()
                .starts_with(".kamal/secrets:1: could not evaluate `kamal secrets "),
            "{error}"
        );
        assert_eq!(cause, message, "{text}");
    }
}

#[test]
fn export_of_an_unset_name_is_an_error_with_its_line() {
    let error = load(&[(".kamal/secrets", Some("A=1\n\nexport B\n"))], &env(&[])).unwrap_err();
    assert_eq!(
        error.to_string(),
        ".kamal/secrets:3: Line \"\\nexport B\\n\" has an unset variable"
    );
}

#[test]
fn print_lines_are_key_equals_value() {
    let secrets = load(&[(".kamal/secrets", Some("A=1\nB='x y'\n"))], &env(&[])).unwrap();
    assert_eq!(secrets.print_lines().expose(), "A=1\nB=x y\n");
    assert_eq!(secrets.len(), 2);
}
