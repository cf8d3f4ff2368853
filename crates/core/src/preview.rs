//! The preview lifecycle as data: the command that lists the previews on a host (by their
//! `dhow.preview` label), parsing what it prints, the live-preview cap, which previews a sweep
//! removes, and the sticky pull-request comment. Times come in as values.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::badge::{age_text, parse_timestamp};
use crate::cmd::{Command, shell_single_quote};
use crate::config::preview::{LABEL, PreviewSettings, WhenFull};

/// The hidden marker key of the sticky comment.
pub const COMMENT_KEY: &str = "dhow-preview";

/// `docker ps` of every container carrying the preview label, one tab-separated line each:
/// PR number, service, name, creation time (Unix seconds are not offered by `docker ps`, so
/// Docker's own `CreatedAt`), state.
pub fn list_command() -> Command {
    Command::from_words([
        "docker",
        "ps",
        "--all",
        "--filter",
        &format!("label={LABEL}"),
        "--format",
        &shell_single_quote(&format!(
            "{{{{.Label \"{LABEL}\"}}}}\t{{{{.Label \"service\"}}}}\t{{{{.Names}}}}\t{{{{.CreatedAt}}}}\t{{{{.State}}}}"
        )),
    ])
}

/// The named volumes of a preview's configuration (its own `-pr-<N>` ones; host paths are
/// left alone), which `remove` does not delete (as Kamal's does not) but a torn-down preview must.
pub fn named_volumes(config: &crate::config::Config, pr: u64) -> Vec<String> {
    let mark = crate::config::preview::mark(pr);
    let mut names: Vec<String> = config
        .volumes
        .iter()
        .chain(config.accessories.iter().flat_map(|a| a.volumes.iter()))
        .filter_map(|v| v.split_once(':').map(|(source, _)| source.to_owned()))
        .filter(|source| !source.starts_with(['/', '.', '~', '$']) && source.contains(&mark))
        .collect();
    names.sort();
    names.dedup();
    names
}

/// `docker volume rm --force` of `names`, failing on nothing that is already gone.
pub fn remove_volumes_command(names: &[String]) -> Command {
    Command::from_words(["docker", "volume", "rm", "--force"]).args(names.iter().cloned())
}

/// One preview container seen on a host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreviewContainer {
    pub pr: u64,
    pub service: String,
    pub name: String,
    /// Seconds since the epoch, when Docker's `CreatedAt` parsed.
    pub created: Option<i64>,
    pub state: String,
}

/// Docker's `CreatedAt` (`2026-11-25 15:04:05 +0000 UTC`) in seconds since the epoch.
pub fn parse_docker_time(text: &str) -> Option<i64> {
    let mut parts = text.split_whitespace();
    let date = parts.next()?;
    let time = parts.next()?;
    let offset = parts.next()?;
    let offset = if offset.len() == 5 {
        format!("{}:{}", &offset[..3], &offset[3..])
    } else {
        return None;
    };
    parse_timestamp(&format!("{date}T{time}{offset}"))
}

/// Parses the lines [`list_command`] prints; lines that do not parse are skipped.
pub fn parse_list(output: &str) -> Vec<PreviewContainer> {
    output
        .lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split('\t').collect();
            let [pr, service, name, created, state] = fields.as_slice() else {
                return None;
            };
            Some(PreviewContainer {
                pr: pr.trim().parse().ok()?,
                service: (*service).to_owned(),
                name: (*name).to_owned(),
                created: parse_docker_time(created),
                state: (*state).to_owned(),
            })
        })
        .collect()
}

/// A live preview: its containers across hosts, summed up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LivePreview {
    pub pr: u64,
    /// The newest container's creation: when the preview was last deployed.
    pub last_deployed: Option<i64>,
    pub hosts: Vec<String>,
    pub containers: usize,
}

