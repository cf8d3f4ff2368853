//! Builds on this machine: runs the commands of `dhow_core::docker::builder` with the local
//! docker CLI (`docker buildx build` when the buildx plugin answers, otherwise plain
//! `docker build` + `docker push`), from Kamal's git clone or the configured context, with the
//! build secrets only in the child's environment; adopts images built elsewhere; reads the pushed
//! digest. Every command, output line and phase is an event; nothing is printed here.

use std::fmt::Write as _;
use std::io::{BufRead as _, BufReader, Read, Write as _};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use dhow_core::Secret;
use dhow_core::cmd::{Command, for_exec, for_log};
use dhow_core::docker::builder::{self, Builder, GitClone, Kind};
use dhow_core::dockerignore::DockerIgnore;
use dhow_core::event::{Event, Outcome, Stream, Timing};

use crate::error::Error;
use crate::facts;

/// A sink for events.
pub type Emit<'a> = &'a (dyn Fn(Event) + Send + Sync);

/// Runs local commands through `sh -c`, streaming their output as events with every secret
/// value replaced by `[REDACTED]`.
pub struct Shell<'a> {
    pub emit: Emit<'a>,
    /// Values that must never be shown (build secrets, the registry password).
    pub redact: Vec<Secret<String>>,
}

impl std::fmt::Debug for Shell<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shell").finish_non_exhaustive()
    }
}

/// How a local command ended and what it printed (redacted).
#[derive(Debug)]
pub struct Ran {
    pub success: bool,
    pub output: String,
}

impl Shell<'_> {
    fn redacted(&self, line: &str) -> String {
        let mut line = line.to_owned();
        for secret in &self.redact {
            let value = secret.expose();
            if !value.is_empty() && line.contains(value.as_str()) {
                line = line.replace(value.as_str(), "[REDACTED]");
            }
        }
        line
    }

    /// Runs `command` in `dir` with `env` added to this process's environment. With `stream`,
    /// each output line becomes an `Output` event; the redacted output is returned either way.
    pub fn run(
        &self,
        command: &Command,
        dir: &Path,
        env: &[(String, Secret<String>)],
        stream: bool,
    ) -> Result<Ran, Error> {
        (self.emit)(Event::CommandStarted {
            host: None,
            command: for_log(command),
        });
        let mut child = std::process::Command::new("sh");
        child
            .arg("-c")
            .arg(for_exec(command))
            .current_dir(dir)
            .stdin(if command.stdin().is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (name, value) in env {
            child.env(name, value.expose());
        }
        let mut child = child.spawn().map_err(|error| Error::Failed {
            message: format!("could not run `{}`: {error}", for_log(command)),
        })?;
        let writer = match (command.stdin(), child.stdin.take()) {
            (Some(data), Some(mut pipe)) => {
                let data = data.clone();
                Some(std::thread::spawn(move || {
                    let _ = pipe.write_all(data.expose().as_bytes());
                }))
            }
            _ => None,
        };
        let (sender, receiver) = mpsc::channel::<(Stream, String)>();
        let readers: Vec<_> = [
            child
                .stdout
                .take()
                .map(|r| (Stream::Stdout, Box::new(r) as Box<dyn Read + Send>)),
            child
                .stderr
                .take()
                .map(|r| (Stream::Stderr, Box::new(r) as Box<dyn Read + Send>)),
        ]
        .into_iter()
        .flatten()
        .map(|(stream, reader)| {
            let sender = sender.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(reader).split(b'\n').map_while(Result::ok) {
                    let line = String::from_utf8_lossy(&line)
                        .trim_end_matches('\r')
                        .to_owned();
                    if sender.send((stream, line)).is_err() {
                        break;
                    }
                }
            })
        })
        .collect();
        drop(sender);
        let mut output = String::new();
        for (stream_kind, line) in receiver {
            let line = self.redacted(&line);
            output.push_str(&line);
            output.push('\n');
            if stream {
                (self.emit)(Event::Output {
                    host: None,
                    stream: stream_kind,
                    line,
                });
            }
        }
        for reader in readers {
            let _ = reader.join();
        }
        if let Some(writer) = writer {
            let _ = writer.join();
        }
        let status = child.wait().map_err(|error| Error::Failed {
            message: format!("could not wait for `{}`: {error}", for_log(command)),
        })?;
        Ok(Ran {
            success: status.success(),
            output,
        })
    }

    /// Runs `command`; a non-zero exit is an error carrying the output's last lines.
    pub fn check(
        &self,
        command: &Command,
        dir: &Path,
        env: &[(String, Secret<String>)],
        stream: bool,
    ) -> Result<String, Error> {
        let ran = self.run(command, dir, env, stream)?;
        if ran.success {
            Ok(ran.output)
        } else {
            Err(failed(command, &ran.output))
        }
    }
}

