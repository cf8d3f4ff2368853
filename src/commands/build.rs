//! `dhow build deliver|push|pull|create|remove|details|adopt` (Kamal's `kamal build`), and the
//! image step of `dhow deploy`: resolves the registry login and the build secrets, logs in
//! locally, runs the pre-build hook, then builds and pushes (or adopts) through `crate::build`;
//! `pull` runs Kamal's pull sequence on the app hosts.

use std::path::Path;
use std::sync::Mutex;

use dhow_core::Secret;
use dhow_core::config::Credential;
use dhow_core::docker::builder::Builder;
use dhow_core::docker::{audit, registry};
use dhow_core::event::Event;
use dhow_core::plan::{self, Action, Phase, Step};

use super::groups;
use super::server::{Run, cancel_on_signals, runtime};
use crate::build::{self, BuildOptions, Pushed, Shell, Tooling};
use crate::cli::{BuildCommand, BuildDevArgs, BuildPushArgs, GlobalArgs};
use crate::deploy::{Executor, Known};
use crate::error::Error;
use crate::printer::Printer;
use crate::reporter::{self, Format, Reporter};
use crate::settings;

/// Where the deployed image comes from.
#[derive(Debug, Clone, Copy)]
pub enum Source<'a> {
    /// Build it here from the configured Dockerfile.
    Build { output: &'a str, no_cache: bool },
    /// Adopt an image built elsewhere.
    Adopt(&'a str),
}

pub fn run(command: BuildCommand, global: &GlobalArgs, printer: Printer) -> Result<(), Error> {
    let reporter: Mutex<Box<dyn Reporter>> =
        Mutex::new(reporter::for_format(Format::Text, printer));
    let emit = |event: Event| {
        if let Ok(mut reporter) = reporter.lock() {
            reporter.report(&event);
        }
    };
    match command {
        BuildCommand::Push(args) => {
            let run = Run::prepare(global, printer, "build", Some("push"), true)?;
            run.pre_connect()?;
            push(&run, &args, &emit).map(|_| ())
        }
        BuildCommand::Deliver(args) => {
            let run = Run::prepare(global, printer, "build", Some("deliver"), true)?;
            run.pre_connect()?;
            push(&run, &args, &emit)?;
            pull(&run)
        }
        BuildCommand::Adopt { reference } => {
            let run = Run::prepare(global, printer, "build", Some("adopt"), true)?;
            run.pre_connect()?;
            let pushed = deliver_image(&run, Source::Adopt(&reference), &emit)?;
            if let Some(digest) = pushed.digest {
                printer.data(&format!("{}@{digest}", repository_of(&pushed.image)));
            }
            Ok(())
        }
        BuildCommand::Pull => {
            let run = Run::prepare(global, printer, "build", Some("pull"), true)?;
            run.pre_connect()?;
            pull(&run)
        }
        BuildCommand::Create => {
            let run = Run::prepare(global, printer, "build", Some("create"), false)?;
            let builder = builder_of(&run)?;
            printer.debug(&format!("Using builder: {}", builder.kind().name()));
            let shell = Shell {
                emit: &emit,
                redact: Vec::new(),
            };
            match builder.create() {
                Some(create) => shell
                    .check(&create, Path::new("."), &[], true)
                    .map(|_| ())
                    .map_err(|error| Error::Failed {
                        message: format!("Couldn't create the builder: {error}"),
                    }),
                None => Ok(()),
            }
        }
        BuildCommand::Remove => {
            let run = Run::prepare(global, printer, "build", Some("remove"), false)?;
            let builder = builder_of(&run)?;
            printer.debug(&format!("Using builder: {}", builder.kind().name()));
            let shell = Shell {
                emit: &emit,
                redact: Vec::new(),
            };
            match builder.remove() {
                Some(remove) => shell.check(&remove, Path::new("."), &[], true).map(|_| ()),
                None => Ok(()),
            }
        }
        BuildCommand::Dev(args) => {
            let run = Run::prepare(global, printer, "build", Some("dev"), true)?;
            dev(&run, &args, &emit)
        }
        BuildCommand::Details => {
            let run = Run::prepare(global, printer, "build", Some("details"), false)?;
            let builder = builder_of(&run)?;
            let shell = Shell {
                emit: &emit,
                redact: Vec::new(),
            };
            let output = shell.check(&builder.info(), Path::new("."), &[], false)?;
            printer.data(&format!("Builder: {}", builder.kind().name()));
            printer.data(output.trim_end());
            Ok(())
        }
    }
}

/// Kamal's `build dev`: warns about uncommitted and untracked files the build context takes
/// in, then builds the working tree with `-dirty` tags, build secrets in the build's
/// environment only.
fn dev(run: &Run, args: &BuildDevArgs, emit: build::Emit<'_>) -> Result<(), Error> {
    let builder = builder_of(run)?.tagged_dirty();
    let mut secrets = Vec::new();
    for name in &run.config.builder.secrets {
        secrets.push((name.clone(), lookup(run, name)?));
    }
    let shell = Shell {
        emit,
        redact: secrets.iter().map(|(_, value)| value.clone()).collect(),
    };
    let dir = Path::new(".");
    let tooling = build::detect(&shell)?;
    if tooling == Tooling::Plain && builder.kind() != dhow_core::docker::builder::Kind::Pack {
        emit(Event::Warning {
            message: "docker buildx is not installed locally: building with `docker build`"
                .to_owned(),
        });
    }
    for (files, what) in build::dev_context_changes(dir, &builder.context()) {
        if !files.is_empty() {
            emit(Event::Warning {
                message: format!(
                    "{what} will be present in the dev container:\n{}",
                    files
                        .iter()
                        .map(|file| format!("  {file}"))
                        .collect::<Vec<_>>()
                        .join("\n")
                ),
            });
        }
    }
    let tags = build::build_dev(
        &shell,
        &builder,
        tooling,
        &BuildOptions {
            output: &args.export,
            no_cache: args.no_cache,
            secrets,
            dir,
        },
    )?;
    run.printer.info(&format!("Built {}", tags.join(", ")));
    Ok(())
}

fn push(run: &Run, args: &BuildPushArgs, emit: build::Emit<'_>) -> Result<Pushed, Error> {
    deliver_image(
        run,
        Source::Build {
            output: &args.export,
            no_cache: args.no_cache,
        },
        emit,
    )
}

fn version(run: &Run) -> Result<&str, Error> {
    run.version.as_deref().ok_or_else(|| Error::NoVersion {
        dir: std::path::PathBuf::from("."),
    })
}

fn builder_of(run: &Run) -> Result<Builder<'_>, Error> {
    Ok(Builder::new(
        &run.config,
        version(run)?,
        Some(settings::local_arch()),
    ))
}