/// Groups the containers seen on each host by pull request, in PR order.
pub fn live_previews(per_host: &[(String, Vec<PreviewContainer>)]) -> Vec<LivePreview> {
    let mut by_pr: BTreeMap<u64, LivePreview> = BTreeMap::new();
    for (host, containers) in per_host {
        for c in containers {
            let entry = by_pr.entry(c.pr).or_insert_with(|| LivePreview {
                pr: c.pr,
                last_deployed: None,
                hosts: Vec::new(),
                containers: 0,
            });
            entry.containers += 1;
            entry.last_deployed = entry.last_deployed.max(c.created);
            if !entry.hosts.contains(host) {
                entry.hosts.push(host.clone());
            }
        }
    }
    by_pr.into_values().collect()
}

/// What the cap says about deploying preview `pr`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CapDecision {
    /// Under the cap, or the preview is already live (an update).
    Deploy,
    /// Remove these previews first (the oldest ones), then deploy.
    RemoveFirst(Vec<u64>),
    /// Refused: the cap is reached.
    Refuse { live: Vec<u64>, max: u32 },
}

/// Applies `max` and `when_full` to a new or updated preview `pr`.
pub fn cap(live: &[LivePreview], pr: u64, settings: &PreviewSettings) -> CapDecision {
    if live.iter().any(|p| p.pr == pr) {
        return CapDecision::Deploy;
    }
    let max = usize::try_from(settings.max).unwrap_or(usize::MAX);
    if live.len() < max {
        return CapDecision::Deploy;
    }
    match settings.when_full {
        WhenFull::Refuse => CapDecision::Refuse {
            live: live.iter().map(|p| p.pr).collect(),
            max: settings.max,
        },
        WhenFull::RemoveOldest => {
            let mut oldest: Vec<&LivePreview> = live.iter().collect();
            // Unknown times count as oldest; ties go to the lower PR number.
            oldest.sort_by_key(|p| (p.last_deployed.unwrap_or(i64::MIN), p.pr));
            let excess = live.len() + 1 - max;
            CapDecision::RemoveFirst(oldest.iter().take(excess).map(|p| p.pr).collect())
        }
    }
}

/// What GitHub says of a preview's pull request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullState {
    pub open: bool,
    /// `updated_at`, seconds since the epoch.
    pub updated: Option<i64>,
}

/// Why a sweep removes a preview.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SweepReason {
    Closed,
    /// Open, but neither the pull request nor the preview changed for this long (seconds).
    Idle(i64),
    /// GitHub does not know the pull request.
    Unknown,
}

impl SweepReason {
    pub fn text(&self) -> String {
        match self {
            SweepReason::Closed => "the pull request is closed".to_owned(),
            SweepReason::Idle(seconds) => format!("idle for {}", age_text(*seconds)),
            SweepReason::Unknown => "the pull request does not exist".to_owned(),
        }
    }
}

/// The previews a sweep removes, with why: closed pull requests, and open ones idle (no PR
/// update and no deploy) longer than `ttl_seconds`.
pub fn sweep(
    live: &[LivePreview],
    pulls: &BTreeMap<u64, Option<PullState>>,
    ttl_seconds: i64,
    now: i64,
) -> Vec<(u64, SweepReason)> {
    let mut out = Vec::new();
    for preview in live {
        match pulls.get(&preview.pr) {
            Some(Some(pull)) if !pull.open => out.push((preview.pr, SweepReason::Closed)),
            Some(Some(pull)) => {
                let last = pull.updated.max(preview.last_deployed);
                if let Some(last) = last
                    && now - last > ttl_seconds
                {
                    out.push((preview.pr, SweepReason::Idle(now - last)));
                }
            }
            Some(None) => out.push((preview.pr, SweepReason::Unknown)),
            None => {}
        }
    }
    out
}

/// The state the sticky comment shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommentState {
    Deploying,
    Live,
    Failed(String),
    Removed,
    Skipped(String),
}

