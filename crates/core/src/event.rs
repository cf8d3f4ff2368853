//! Events: what happened during a run, as plain data. Executors emit them; the binary's reporters
//! render them for a terminal, for GitHub Actions, or as JSON lines. Commands inside events are
//! already redacted (`cmd::for_log`), so no reporter can leak a secret.

use std::time::Duration;

use serde::Serialize;

/// Which output stream a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Stream {
    Stdout,
    Stderr,
}

/// How a step ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "status")]
pub enum Outcome {
    Succeeded,
    Failed { message: String },
    Skipped { reason: String },
}

/// One thing that happened.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "event")]
pub enum Event {
    /// A command of dhow started, on these hosts.
    RunStarted { command: String, hosts: Vec<String> },
    /// A named step started, on a host or locally (`host: None`).
    StepStarted { step: String, host: Option<String> },
    /// A command is about to run (already redacted).
    CommandStarted {
        host: Option<String>,
        command: String,
    },
    /// A line a command printed.
    Output {
        host: Option<String>,
        stream: Stream,
        line: String,
    },
    /// A step ended.
    StepFinished {
        step: String,
        host: Option<String>,
        #[serde(serialize_with = "millis")]
        elapsed: Duration,
        outcome: Outcome,
    },
    /// Something the user should know that is not a failure.
    Warning { message: String },
    /// The app image is in the registry (built and pushed, or adopted): its version tag, every
    /// tag pushed, and the registry's digest (`sha256:...`) when it could be read.
    ImagePushed {
        image: String,
        tags: Vec<String>,
        digest: Option<String>,
    },
    /// A host that lacked an image and could not pull it got it from the local docker
    /// (`docker save` here streamed to `docker load` there): `bytes` of image archive.
    ImageSent {
        host: String,
        image: String,
        bytes: u64,
    },
    /// A command of dhow ended; `timings` is the breakdown by phase.
    RunFinished {
        succeeded: bool,
        #[serde(serialize_with = "millis")]
        elapsed: Duration,
        timings: Vec<Timing>,
    },
}

/// Time spent in one phase of a run (build, push, pull, boot, health, ...).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Timing {
    pub phase: String,
    #[serde(serialize_with = "millis")]
    pub elapsed: Duration,
}

fn millis<S: serde::Serializer>(duration: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_u64(u64::try_from(duration.as_millis()).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_pushed_carries_the_digest() {
        let event = Event::ImagePushed {
            image: "r/app:v1".to_owned(),
            tags: vec!["r/app:v1".to_owned(), "r/app:latest".to_owned()],
            digest: Some("sha256:ab".to_owned()),
        };
        assert_eq!(
            serde_json::to_string(&event).expect("json"),
            r#"{"event":"image_pushed","image":"r/app:v1","tags":["r/app:v1","r/app:latest"],"digest":"sha256:ab"}"#
        );
    }

    #[test]
    fn serializes_as_tagged_json() {
        let event = Event::StepFinished {
            step: "boot".to_owned(),
            host: Some("1.1.1.1".to_owned()),
            elapsed: Duration::from_millis(1500),
            outcome: Outcome::Failed {
                message: "unhealthy".to_owned(),
            },
        };
        assert_eq!(
            serde_json::to_string(&event).expect("json"),
            r#"{"event":"step_finished","step":"boot","host":"1.1.1.1","elapsed":1500,"outcome":{"status":"failed","message":"unhealthy"}}"#
        );
    }
}