fn repository_of(image: &str) -> &str {
    image
        .rsplit_once(':')
        .map_or(image, |(repository, _)| repository)
}

/// Looks up a secret in the secrets files (or, without them, the environment).
fn lookup(run: &Run, name: &str) -> Result<Secret<String>, Error> {
    match &run.secrets {
        Some(secrets) => Ok(secrets.resolve(name, &run.env, None)?),
        None => run
            .env
            .get(name)
            .map(|value| Secret::new(value.clone()))
            .ok_or_else(|| Error::Failed {
                message: format!("Secret '{name}' not found"),
            }),
    }
}

/// The registry user and password, when the registry needs a login.
pub fn registry_credentials(run: &Run) -> Result<Option<(String, Secret<String>)>, Error> {
    let registry = &run.config.registry;
    if registry.is_local() {
        return Ok(None);
    }
    let credential = |credential: Option<&Credential>| -> Result<Option<Secret<String>>, Error> {
        match credential {
            None => Ok(None),
            Some(Credential::Clear(value)) => Ok(Some(Secret::new(value.clone()))),
            Some(Credential::Secret(name)) => lookup(run, name).map(Some),
        }
    };
    match (
        credential(registry.username.as_ref())?,
        credential(registry.password.as_ref())?,
    ) {
        (Some(user), Some(password)) => Ok(Some((user.expose().clone(), password))),
        _ => Ok(None),
    }
}

/// What `setup` and `redeploy` do before their plan, as Kamal's run `build deliver` first:
/// unless `--skip-push`, build (or adopt `--image`) and push here, with progress on the
/// terminal; the plan then pulls the image on the hosts.
pub fn deliver_for(
    run: &Run,
    args: &crate::cli::DeployArgs,
    printer: Printer,
) -> Result<(), Error> {
    if args.skip_push {
        return Ok(());
    }
    let reporter: Mutex<Box<dyn Reporter>> =
        Mutex::new(reporter::for_format(Format::Text, printer));
    let emit = |event: Event| {
        if let Ok(mut reporter) = reporter.lock() {
            reporter.report(&event);
        }
    };
    let source = match &args.image {
        Some(reference) => Source::Adopt(reference),
        None => Source::Build {
            output: "registry",
            no_cache: args.no_cache,
        },
    };
    deliver_image(run, source, &emit).map(|_| ())
}