/// What the sticky comment says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Comment<'a> {
    pub pr: u64,
    pub state: CommentState,
    pub url: Option<&'a str>,
    pub version: Option<&'a str>,
    pub log_url: Option<&'a str>,
    /// How to redeploy or remove by hand.
    pub hint: Option<&'a str>,
}

impl Comment<'_> {
    /// The comment's markdown (the marker is added by the sticky-comment writer).
    pub fn markdown(&self) -> String {
        let (icon, status) = match &self.state {
            CommentState::Deploying => ("🟡", "deploying".to_owned()),
            CommentState::Live => ("🟢", "live".to_owned()),
            CommentState::Failed(why) => ("🔴", format!("failed: {}", one_line(why))),
            CommentState::Removed => ("⚪", "removed".to_owned()),
            CommentState::Skipped(why) => ("⚪", format!("skipped: {}", one_line(why))),
        };
        let mut md = String::new();
        let _ = writeln!(md, "### {icon} Preview of #{} — {status}", self.pr);
        md.push('\n');
        md.push_str("| | |\n|---|---|\n");
        if let Some(url) = self.url {
            if self.state == CommentState::Removed {
                let _ = writeln!(md, "| URL | ~~{url}~~ |");
            } else {
                let _ = writeln!(md, "| URL | {url} |");
            }
        }
        if let Some(version) = self.version {
            let _ = writeln!(md, "| Version | `{version}` |");
        }
        if let Some(log) = self.log_url {
            let _ = writeln!(md, "| Run | [logs]({log}) |");
        }
        if let Some(hint) = self.hint {
            md.push('\n');
            md.push_str(hint);
            md.push('\n');
        }
        md
    }
}