/// `<command> failed`, with the last 20 lines it printed.
fn failed(command: &Command, output: &str) -> Error {
    let lines: Vec<&str> = output.lines().collect();
    let tail = lines[lines.len().saturating_sub(20)..].join("\n");
    Error::Failed {
        message: if tail.trim().is_empty() {
            format!("`{}` failed", for_log(command))
        } else {
            format!("`{}` failed:\n{tail}", for_log(command))
        },
    }
}

/// What the local docker CLI can do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tooling {
    /// `docker buildx version` answers: Kamal's commands.
    Buildx,
    /// No buildx plugin: plain `docker build` and `docker push`.
    Plain,
}

/// `docker --version`, then `docker buildx version`.
pub fn detect(shell: &Shell<'_>) -> Result<Tooling, Error> {
    let version = Command::from_words(["docker", "--version"]);
    if !shell.run(&version, Path::new("."), &[], false)?.success {
        return Err(Error::Failed {
            message: "Docker is not installed locally".to_owned(),
        });
    }
    if shell
        .run(&Builder::buildx_version(), Path::new("."), &[], false)?
        .success
    {
        Ok(Tooling::Buildx)
    } else {
        Ok(Tooling::Plain)
    }
}

/// Runs a timed phase between `StepStarted` and `StepFinished` events.
fn phase<T>(
    emit: Emit<'_>,
    name: &str,
    timings: &mut Vec<Timing>,
    body: impl FnOnce() -> Result<T, Error>,
) -> Result<T, Error> {
    emit(Event::StepStarted {
        step: name.to_owned(),
        host: None,
    });
    let started = Instant::now();
    let result = body();
    let elapsed = started.elapsed();
    emit(Event::StepFinished {
        step: name.to_owned(),
        host: None,
        elapsed,
        outcome: match &result {
            Ok(_) => Outcome::Succeeded,
            Err(error) => Outcome::Failed {
                message: error
                    .to_string()
                    .lines()
                    .next()
                    .unwrap_or_default()
                    .to_owned(),
            },
        },
    });
    add_timing(timings, name, elapsed);
    result
}

fn add_timing(timings: &mut Vec<Timing>, phase: &str, elapsed: Duration) {
    match timings.iter_mut().find(|timing| timing.phase == phase) {
        Some(timing) => timing.elapsed += elapsed,
        None => timings.push(Timing {
            phase: phase.to_owned(),
            elapsed,
        }),
    }
}

/// The image in the registry after a build or an adoption.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pushed {
    /// `<repository>:<version>`.
    pub image: String,
    /// Every tag pushed (version, then latest).
    pub tags: Vec<String>,
    /// `sha256:...` of what the registry holds under the version tag, when it could be read.
    pub digest: Option<String>,
    /// `build` and `push` phases (a buildx build pushes as it builds: all of it is `build`).
    pub timings: Vec<Timing>,
}

/// What a build needs besides the builder.
#[derive(Debug)]
pub struct BuildOptions<'a> {
    /// The buildx exporter (`--output`, Kamal's default `registry`).
    pub output: &'a str,
    pub no_cache: bool,
    /// `builder.secrets`, resolved: passed to the build process's environment only.
    pub secrets: Vec<(String, Secret<String>)>,
    /// The directory dhow runs in (config and Dockerfile are relative to it).
    pub dir: &'a Path,
}

