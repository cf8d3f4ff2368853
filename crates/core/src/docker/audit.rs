//! The audit log (Kamal's `commands/auditor.rb` and `tags.rb`): one line per action appended to
//! `.kamal/<svc>[-<dest>]-audit.log` on each host, and the `KAMAL_*` tags hooks receive.

use super::scope::{RUN_DIRECTORY, Scope};
use crate::cmd::{Command, escape_shell_value};

/// Kamal's tags, in Kamal's order. `recorded_at` is UTC ISO 8601 (`2026-11-25T13:00:00Z`) and
/// `performer` the git email or user name: both come from the outside world as plain values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tags {
    pub recorded_at: String,
    pub performer: String,
    pub destination: Option<String>,
    pub version: Option<String>,
    /// `<svc>@<abbreviated version>`.
    pub service_version: Option<String>,
    pub service: String,
    /// Extra details in insertion order, e.g. `("role", "web")`, `("hosts", "1.1.1.1")`.
    pub details: Vec<(String, String)>,
}

impl Tags {
    /// A copy with more details appended (a later value for an existing key replaces it in
    /// place, as a Ruby hash merge does).
    #[must_use]
    pub fn with(&self, details: &[(&str, &str)]) -> Self {
        let mut tags = self.clone();
        for (key, value) in details {
            if let Some(slot) = tags
                .details
                .iter_mut()
                .find(|(existing, _)| existing == key)
            {
                (*value).clone_into(&mut slot.1);
            } else {
                tags.details.push(((*key).to_owned(), (*value).to_owned()));
            }
        }
        tags
    }

    /// `KAMAL_<TAG>` pairs for hook environments, in Kamal's order.
    pub fn env(&self) -> Vec<(String, String)> {
        let mut env = vec![
            ("KAMAL_RECORDED_AT".to_owned(), self.recorded_at.clone()),
            ("KAMAL_PERFORMER".to_owned(), self.performer.clone()),
        ];
        if let Some(destination) = &self.destination {
            env.push(("KAMAL_DESTINATION".to_owned(), destination.clone()));
        }
        if let Some(version) = &self.version {
            env.push(("KAMAL_VERSION".to_owned(), version.clone()));
        }
        if let Some(service_version) = &self.service_version {
            env.push(("KAMAL_SERVICE_VERSION".to_owned(), service_version.clone()));
        }
        env.push(("KAMAL_SERVICE".to_owned(), self.service.clone()));
        for (key, value) in &self.details {
            env.push((format!("KAMAL_{}", key.to_uppercase()), value.clone()));
        }
        env
    }

    /// `[recorded_at] [performer] [destination] [details...] line`: version, service version and
    /// service are left out of audit lines, as Kamal does.
    pub fn audit_line(&self, line: &str) -> String {
        let mut out = format!("[{}] [{}]", self.recorded_at, self.performer);
        if let Some(destination) = &self.destination {
            out.push_str(" [");
            out.push_str(destination);
            out.push(']');
        }
        for (_, value) in &self.details {
            out.push_str(" [");
            out.push_str(value);
            out.push(']');
        }
        out.push(' ');
        out.push_str(line);
        out
    }
}

/// `.kamal/<svc>[-<dest>]-audit.log`.
pub fn audit_log_file(scope: &Scope) -> String {
    format!(
        "{RUN_DIRECTORY}/{}-audit.log",
        scope.service_and_destination()
    )
}

/// `mkdir -p .kamal && echo "<line>" >> .kamal/<svc>[-<dest>]-audit.log`.
pub fn record(scope: &Scope, tags: &Tags, line: &str) -> Command {
    Command::combine(
        [
            Command::from_words(["mkdir", "-p", RUN_DIRECTORY]),
            Command::combine(
                [
                    Command::from_words([
                        "echo".to_owned(),
                        escape_shell_value(&tags.audit_line(line)),
                    ]),
                    Command::new(audit_log_file(scope)),
                ],
                ">>",
            ),
        ],
        "&&",
    )
}

/// `tail -n 50 <audit log>`.
pub fn reveal(scope: &Scope) -> Command {
    Command::from_words([
        "tail".to_owned(),
        "-n".to_owned(),
        "50".to_owned(),
        audit_log_file(scope),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cmd::for_exec;

    fn tags(destination: Option<&str>) -> Tags {
        Tags {
            recorded_at: "2023-09-19T12:34:56Z".to_owned(),
            performer: "bob".to_owned(),
            destination: destination.map(str::to_owned),
            version: Some("123".to_owned()),
            service_version: Some("app@123".to_owned()),
            service: "app".to_owned(),
            details: Vec::new(),
        }
    }

    #[test]
    fn record_like_kamal() {
        let scope = Scope::new("app", Some("staging"), "dhh/app");
        assert_eq!(
            for_exec(&record(
                &scope,
                &tags(Some("staging")),
                "app removed container"
            )),
            "mkdir -p .kamal && echo \"[2023-09-19T12:34:56Z] [bob] [staging] app removed container\" >> .kamal/app-staging-audit.log"
        );
    }

    #[test]
    fn record_with_role_detail_and_no_destination() {
        let scope = Scope::new("app", None, "dhh/app");
        let tags = tags(None).with(&[("role", "web")]);
        assert_eq!(
            for_exec(&record(&scope, &tags, "Booted app version 123")),
            "mkdir -p .kamal && echo \"[2023-09-19T12:34:56Z] [bob] [web] Booted app version 123\" >> .kamal/app-audit.log"
        );
    }

    #[test]
    fn reveal_tails_fifty_lines() {
        let scope = Scope::new("app", None, "dhh/app");
        assert_eq!(for_exec(&reveal(&scope)), "tail -n 50 .kamal/app-audit.log");
    }

    #[test]
    fn hook_env_in_kamal_order() {
        let env = tags(Some("production"))
            .with(&[("hosts", "1.1.1.1,1.1.1.2"), ("command", "deploy")])
            .env();
        let keys: Vec<&str> = env.iter().map(|(key, _)| key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "KAMAL_RECORDED_AT",
                "KAMAL_PERFORMER",
                "KAMAL_DESTINATION",
                "KAMAL_VERSION",
                "KAMAL_SERVICE_VERSION",
                "KAMAL_SERVICE",
                "KAMAL_HOSTS",
                "KAMAL_COMMAND"
            ]
        );
    }
}