fn one_line(text: &str) -> String {
    let line = text.lines().next().unwrap_or_default().replace('|', "\\|");
    if line.chars().count() > 200 {
        let cut: String = line.chars().take(200).collect();
        format!("{cut}…")
    } else {
        line
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cmd::for_exec;

    #[test]
    fn the_list_command_filters_by_the_label() {
        assert_eq!(
            for_exec(&list_command()),
            "docker ps --all --filter label=dhow.preview --format '{{.Label \"dhow.preview\"}}\t{{.Label \"service\"}}\t{{.Names}}\t{{.CreatedAt}}\t{{.State}}'"
        );
    }

    #[test]
    fn volumes_are_removed_by_name() {
        assert_eq!(
            for_exec(&remove_volumes_command(&[
                "data-pr-7".to_owned(),
                "pg-pr-7".to_owned()
            ])),
            "docker volume rm --force data-pr-7 pg-pr-7"
        );
    }

    #[test]
    fn list_output_parses() {
        let out = "7\tshop-pr-7\tshop-pr-7-web-abc\t2026-11-25 15:04:05 +0000 UTC\trunning\n\
                   junk line\n\
                   9\tshop-pr-9\tshop-pr-9-web-def\t2026-11-25 16:04:05 +0100 CET\texited\n";
        let list = parse_list(out);
        assert_eq!(list.len(), 2);
        assert_eq!(list[0].pr, 7);
        assert_eq!(list[0].created, Some(1_795_619_045));
        assert_eq!(list[1].created, Some(1_795_619_045));
        assert_eq!(list[1].state, "exited");
    }

    fn preview(pr: u64, at: i64) -> LivePreview {
        LivePreview {
            pr,
            last_deployed: Some(at),
            hosts: vec!["h".to_owned()],
            containers: 1,
        }
    }

    #[test]
    fn containers_group_by_pull_request() {
        let c = |pr: u64, at: i64| PreviewContainer {
            pr,
            service: format!("s-pr-{pr}"),
            name: format!("s-pr-{pr}-web"),
            created: Some(at),
            state: "running".to_owned(),
        };
        let live = live_previews(&[
            ("a".to_owned(), vec![c(3, 10), c(3, 30)]),
            ("b".to_owned(), vec![c(3, 20), c(1, 5)]),
        ]);
        assert_eq!(
            live,
            vec![
                LivePreview {
                    pr: 1,
                    last_deployed: Some(5),
                    hosts: vec!["b".to_owned()],
                    containers: 1
                },
                LivePreview {
                    pr: 3,
                    last_deployed: Some(30),
                    hosts: vec!["a".to_owned(), "b".to_owned()],
                    containers: 3
                },
            ]
        );
    }

    #[test]
    fn the_cap_refuses_or_removes_the_oldest() {
        let mut settings = PreviewSettings {
            max: 2,
            ..PreviewSettings::default()
        };
        let live = [preview(1, 100), preview(2, 50)];
        assert_eq!(cap(&live, 1, &settings), CapDecision::Deploy, "an update");
        assert_eq!(cap(&live[..1], 3, &settings), CapDecision::Deploy);
        assert_eq!(
            cap(&live, 3, &settings),
            CapDecision::Refuse {
                live: vec![1, 2],
                max: 2
            }
        );
        settings.when_full = WhenFull::RemoveOldest;
        assert_eq!(cap(&live, 3, &settings), CapDecision::RemoveFirst(vec![2]));
        settings.max = 1;
        assert_eq!(
            cap(&live, 3, &settings),
            CapDecision::RemoveFirst(vec![2, 1])
        );
    }

    #[test]
    fn sweep_removes_closed_idle_and_unknown_pull_requests() {
        let day = 86_400;
        let now = 100 * day;
        let live = [
            preview(1, now - day),
            preview(2, now - 10 * day),
            preview(3, now - 10 * day),
            preview(4, now),
            preview(5, now),
        ];
        let pulls = BTreeMap::from([
            (
                1,
                Some(PullState {
                    open: false,
                    updated: Some(now),
                }),
            ),
            (
                2,
                Some(PullState {
                    open: true,
                    updated: Some(now - 9 * day),
                }),
            ),
            (
                3,
                Some(PullState {
                    open: true,
                    updated: Some(now - day),
                }),
            ),
            (4, None),
        ]);
        assert_eq!(
            sweep(&live, &pulls, 7 * day, now),
            vec![
                (1, SweepReason::Closed),
                (2, SweepReason::Idle(9 * day)),
                (4, SweepReason::Unknown),
            ]
        );
        assert_eq!(SweepReason::Idle(9 * day).text(), "idle for 9d");
    }

    #[test]
    fn the_comment_says_what_happened() {
        let comment = Comment {
            pr: 12,
            state: CommentState::Live,
            url: Some("http://pr-12.preview.example.com"),
            version: Some("0123abc"),
            log_url: Some("https://github.com/acme/shop/actions/runs/1/job/2"),
            hint: Some("Redeploy: re-run the workflow. Remove: close the pull request."),
        };
        assert_eq!(
            comment.markdown(),
            "### 🟢 Preview of #12 — live\n\n| | |\n|---|---|\n\
             | URL | http://pr-12.preview.example.com |\n| Version | `0123abc` |\n\
             | Run | [logs](https://github.com/acme/shop/actions/runs/1/job/2) |\n\n\
             Redeploy: re-run the workflow. Remove: close the pull request.\n"
        );
        let removed = Comment {
            state: CommentState::Removed,
            hint: None,
            ..comment.clone()
        };
        assert!(
            removed
                .markdown()
                .starts_with("### ⚪ Preview of #12 — removed\n")
        );
        assert!(
            removed
                .markdown()
                .contains("| URL | ~~http://pr-12.preview.example.com~~ |")
        );
        let failed = Comment {
            state: CommentState::Failed("boom | bad\nsecond line".to_owned()),
            ..comment
        };
        assert!(
            failed
                .markdown()
                .starts_with("### 🔴 Preview of #12 — failed: boom \\| bad\n")
        );
    }
}