/// Kamal's `build push` after the login and the pre-build hook: the git clone (when
/// `builder.context` is unset), the Dockerfile check, the builder check/creation, the build and
/// the push; then the digest.
pub fn build_and_push(
    shell: &Shell<'_>,
    builder: &Builder<'_>,
    tooling: Tooling,
    options: &BuildOptions<'_>,
    service: &str,
) -> Result<Pushed, Error> {
    let emit = shell.emit;
    let mut timings = Vec::new();
    let kind = builder.kind();
    if kind != Kind::Pack {
        let dockerfile = builder.dockerfile();
        if !options.dir.join(dockerfile).exists() {
            return Err(Error::Failed {
                message: format!("Missing {dockerfile}"),
            });
        }
    }
    let build_dir = if !builder.context_is_set() && facts::git_used(options.dir) {
        phase(emit, "clone", &mut timings, || {
            prepare_clone(shell, service, options.dir)
        })?
    } else {
        let status = facts::git_status(options.dir);
        if !status.is_empty() {
            emit(Event::Warning {
                message: format!("Building with uncommitted changes:\n {status}"),
            });
        }
        options.dir.to_path_buf()
    };
    let [image, latest] = builder.tags();
    let mut env = options.secrets.clone();
    let digest = match (tooling, kind) {
        (Tooling::Buildx, _) | (Tooling::Plain, Kind::Pack) => {
            for (name, value) in builder.push_env() {
                env.push((name.to_owned(), Secret::new(value.to_owned())));
            }
            if tooling == Tooling::Buildx {
                ensure_builder(shell, builder, options.dir)?;
            }
            let command = builder.push(options.output, options.no_cache);
            phase(emit, "build", &mut timings, || {
                shell.check(&command, &build_dir, &env, true)
            })?;
            if options.output == "registry" && tooling == Tooling::Buildx {
                let inspected = shell.run(
                    &builder::imagetools_inspect(&image),
                    options.dir,
                    &[],
                    false,
                )?;
                builder::parse_digest(&inspected.output)
            } else if options.output == "registry" {
                local_digest(shell, &image, options.dir)?
            } else {
                None
            }
        }
        (Tooling::Plain, _) => {
            plain_build_and_push(shell, builder, options, &build_dir, env, &mut timings)?
        }
    };
    let tags = if options.output == "registry" {
        vec![image.clone(), latest]
    } else {
        Vec::new()
    };
    if !tags.is_empty() {
        emit(Event::ImagePushed {
            image: image.clone(),
            tags: tags.clone(),
            digest: digest.clone(),
        });
    }
    Ok(Pushed {
        image,
        tags,
        digest,
        timings,
    })
}