/// Kamal's `build push` (or dhow's adoption), locally: docker and buildx detection, the local
/// registry login (`--password-stdin`), the pre-build hook, then the build and push with the
/// build secrets in the build's environment only. Emits `ImagePushed` with the digest.
pub fn deliver_image(
    run: &Run,
    source: Source<'_>,
    emit: build::Emit<'_>,
) -> Result<Pushed, Error> {
    if let Source::Adopt(reference) = source
        && !dhow_core::docker::builder::valid_reference(reference)
    {
        return Err(Error::Usage {
            message: format!("not an image reference: {reference:?}"),
        });
    }
    let builder = builder_of(run)?;
    let credentials = registry_credentials(run)?;
    let mut secrets = Vec::new();
    if let Source::Build { .. } = source {
        for name in &run.config.builder.secrets {
            secrets.push((name.clone(), lookup(run, name)?));
        }
    }
    let mut redact: Vec<Secret<String>> = secrets.iter().map(|(_, value)| value.clone()).collect();
    if let Some((_, password)) = &credentials {
        redact.push(password.clone());
    }
    let shell = Shell { emit, redact };
    let dir = Path::new(".");
    let uses_pack = builder.kind() == dhow_core::docker::builder::Kind::Pack;
    let tooling = build::detect(&shell)?;
    if tooling == Tooling::Plain && !uses_pack {
        emit(Event::Warning {
            message: "docker buildx is not installed locally: building with `docker build` and pushing with `docker push`".to_owned(),
        });
    }
    let adopting = matches!(source, Source::Adopt(_));
    if adopting || builder.login_to_registry_locally() {
        match (&credentials, run.config.registry.local_port()) {
            (_, Some(port)) => {
                shell.check(&registry::setup_local(port), dir, &[], false)?;
            }
            (Some((user, password)), None) => {
                let login = registry::login(run.config.registry.server.as_deref(), user, password);
                shell.check(&login, dir, &[], false)?;
            }
            (None, None) => {}
        }
    }
    run.hooks().run("pre-build", false, &[])?;
    match source {
        Source::Build { output, no_cache } => build::build_and_push(
            &shell,
            &builder,
            tooling,
            &BuildOptions {
                output,
                no_cache,
                secrets,
                dir,
            },
            &run.config.service,
        ),
        Source::Adopt(reference) => build::adopt(
            &shell,
            &builder,
            tooling,
            reference,
            &run.config.service,
            dir,
        ),
    }
}

/// Kamal's `build pull` on the selected app hosts: login, audit line, remove the old copy
/// (failure ignored), pull, check the service label; with a `localhost:<port>` registry the port
/// is forwarded to every host while it pulls, and with registry mirrors one host per mirror
/// pulls first (the executor's pull stage).
fn pull(run: &Run) -> Result<(), Error> {
    let builder = builder_of(run)?;
    let credentials = registry_credentials(run)?;
    let hosts: Vec<String> = run
        .selection
        .hosts
        .iter()
        .filter(|host| !run.selection.roles_on(&run.config, host).is_empty())
        .cloned()
        .collect();
    let login = credentials.map(|(user, password)| {
        registry::login(run.config.registry.server.as_deref(), &user, &password)
    });
    let record = audit::record(
        &run.scope(),
        &run.tags,
        &format!("Pulled image with version {}", version(run)?),
    );
    let steps: Vec<Step> = login
        .into_iter()
        .map(|login| groups::step("registry login", Action::Run(login)))
        .chain([
            groups::step("audit", Action::Run(record)),
            groups::step("remove old image", Action::Try(builder.clean())),
            groups::step(plan::PULL_STEP, Action::Run(builder.pull())),
            groups::step("check service label", Action::Run(builder.validate_image())),
        ])
        .collect();
    let mut stage = groups::stage(
        "Pull app image",
        Phase::Pull,
        hosts
            .iter()
            .map(|host| (host.clone(), steps.clone()))
            .collect(),
    );
    stage.pull = Some(plan::pull_setup(&run.config, &hosts));
    let printer = run.printer;
    printer.info(&format!(
        "Pulling {} on {}...",
        builder.image(),
        hosts.join(", ")
    ));
    let reporter: Mutex<Box<dyn Reporter>> =
        Mutex::new(reporter::for_format(Format::Text, printer));
    let emit = |event: Event| {
        if let Ok(mut reporter) = reporter.lock() {
            reporter.report(&event);
        }
    };
    let pool = run.pool()?;
    let runtime = runtime()?;
    let result = runtime.block_on(async {
        let cancel = cancel_on_signals();
        let result = match super::lifecycle::connect(&pool, &hosts).await {
            Ok(sessions) => Executor {
                sessions: &sessions,
                emit: &emit,
                cancel: &cancel,
                after_lock: None,
                hook: None,
                ci: None,
                before_release: None,
                lock_wait: None,
                lock_poll: super::lifecycle::LOCK_POLL,
                local_images: Some(&crate::local::LocalDocker),
                known: Known::default(),
            }
            .run_stages(std::slice::from_ref(&stage))
            .await
            .map(|_| ())
            .map_err(|error| Error::Failed {
                message: error.to_string(),
            }),
            Err(error) => Err(error),
        };
        pool.close().await;
        result
    });
    run.report_learned(&pool);
    result
}