/// Kamal's `build dev` warnings: the files with uncommitted changes, and the untracked files,
/// that the build context (`context` under `dir`, less its `.dockerignore`) takes in, sorted.
pub fn dev_context_changes(dir: &Path, context: &str) -> [(Vec<String>, &'static str); 2] {
    let context_dir = dir.join(context);
    let ignore = std::fs::read_to_string(context_dir.join(".dockerignore"))
        .map(|text| DockerIgnore::parse(&text))
        .unwrap_or_default();
    let mut prefix = String::new();
    for part in context
        .split('/')
        .filter(|part| !part.is_empty() && *part != ".")
    {
        prefix.push_str(part);
        prefix.push('/');
    }
    let in_context = |files: Vec<String>| -> Vec<String> {
        let mut files: Vec<String> = files
            .into_iter()
            .filter_map(|file| file.strip_prefix(prefix.as_str()).map(str::to_owned))
            .filter(|file| !ignore.excludes(file))
            .collect();
        files.sort();
        files
    };
    [
        (
            in_context(facts::git_modified_files(dir)),
            "Files with uncommitted changes",
        ),
        (
            in_context(facts::git_untracked_files(dir)),
            "Untracked files",
        ),
    ]
}

/// Kamal's `build dev`: builds the working tree as it is (no git clone, no registry login, no
/// pre-build hook) with both tags suffixed `-dirty` (`builder` is [`Builder::tagged_dirty`]),
/// exported as `--output` says (Kamal's default `docker`: the local image store). The buildx
/// builder is checked (and created when missing) first, as `build push` does. Returns the tags.
pub fn build_dev(
    shell: &Shell<'_>,
    builder: &Builder<'_>,
    tooling: Tooling,
    options: &BuildOptions<'_>,
) -> Result<Vec<String>, Error> {
    let mut timings = Vec::new();
    let kind = builder.kind();
    if kind != Kind::Pack {
        let dockerfile = builder.dockerfile();
        if !options.dir.join(dockerfile).exists() {
            return Err(Error::Failed {
                message: format!("Missing {dockerfile}"),
            });
        }
    }
    let env = options.secrets.clone();
    match (tooling, kind) {
        (Tooling::Buildx, _) | (Tooling::Plain, Kind::Pack) => {
            if tooling == Tooling::Buildx {
                ensure_builder(shell, builder, options.dir)?;
            }
            let command = builder.push(options.output, options.no_cache);
            phase(shell.emit, "build", &mut timings, || {
                shell.check(&command, options.dir, &env, true)
            })?;
        }
        (Tooling::Plain, _) => {
            plain_build_and_push(shell, builder, options, options.dir, env, &mut timings)?;
        }
    }
    Ok(builder.tags().to_vec())
}

/// The plain-docker build (no buildx): `docker build`, with `DOCKER_BUILDKIT=1` when build
/// secrets or `ssh` need `BuildKit`, then `docker push` of both tags; the digest of the first.
fn plain_build_and_push(
    shell: &Shell<'_>,
    builder: &Builder<'_>,
    options: &BuildOptions<'_>,
    build_dir: &Path,
    mut env: Vec<(String, Secret<String>)>,
    timings: &mut Vec<Timing>,
) -> Result<Option<String>, Error> {
    let emit = shell.emit;
    let plain = builder
        .plain(options.output, options.no_cache)
        .map_err(|error| Error::Failed {
            message: format!(
                "{error}: install it (the docker-buildx-plugin or docker-buildx package) or change the builder settings"
            ),
        })?;
    for warning in &plain.warnings {
        emit(Event::Warning {
            message: warning.clone(),
        });
    }
    if plain.needs_buildkit {
        env.push(("DOCKER_BUILDKIT".to_owned(), Secret::new("1".to_owned())));
    }
    phase(emit, "build", timings, || {
        let ran = shell.run(&plain.build, build_dir, &env, true)?;
        if ran.success {
            Ok(())
        } else if ran.output.contains("buildx component is missing") {
            Err(Error::Failed {
                message: "build secrets and builder.ssh need BuildKit, and this docker CLI has it only through the buildx plugin, which is not installed locally: install it (the docker-buildx-plugin or docker-buildx package)".to_owned(),
            })
        } else {
            Err(failed(&plain.build, &ran.output))
        }
    })?;
    push_all(shell, &plain.push, options.dir, timings)
}

/// `docker push` of each tag, as the `push` phase; the digest of the first.
fn push_all(
    shell: &Shell<'_>,
    pushes: &[Command],
    dir: &Path,
    timings: &mut Vec<Timing>,
) -> Result<Option<String>, Error> {
    let mut digest = None;
    phase(shell.emit, "push", timings, || {
        for (index, push) in pushes.iter().enumerate() {
            let output = shell.check(push, dir, &[], true)?;
            if index == 0 {
                digest = builder::parse_digest(&output);
            }
        }
        Ok(())
    })?;
    Ok(digest)
}

/// The registry digest of a local image, from `docker image inspect`'s `RepoDigests`.
fn local_digest(shell: &Shell<'_>, image: &str, dir: &Path) -> Result<Option<String>, Error> {
    let repository = image.rsplit_once(':').map_or(image, |(repo, _)| repo);
    let ran = shell.run(&builder::repo_digests(image), dir, &[], false)?;
    Ok(builder::digest_for_repository(&ran.output, repository))
}

/// Kamal's builder check before a build: `inspect_builder`; when it reports a missing or
/// incompatible builder, remove what is left of it and create it again.
fn ensure_builder(shell: &Shell<'_>, builder: &Builder<'_>, dir: &Path) -> Result<(), Error> {
    let Some(inspect) = builder.inspect_builder() else {
        return Ok(());
    };
    let ran = shell.run(&inspect, dir, &[], false)?;
    if ran.success {
        return Ok(());
    }
    let missing = [
        "context not found",
        "no builder",
        "no compatible builder",
        "does not exist",
    ];
    if !missing.iter().any(|text| ran.output.contains(text)) {
        return Err(failed(&inspect, &ran.output));
    }
    (shell.emit)(Event::Warning {
        message: "Missing compatible builder, so creating a new one first".to_owned(),
    });
    if let Some(remove) = builder.remove() {
        let _ = shell.run(&remove, dir, &[], false)?;
    }
    if let Some(create) = builder.create() {
        shell.check(&create, dir, &[], true)?;
    }
    Ok(())
}

/// Kamal's git clone build directory: clone (or reset an existing clone) into
/// `<tmp>/kamal-clones/<svc>-<sha>`, check it is clean and on the local HEAD, else delete it and
/// clone again. Uncommitted local changes are reported as ignored.
fn prepare_clone(shell: &Shell<'_>, service: &str, dir: &Path) -> Result<PathBuf, Error> {
    let pwd = std::path::absolute(dir).map_err(|error| Error::Failed {
        message: format!("could not resolve {}: {error}", dir.display()),
    })?;
    let pwd = pwd.to_string_lossy().into_owned();
    let root = facts::git_root(dir).ok_or_else(|| Error::NoVersion {
        dir: dir.to_path_buf(),
    })?;
    let revision = facts::git_revision(dir).ok_or_else(|| Error::NoVersion {
        dir: dir.to_path_buf(),
    })?;
    let status = facts::git_status(dir);
    if !status.is_empty() {
        (shell.emit)(Event::Warning {
            message: format!(
                "Building from a local git clone, so ignoring these uncommitted changes:\n {status}"
            ),
        });
    }
    let sha = ring::digest::digest(&ring::digest::SHA256, pwd.as_bytes());
    let hex = sha.as_ref().iter().fold(String::new(), |mut hex, byte| {
        let _ = write!(hex, "{byte:02x}");
        hex
    });
    let tmp = std::env::temp_dir();
    let clone = GitClone::new(
        service,
        tmp.to_string_lossy().trim_end_matches('/'),
        &pwd,
        &hex,
        &root,
    );
    let attempt = || -> Result<(), String> {
        std::fs::create_dir_all(&clone.clone_directory)
            .map_err(|error| format!("could not create {}: {error}", clone.clone_directory))?;
        let cloned = shell
            .run(&clone.clone_repository(), dir, &[], false)
            .map_err(|error| error.to_string())?;
        if !cloned.success {
            if !cloned
                .output
                .contains("already exists and is not an empty directory")
            {
                return Err(format!("Failed to clone repo: {}", cloned.output.trim()));
            }
            for step in clone.reset_steps(&revision) {
                let ran = shell
                    .run(&step, dir, &[], false)
                    .map_err(|error| error.to_string())?;
                if !ran.success {
                    return Err(format!("Failed to clone repo: {}", ran.output.trim()));
                }
            }
        }
        validate_clone(shell, &clone, &revision, dir)
    };
    if let Err(message) = attempt() {
        (shell.emit)(Event::Warning {
            message: format!("Error preparing clone: {message}, deleting and retrying..."),
        });
        let _ = std::fs::remove_dir_all(&clone.clone_directory);
        std::fs::create_dir_all(&clone.clone_directory).map_err(|error| Error::Failed {
            message: format!("could not create {}: {error}", clone.clone_directory),
        })?;
        shell.check(&clone.clone_repository(), dir, &[], false)?;
        validate_clone(shell, &clone, &revision, dir)
            .map_err(|message| Error::Failed { message })?;
    }
    Ok(PathBuf::from(&clone.build_directory))
}

fn validate_clone(
    shell: &Shell<'_>,
    clone: &GitClone,
    revision: &str,
    dir: &Path,
) -> Result<(), String> {
    let status = shell
        .run(&clone.status(), dir, &[], false)
        .map_err(|error| error.to_string())?;
    if !status.success {
        return Err(format!(
            "Failed to validate clone: {}",
            status.output.trim()
        ));
    }
    if !status.output.trim().is_empty() {
        return Err(format!(
            "Clone in {} is dirty, {}",
            clone.build_directory,
            status.output.trim()
        ));
    }
    let head = shell
        .run(&clone.revision(), dir, &[], false)
        .map_err(|error| error.to_string())?;
    if head.output.trim() != revision {
        return Err(format!(
            "Clone in {} is not on the correct revision, expected `{revision}` but got `{}`",
            clone.build_directory,
            head.output.trim()
        ));
    }
    Ok(())
}

/// Adopts `reference` (a tag or `@sha256:` digest built elsewhere) as this version: pull it,
/// give it the `service` label if it lacks it (a `FROM <reference>` build that adds no layer),
/// tag it `<repository>:<version>` and `latest[-<dest>]`, push both; with buildx and the label
/// already there, the registry copies the manifest (every platform) instead.
pub fn adopt(
    shell: &Shell<'_>,
    builder: &Builder<'_>,
    tooling: Tooling,
    reference: &str,
    service: &str,
    dir: &Path,
) -> Result<Pushed, Error> {
    let emit = shell.emit;
    if !builder::valid_reference(reference) {
        return Err(Error::Usage {
            message: format!("not an image reference: {reference:?}"),
        });
    }
    let mut timings = Vec::new();
    let pulled = phase(emit, "pull", &mut timings, || {
        let ran = shell.run(&builder::pull_image(reference), dir, &[], true)?;
        if ran.success {
            return Ok(true);
        }
        let local = shell.run(&builder::service_label(reference), dir, &[], false)?;
        if local.success {
            emit(Event::Warning {
                message: format!("could not pull {reference}; adopting the local image"),
            });
            Ok(false)
        } else {
            Err(failed(&builder::pull_image(reference), &ran.output))
        }
    })?;
    let label = shell.check(&builder::service_label(reference), dir, &[], false)?;
    let label = label.trim();
    let [image, latest] = builder.tags();
    let digest = if label == service && pulled && tooling == Tooling::Buildx {
        phase(emit, "push", &mut timings, || {
            shell.check(&builder.adopt_imagetools(reference), dir, &[], true)
        })?;
        let inspected = shell.run(&builder::imagetools_inspect(&image), dir, &[], false)?;
        builder::parse_digest(&inspected.output)
    } else {
        phase(emit, "build", &mut timings, || {
            if label == service {
                for tag in builder.adopt_tags(reference) {
                    shell.check(&tag, dir, &[], false)?;
                }
            } else {
                if !label.is_empty() && label != "<no value>" {
                    emit(Event::Warning {
                        message: format!(
                            "{reference} is labelled service={label}; relabelling it service={service}"
                        ),
                    });
                }
                // The classic builder: `FROM <local image>` needs no registry round trip.
                let env = [("DOCKER_BUILDKIT".to_owned(), Secret::new("0".to_owned()))];
                shell.check(&builder.adopt_relabel(reference), dir, &env, true)?;
            }
            Ok(())
        })?;
        let pushes = [
            builder::push_image(image.clone()),
            builder::push_image(latest.clone()),
        ];
        match push_all(shell, &pushes, dir, &mut timings)? {
            Some(digest) => Some(digest),
            None => local_digest(shell, &image, dir)?,
        }
    };
    let tags = vec![image.clone(), latest];
    emit(Event::ImagePushed {
        image: image.clone(),
        tags: tags.clone(),
        digest: digest.clone(),
    });
    Ok(Pushed {
        image,
        tags,
        digest,
        timings,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    fn collect(events: &Mutex<Vec<Event>>) -> impl Fn(Event) + Send + Sync + '_ {
        move |event| events.lock().expect("events").push(event)
    }

    #[test]
    fn streams_redacted_output_and_passes_env_and_stdin() {
        let events = Mutex::new(Vec::new());
        let emit = collect(&events);
        let shell = Shell {
            emit: &emit,
            redact: vec![Secret::new("canary-value".to_owned())],
        };
        let command = Command::from_words(["echo", "\"$TOKEN\";", "cat;", "echo", "err", ">&2"])
            .with_stdin(Secret::new("from stdin\n".to_owned()));
        let env = [("TOKEN".to_owned(), Secret::new("canary-value".to_owned()))];
        let ran = shell
            .run(&command, Path::new("."), &env, true)
            .expect("runs");
        assert!(ran.success);
        assert!(ran.output.contains("[REDACTED]\n"), "{}", ran.output);
        assert!(ran.output.contains("from stdin\n"));
        assert!(!ran.output.contains("canary-value"));
        drop(shell);
        drop(emit);
        let events = events.into_inner().expect("events");
        assert!(
            matches!(&events[0], Event::CommandStarted { command, .. } if !command.contains("canary"))
        );
        assert!(events.iter().any(|event| matches!(
            event,
            Event::Output { stream: Stream::Stderr, line, .. } if line == "err"
        )));
        assert!(!format!("{events:?}").contains("canary-value"));
    }

    #[test]
    fn a_failure_carries_the_output_tail() {
        let events = Mutex::new(Vec::new());
        let emit = collect(&events);
        let shell = Shell {
            emit: &emit,
            redact: Vec::new(),
        };
        let command = Command::from_words(["echo", "boom;", "exit", "3"]);
        let error = shell
            .check(&command, Path::new("."), &[], false)
            .expect_err("fails");
        assert_eq!(error.to_string(), "`echo boom; exit 3` failed:\nboom");
    }

    #[test]
    fn phases_add_up() {
        let mut timings = vec![Timing {
            phase: "build".to_owned(),
            elapsed: Duration::from_millis(5),
        }];
        add_timing(&mut timings, "build", Duration::from_millis(10));
        add_timing(&mut timings, "push", Duration::from_millis(1));
        assert_eq!(timings[0].elapsed, Duration::from_millis(15));
        assert_eq!(timings[1].phase, "push");
    }

    fn git(dir: &Path, args: &[&str]) {
        let status = std::process::Command::new("git")
            .args(["-c", "user.name=t", "-c", "user.email=t@dhow.invalid"])
            .args(args)
            .current_dir(dir)
            .stdout(Stdio::null())
            .status()
            .expect("git");
        assert!(status.success(), "git {args:?}");
    }

    #[test]
    fn dev_warnings_name_changed_files_in_the_context_less_dockerignore() {
        let repo = tempfile::tempdir().expect("tempdir");
        let dir = repo.path();
        std::fs::create_dir_all(dir.join("web/assets")).expect("mkdir");
        std::fs::write(dir.join("web/.dockerignore"), "*.log\nassets/tmp\n").expect("write");
        std::fs::write(dir.join("web/app.rb"), "one\n").expect("write");
        std::fs::write(dir.join("README"), "one\n").expect("write");
        git(dir, &["init", "-q"]);
        git(dir, &["add", "."]);
        git(dir, &["commit", "-qm", "first"]);
        std::fs::write(dir.join("web/app.rb"), "two\n").expect("write");
        std::fs::write(dir.join("README"), "two\n").expect("write");
        std::fs::write(dir.join("web/debug.log"), "x\n").expect("write");
        std::fs::write(dir.join("web/new.rb"), "x\n").expect("write");
        std::fs::create_dir_all(dir.join("web/assets/tmp")).expect("mkdir");
        std::fs::write(dir.join("web/assets/tmp/cache"), "x\n").expect("write");
        std::fs::write(dir.join("web/assets/app.css"), "x\n").expect("write");

        let [(modified, first), (untracked, second)] = dev_context_changes(dir, "web");
        assert_eq!(first, "Files with uncommitted changes");
        assert_eq!(second, "Untracked files");
        assert_eq!(modified, ["app.rb"], "README is outside the context");
        assert_eq!(untracked, ["assets/app.css", "new.rb"]);

        // The whole tree as the context: paths relative to it, .dockerignore of the root (none).
        let [(modified, _), (untracked, _)] = dev_context_changes(dir, ".");
        assert_eq!(modified, ["README", "web/app.rb"]);
        assert_eq!(
            untracked,
            [
                "web/assets/app.css",
                "web/assets/tmp/cache",
                "web/debug.log",
                "web/new.rb"
            ]
        );
    }
}
