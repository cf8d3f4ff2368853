//! The command line: every clap type lives here, and nothing else does. No logic.

use std::path::PathBuf;

use clap::{ArgAction, Args, Parser, Subcommand};

/// Deploy web apps to your own servers: Kamal 2 configs, zero downtime, GitHub-native.
#[derive(Debug, Parser)]
#[command(
    name = "dhow",
    disable_help_flag = true,
    disable_version_flag = true,
    disable_help_subcommand = true,
    after_help = "Exit codes: 0 success, 1 failure, 2 usage error, 3 configuration error, \
                  4 secrets error, 5 SSH error, 6 host key error, 7 deploy lock held. See the \
                  README for the full table."
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,

    #[command(subcommand)]
    pub command: Command,
}

/// Options every command accepts, with Kamal's names and short flags.
#[derive(Debug, Clone, Args)]
#[expect(
    clippy::struct_excessive_bools,
    reason = "Kamal's global flags are independent switches"
)]
pub struct GlobalArgs {
    /// Path to the config file.
    #[arg(
        short = 'c',
        long = "config-file",
        global = true,
        default_value = "config/deploy.yml",
        value_name = "PATH"
    )]
    pub config_file: PathBuf,

    /// Destination: loads config/deploy.<DESTINATION>.yml and .kamal/secrets.<DESTINATION>.
    #[arg(short = 'd', long, global = true, value_name = "DESTINATION")]
    pub destination: Option<String>,

    /// Run commands on these hosts instead of all (comma-separated, `*` and `{a,b}` wildcards).
    #[arg(short = 'h', long, global = true, value_name = "HOSTS")]
    pub hosts: Option<String>,

    /// Run commands on these roles instead of all (comma-separated, `*` wildcards).
    #[arg(short = 'r', long, global = true, value_name = "ROLES")]
    pub roles: Option<String>,

    /// Run commands only on the primary host (of the first selected role, if any).
    #[arg(short = 'p', long, global = true)]
    pub primary: bool,

    /// Act on the preview of this pull request: the configuration's `x-dhow-preview` block turns
    /// the service into `<service>-pr-<N>` (see docs/previews.md); every command works on it.
    #[arg(long, global = true, value_name = "PR", env = "DHOW_PREVIEW_PR")]
    pub preview: Option<u64>,

    /// The app version to act on (not dhow's own version: that is `dhow version`).
    #[arg(long = "version", global = true, value_name = "VERSION")]
    pub app_version: Option<String>,

    /// Detailed logging.
    #[arg(short = 'v', long, global = true, conflicts_with = "quiet")]
    pub verbose: bool,

    /// Minimal logging: errors only.
    #[arg(short = 'q', long, global = true)]
    pub quiet: bool,

    /// Don't run hooks.
    #[arg(short = 'H', long = "skip-hooks", global = true)]
    pub skip_hooks: bool,

    /// How host keys are verified and which private key is offered.
    #[command(flatten)]
    pub ssh: SshArgs,

    /// Print help (`dhow help` and `dhow COMMAND --help` work too).
    #[arg(long, global = true, action = ArgAction::Help)]
    pub help: Option<bool>,
}

/// Host-key verification and CI keys. Host keys are always verified: against `known_hosts` files,
/// or against pinned fingerprints, or (only when asked for by name) trusted on first use.
#[derive(Debug, Clone, Args)]
pub struct SshArgs {
    /// A `known_hosts` file to verify host keys with (repeatable; the environment variable takes a
    /// `:`-separated list). Default: `~/.ssh/known_hosts` and `/etc/ssh/ssh_known_hosts`.
    #[arg(
        long = "known-hosts",
        global = true,
        env = "DHOW_KNOWN_HOSTS",
        value_delimiter = ':',
        value_name = "PATH"
    )]
    pub known_hosts: Vec<PathBuf>,

    /// Pinned host key fingerprints instead of `known_hosts`: `SHA256:…` for every host, or
    /// `HOST=SHA256:…`, separated by commas or spaces (repeatable).
    #[arg(
        long = "ssh-fingerprint",
        global = true,
        env = "DHOW_SSH_FINGERPRINTS",
        value_name = "LIST"
    )]
    pub ssh_fingerprints: Vec<String>,

    /// Trust-on-first-use: a host with no `known_hosts` entry gets its key appended to FILE and
    /// trusted (changed keys still fail). Only where the network path to the hosts is trusted.
    #[arg(long = "trust-new-host-keys", global = true, value_name = "FILE")]
    pub trust_new_host_keys: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Verify, on every selected host, SSH, the host key, docker, the registry login and the
    /// secrets, before anything is changed; prints a table per host.
    Check,

    /// Run commands on the servers, or set them up for dhow.
    #[command(subcommand)]
    Server(ServerCommand),

    /// Show the merged configuration as Kamal prints it, secrets redacted.
    Config,

    /// Deploy the app: build and push the image here (or adopt one with --image; -P skips this),
    /// pull it on every host, boot the new version role by role (primary role first), stop the
    /// old one, prune; under the deploy lock.
    Deploy(DeployArgs),

    /// Build the app image and push it, pull it on the hosts, adopt an image built elsewhere, or
    /// manage the buildx builder.
    #[command(subcommand)]
    Build(BuildCommand),

    /// Manage accessories (databases, caches, search) on their hosts, as Kamal does.
    #[command(subcommand)]
    Accessory(AccessoryCommand),

    /// Print the deploy plan: the hosts, the roles and the exact commands per host in order,
    /// secrets redacted. Nothing is contacted.
    Plan,

    /// Set up the hosts and deploy: under the deploy lock, install Docker where it is missing
    /// (then the docker-setup hook), pull, boot the proxy and the accessories, deploy the app.
    Setup(DeployArgs),

    /// Deploy without booting the proxy and without pruning (Kamal's redeploy).
    Redeploy(DeployArgs),

    /// Boot VERSION again from its containers still on the hosts (fails, naming the hosts, when
    /// a host lacks it). Without VERSION: roll back to the previous successful deployment of the
    /// environment recorded in GitHub Deployments, or to the last successful deployment of
    /// `--version` (a version or an image digest), in GitHub Actions or given the repository and
    /// a token in the environment: its image is pulled by the recorded digest.
    Rollback(RollbackArgs),

    /// Remove the app from the hosts: its containers, images and directories, the proxy where
    /// no other app uses it, the accessories, and the registry login.
    Remove(RemoveArgs),

    /// Show, take or release the deploy lock.
    #[command(subcommand)]
    Lock(LockCommand),

    /// Print the configuration reference for a section (or the list of sections).
    Docs {
        /// One of: accessory, alias, boot, builder, configuration, env, logging, proxy, registry,
        /// role, servers, ssh, sshkit.
        section: Option<String>,
    },

    /// Create config/deploy.yml, .kamal/secrets and sample hooks in the current directory.
    Init,

    /// Fetch, extract and print secrets (used from .kamal/secrets files).
    #[command(subcommand)]
    Secrets(SecretsCommand),

    /// Write deployment status badges per environment from GitHub's deployments ledger: a
    /// shields.io endpoint JSON and a self-contained SVG; `--publish` commits them to a branch.
    Badge(BadgeArgs),

    /// Show per environment the live version, digest, and when and by whom it was deployed
    /// (from GitHub's deployments ledger), and what every host of the configuration runs.
    Status(StatusArgs),

    /// Manage the application on the servers: boot, start, stop, logs, exec, maintenance, ...
    App(AppArgs),

    /// Manage kamal-proxy on the servers.
    Proxy(ProxyArgs),

    /// Prune old application images and containers.
    Prune(PruneArgs),

    /// Log in to and out of the image registry, locally and on the servers.
    #[command(subcommand)]
    Registry(RegistryCommand),

    /// Show the audit log of each server (its last 50 lines).
    Audit {
        /// Print the commands instead of running them.
        #[arg(long = "dry-run")]
        dry_run: bool,
    },

    /// Show the proxy, app and accessory containers of each server.
    Details {
        /// Print the commands instead of running them.
        #[arg(long = "dry-run")]
        dry_run: bool,
    },

    /// Pull-request previews: deploy, remove, sweep and list them (docs/previews.md).
    #[command(subcommand)]
    Preview(PreviewCommand),

    /// Print dhow's version.
    Version,

    /// Print help for dhow or a command.
    Help {
        /// The command to describe.
        command: Vec<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum SecretsCommand {
    /// Fetch secrets from a vault through its CLI and print them as JSON.
    Fetch {
        /// The adapter: 1password, bitwarden, bitwarden-sm, `aws_secrets_manager`, gcp, doppler,
        /// lastpass, enpass, passbolt.
        #[arg(short = 'a', long)]
        adapter: String,
        /// The account (required by some adapters).
        #[arg(long)]
        account: Option<String>,
        /// A prefix for every name: a vault, folder, project or item.
        #[arg(long)]
        from: Option<String>,
        /// Print shell-escaped JSON, for use inside $(...) in secrets files.
        #[arg(long)]
        inline: bool,
        /// The secret names to fetch.
        secrets: Vec<String>,
    },
    /// Print one secret out of the JSON that `secrets fetch` printed.
    Extract {
        /// The secret name (also matches a key ending in /NAME).
        name: String,
        /// The JSON from `dhow secrets fetch`.
        secrets: String,
        /// Accepted for compatibility with `kamal secrets extract --inline`.
        #[arg(long)]
        inline: bool,
    },
    /// Print every resolved secret as KEY=value (for debugging: prints secrets in clear text).
    Print,
}

#[derive(Debug, Subcommand)]
pub enum ServerCommand {
    /// Run a custom command on the selected servers (an audit line is written on each).
    Exec {
        /// Run the command interactively on the primary host, with `ssh -t` (for a console or
        /// a shell).
        #[arg(short = 'i', long)]
        interactive: bool,
        /// The command and its arguments (joined with spaces, run by the remote shell).
        #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
        cmd: Vec<String>,
    },
    /// Install Docker where it is missing (root or passwordless sudo needed), under the deploy
    /// lock, then run the docker-setup hook.
    Bootstrap,
}

#[derive(Debug, Subcommand)]
pub enum BuildCommand {
    /// Build and push the app image, then pull it on the servers.
    Deliver(BuildPushArgs),
    /// Build the app image on this machine and push it to the registry (`docker buildx build`,
    /// or `docker build` + `docker push` where the buildx plugin is missing).
    Push(BuildPushArgs),
    /// Pull the app image on the servers and check its service label.
    Pull,
    /// Create the buildx builder (and the docker context of a remote builder).
    Create,
    /// Remove the buildx builder (and the docker context of a remote builder).
    Remove,
    /// Show the builder: `docker context ls` and `docker buildx ls`.
    Details,
    /// Build the working directory as it is (no git clone), tag it `<version>-dirty` and
    /// `latest-dirty`, and export it to the local image store (or `--output`).
    Dev(BuildDevArgs),
    /// Adopt an image built elsewhere (a tag or `@sha256:` digest): pull it, add the service
    /// label if it lacks it, tag it as this version and latest, push; prints the digest.
    Adopt {
        /// The image, e.g. `ghcr.io/acme/app:sha-1234` or `ghcr.io/acme/app@sha256:...`.
        reference: String,
    },
}

/// Options of `dhow build push` and `dhow build deliver`.
#[derive(Debug, Clone, Args)]
pub struct BuildPushArgs {
    /// Exported type for the build result, any type `buildx --output` supports (without buildx:
    /// `registry` or `docker`).
    #[arg(long = "output", default_value = "registry", value_name = "TYPE")]
    pub export: String,
    /// Build without Docker's build cache.
    #[arg(long = "no-cache")]
    pub no_cache: bool,
}

/// Options of `dhow build dev`.
#[derive(Debug, Clone, Args)]
pub struct BuildDevArgs {
    /// Exported type for the build result, any type `buildx --output` supports (without buildx:
    /// `docker` or `registry`).
    #[arg(long = "output", default_value = "docker", value_name = "TYPE")]
    pub export: String,
    /// Build without Docker's build cache.
    #[arg(long = "no-cache")]
    pub no_cache: bool,
}

/// Options of `dhow deploy`.
#[derive(Debug, Clone, Args)]
pub struct DeployArgs {
    /// Skip the image build and push: deploy an image already in the registry.
    #[arg(short = 'P', long = "skip-push")]
    pub skip_push: bool,
    /// Deploy an image built elsewhere instead of building: pull REF (a tag or `@sha256:`
    /// digest), add the service label if missing, tag it as this version and latest, push.
    #[arg(long = "image", value_name = "REF", conflicts_with = "skip_push")]
    pub image: Option<String>,
    /// Build without Docker's build cache.
    #[arg(long = "no-cache", conflicts_with_all = ["skip_push", "image"])]
    pub no_cache: bool,
    /// Print the plan instead of running it (same as `dhow plan`).
    #[arg(long = "dry-run")]
    pub dry_run: bool,
    /// Progress as text for people, as JSON lines (one event per line), or as GitHub Actions
    /// log groups and annotations with outputs, a job summary and deployment statuses (the
    /// default when `GITHUB_ACTIONS=true`).
    #[arg(long, value_enum)]
    pub output: Option<OutputFormat>,
    /// Wait up to DURATION (`30s`, `5m`, `1h`) for a held deploy lock instead of failing.
    #[arg(long = "lock-wait", value_name = "DURATION")]
    pub lock_wait: Option<String>,
}

/// Options of `dhow rollback`.
#[derive(Debug, Clone, Args)]
pub struct RollbackArgs {
    /// The version to boot again, or an image digest (`sha256:…` or `REPO@sha256:…`) of a
    /// version still on the hosts. Without it: the previous successful deployment in GitHub
    /// Deployments.
    pub version: Option<String>,
    /// Print the plan instead of running it.
    #[arg(long = "dry-run")]
    pub dry_run: bool,
    /// Progress as text, JSON lines or GitHub Actions output.
    #[arg(long, value_enum)]
    pub output: Option<OutputFormat>,
    /// Wait up to DURATION (`30s`, `5m`, `1h`) for a held deploy lock instead of failing.
    #[arg(long = "lock-wait", value_name = "DURATION")]
    pub lock_wait: Option<String>,
}

/// Options of `dhow remove`.
#[derive(Debug, Clone, Args)]
pub struct RemoveArgs {
    /// Proceed without the confirmation question.
    #[arg(short = 'y', long)]
    pub confirmed: bool,
    /// Print the plan instead of running it.
    #[arg(long = "dry-run")]
    pub dry_run: bool,
    /// Progress as text, JSON lines or GitHub Actions output.
    #[arg(long, value_enum)]
    pub output: Option<OutputFormat>,
    /// Wait up to DURATION (`30s`, `5m`, `1h`) for a held deploy lock instead of failing.
    #[arg(long = "lock-wait", value_name = "DURATION")]
    pub lock_wait: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum LockCommand {
    /// Print the deploy lock's details, or "There is no deploy lock".
    Status,
    /// Take the deploy lock by hand (a deploy then fails, exit code 7, until it is released).
    Acquire {
        /// Why the lock is taken (recorded in the lock's details).
        #[arg(short = 'm', long, required = true)]
        message: String,
        /// Print the commands instead of running them.
        #[arg(long = "dry-run")]
        dry_run: bool,
    },
    /// Release the deploy lock.
    Release {
        /// Print the commands instead of running them.
        #[arg(long = "dry-run")]
        dry_run: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum PreviewCommand {
    /// From the `pull_request` event: deploy on opened, synchronize, reopened and labeled;
    /// remove on closed.
    Auto {
        #[command(flatten)]
        deploy: DeployArgs,
    },
    /// Deploy or update a pull request's preview: skipped for forks and without the label
    /// gate's label, refused (or the oldest removed) beyond the cap; a sticky comment on the
    /// pull request says where it answers.
    Deploy {
        /// The pull request (default: `--preview`, or the event's).
        #[arg(long, value_name = "N")]
        pr: Option<u64>,
        #[command(flatten)]
        deploy: DeployArgs,
    },
    /// Remove a pull request's preview from the hosts; its deployments become inactive and the
    /// comment says so.
    Remove {
        /// The pull request (default: `--preview`, or the event's).
        #[arg(long, value_name = "N")]
        pr: Option<u64>,
    },
    /// Remove the previews whose pull request is closed, or idle longer than the TTL.
    Sweep {
        /// The TTL (`7d`, `12h`, `30m`); default `x-dhow-preview.ttl` (7 days).
        #[arg(long = "older-than", value_name = "DURATION")]
        older_than: Option<String>,
        /// Say what would be removed, remove nothing.
        #[arg(long = "dry-run")]
        dry_run: bool,
    },
    /// List the previews on the hosts.
    List,
}

#[derive(Debug, Args)]
pub struct BadgeArgs {
    /// An environment to draw (repeatable); default: every environment with a dhow deployment.
    #[arg(long = "environment", value_name = "NAME")]
    pub environments: Vec<String>,
    /// The directory the `<environment>.json` and `<environment>.svg` files are written to.
    #[arg(long, value_name = "DIR", default_value = "badges")]
    pub out: std::path::PathBuf,
    /// Also commit the badges to this branch of the repository (created from the current commit
    /// when missing) through the contents API, and print the markdown that embeds them.
    #[arg(long, value_name = "BRANCH")]
    pub publish: Option<String>,
    /// The directory inside the branch the badges are committed to.
    #[arg(
        long,
        value_name = "PATH",
        default_value = "badges",
        requires = "publish"
    )]
    pub path: String,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// An environment to describe (repeatable); default: every environment with a dhow
    /// deployment.
    #[arg(long = "environment", value_name = "NAME")]
    pub environments: Vec<String>,
    /// Read only the ledger; do not connect to the hosts.
    #[arg(long = "no-hosts")]
    pub no_hosts: bool,
}

/// The progress output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    Text,
    Json,
    Github,
}

/// An accessory by name, or `all`, and whether to only print the plan.
#[derive(Debug, Clone, Args)]
pub struct AccessoryArgs {
    /// The accessory's name under `accessories`, or `all`.
    pub name: String,
    /// Print the plan (hosts and exact commands, secrets redacted) instead of running it.
    #[arg(long = "dry-run")]
    pub dry_run: bool,
}

/// Options of `dhow accessory logs`.
#[derive(Debug, Clone, Args)]
pub struct AccessoryLogsArgs {
    /// The accessory's name.
    pub name: String,
    /// Show logs since a timestamp (2013-01-02T13:23:37Z) or a duration (42m).
    #[arg(short = 's', long)]
    pub since: Option<String>,
    /// Number of lines from each host (100 unless --since or --grep is given).
    #[arg(short = 'n', long)]
    pub lines: Option<u64>,
    /// Only lines matching this grep pattern.
    #[arg(short = 'g', long)]
    pub grep: Option<String>,
    /// More options for grep (e.g. "-C 2").
    #[arg(long = "grep-options", allow_hyphen_values = true)]
    pub grep_options: Option<String>,
    /// Follow the logs on the first selected host (over ssh -t).
    #[arg(short = 'f', long)]
    pub follow: bool,
    /// Leave out the timestamps.
    #[arg(short = 'T', long = "skip-timestamps")]
    pub skip_timestamps: bool,
}

#[derive(Debug, Subcommand)]
pub enum AccessoryCommand {
    /// Log in, create the directories, upload the files and the env file (0600) and start the
    /// accessory on hosts that don't have its container yet (NAME or all).
    Boot(AccessoryArgs),
    /// Pull the image, stop and remove the container, then boot it again (NAME or all).
    Reboot(AccessoryArgs),
    /// Start the existing container (and put it back behind the proxy).
    Start(AccessoryArgs),
    /// Stop the container (and take it off the proxy).
    Stop(AccessoryArgs),
    /// Stop, then start.
    Restart(AccessoryArgs),
    /// Show the accessory's container on each host (NAME or all).
    Details {
        /// The accessory's name, or `all`.
        name: String,
    },
    /// Show log lines from the accessory on each host.
    Logs(AccessoryLogsArgs),
    /// Run a command in a new container of the accessory's image (or the running one).
    Exec {
        /// The accessory's name.
        name: String,
        /// Run interactively over ssh -t on the first host (for a console or a shell).
        #[arg(short = 'i', long)]
        interactive: bool,
        /// Run in the running container instead of a new one.
        #[arg(long)]
        reuse: bool,
        /// The command and its arguments.
        #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
        cmd: Vec<String>,
    },
    /// Stop and remove the container, its image, its directory and its env file (NAME or all).
    Remove {
        #[command(flatten)]
        args: AccessoryArgs,
        /// Don't ask for confirmation.
        #[arg(short = 'y', long)]
        confirmed: bool,
    },
    /// Reboot accessories onto the `kamal` network (Kamal 1.x to 2.0), all hosts at once or one
    /// at a time.
    Upgrade {
        #[command(flatten)]
        args: AccessoryArgs,
        /// One host at a time.
        #[arg(long)]
        rolling: bool,
        /// Don't ask for confirmation.
        #[arg(short = 'y', long)]
        confirmed: bool,
    },
}

/// `dhow app`: the subcommand and `--dry-run`.
#[derive(Debug, Args)]
pub struct AppArgs {
    /// Print the commands (redacted; the plan for mutating ones) instead of running them.
    #[arg(long = "dry-run", global = true)]
    pub dry_run: bool,
    #[command(subcommand)]
    pub command: AppCommand,
}

#[derive(Debug, Subcommand)]
pub enum AppCommand {
    /// Boot the app (the image tagged latest, or --version) on the servers, under the lock.
    Boot,
    /// Start the existing app container (of the app version) and route the proxy to it again.
    Start,
    /// Take the app out of the proxy and stop its container.
    Stop,
    /// Show the app containers of each role (docker ps).
    Details,
    /// Show every app container, running or not (docker container ls --all).
    Containers,
    /// Show the app images on the servers.
    Images,
    /// Show log lines of the app on the servers.
    Logs(AppLogsArgs),
    /// Run a command in a new app container, or in the running one with --reuse.
    Exec(AppExecArgs),
    /// Show the app version running on each server.
    Version,
    /// Remove the app containers, images and directories from the servers.
    Remove,
    /// Put the app in maintenance mode: the proxy answers 503 with the maintenance page.
    Maintenance {
        /// Seconds in-flight requests get to finish (default: `drain_timeout` from the config).
        #[arg(long = "drain-timeout", value_name = "SECONDS")]
        drain_timeout: Option<u32>,
        /// The message shown to clients while in maintenance.
        #[arg(long)]
        message: Option<String>,
    },
    /// Put the app back in live mode.
    Live,
    /// Show running containers of a role other than the current version (or stop them).
    #[command(name = "stale_containers", alias = "stale-containers")]
    StaleContainers {
        /// Stop the stale containers found (under the deploy lock).
        #[arg(short = 's', long)]
        stop: bool,
    },
}

/// Options of `dhow app logs`.
#[derive(Debug, Clone, Args)]
pub struct AppLogsArgs {
    /// Lines since a timestamp (2013-01-02T13:23:37Z) or a relative time (42m).
    #[arg(short = 's', long)]
    pub since: Option<String>,
    /// Lines to show from each server (default 100, or 10 with --follow; all with --since or --grep).
    #[arg(short = 'n', long)]
    pub lines: Option<u32>,
    /// Only lines matching this grep pattern.
    #[arg(short = 'g', long)]
    pub grep: Option<String>,
    /// More options for grep.
    #[arg(long = "grep-options", allow_hyphen_values = true)]
    pub grep_options: Option<String>,
    /// Follow the log on the primary server (or the one chosen with --hosts), over ssh -t.
    #[arg(short = 'f', long)]
    pub follow: bool,
    /// Leave out the timestamps.
    #[arg(short = 'T', long = "skip-timestamps")]
    pub skip_timestamps: bool,
    /// The docker container id to read logs from (default: the running app container).
    #[arg(long = "container-id")]
    pub container_id: Option<String>,
}

/// Options of `dhow app exec`.
#[derive(Debug, Clone, Args)]
pub struct AppExecArgs {
    /// Run interactively on the primary server over ssh -t (a console or a shell).
    #[arg(short = 'i', long)]
    pub interactive: bool,
    /// Run in the running container (docker exec) instead of a new one.
    #[arg(long)]
    pub reuse: bool,
    /// Environment for the command, KEY:VALUE (repeatable).
    #[arg(short = 'e', long = "env", value_name = "KEY:VALUE")]
    pub env: Vec<String>,
    /// Run in a detached new container.
    #[arg(long)]
    pub detach: bool,
    /// The command and its arguments (joined with spaces, run by the container's shell).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub cmd: Vec<String>,
}

/// `dhow proxy`: the subcommand and `--dry-run`.
#[derive(Debug, Args)]
pub struct ProxyArgs {
    /// Print the commands (redacted; the plan for mutating ones) instead of running them.
    #[arg(long = "dry-run", global = true)]
    pub dry_run: bool,
    #[command(subcommand)]
    pub command: ProxyCommand,
}

#[derive(Debug, Subcommand)]
pub enum ProxyCommand {
    /// Start the proxy on the servers, creating its container when there is none.
    Boot,
    /// Replace the proxy container (settings changes, upgrades): a brief outage per server.
    Reboot {
        /// One server after another instead of all at once.
        #[arg(long)]
        rolling: bool,
        /// Proceed without the confirmation question.
        #[arg(short = 'y', long)]
        confirmed: bool,
    },
    /// Start the existing proxy container.
    Start,
    /// Stop the proxy container.
    Stop,
    /// Stop, then start the proxy container.
    Restart,
    /// Show the proxy container of each server.
    Details,
    /// Show log lines of the proxy.
    Logs(ProxyLogsArgs),
    /// Remove the proxy container, image and directory (refused while other apps use it).
    Remove {
        /// Remove it even when other apps are installed.
        #[arg(long)]
        force: bool,
    },
    /// Deprecated (use proxy.run in the config): the proxy's boot files on the servers.
    #[command(name = "boot_config", alias = "boot-config")]
    BootConfig(BootConfigArgs),
}

/// Options of `dhow proxy logs`.
#[derive(Debug, Clone, Args)]
pub struct ProxyLogsArgs {
    /// Lines since a timestamp or a relative time (42m).
    #[arg(short = 's', long)]
    pub since: Option<String>,
    /// Lines to show from each server (default 100; all with --since or --grep).
    #[arg(short = 'n', long)]
    pub lines: Option<u32>,
    /// Only lines matching this grep pattern.
    #[arg(short = 'g', long)]
    pub grep: Option<String>,
    /// Follow the log on the primary server over ssh -t.
    #[arg(short = 'f', long)]
    pub follow: bool,
    /// Leave out the timestamps.
    #[arg(short = 'T', long = "skip-timestamps")]
    pub skip_timestamps: bool,
}

/// What `proxy boot_config` does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum BootConfigAction {
    Set,
    Get,
    Reset,
}

/// Options of `dhow proxy boot_config`.
#[derive(Debug, Clone, Args)]
pub struct BootConfigArgs {
    /// set, get or reset.
    #[arg(value_enum)]
    pub action: BootConfigAction,
    /// Publish the proxy ports on the host (`--no-publish` to not).
    #[arg(long, overrides_with = "no_publish")]
    pub publish: bool,
    /// Do not publish the proxy ports.
    #[arg(long = "no-publish")]
    pub no_publish: bool,
    /// Host IP to bind HTTP/HTTPS to (repeatable; default all interfaces).
    #[arg(long = "publish-host-ip", value_name = "IP")]
    pub publish_host_ip: Vec<String>,
    /// HTTP port to publish on the host.
    #[arg(long = "http-port", default_value_t = 80)]
    pub http_port: u16,
    /// HTTPS port to publish on the host.
    #[arg(long = "https-port", default_value_t = 443)]
    pub https_port: u16,
    /// Maximum size of the proxy's logs.
    #[arg(long = "log-max-size", default_value = "10m")]
    pub log_max_size: String,
    /// Registry of the proxy image.
    #[arg(long)]
    pub registry: Option<String>,
    /// Repository of the proxy image (default basecamp).
    #[arg(long)]
    pub repository: Option<String>,
    /// Version (tag) of the proxy image.
    #[arg(long = "image-version")]
    pub image_version: Option<String>,
    /// Port to report Prometheus metrics on.
    #[arg(long = "metrics-port")]
    pub metrics_port: Option<u16>,
    /// Run the proxy in debug mode.
    #[arg(long)]
    pub debug: bool,
    /// Docker options for the proxy container, option=value (several after one flag).
    #[arg(long = "docker-options", num_args = 1.., value_name = "OPTION=VALUE")]
    pub docker_options: Vec<String>,
}

/// `dhow prune`: the subcommand and `--dry-run`.
#[derive(Debug, Args)]
pub struct PruneArgs {
    /// Print the plan (redacted) instead of running it.
    #[arg(long = "dry-run", global = true)]
    pub dry_run: bool,
    #[command(subcommand)]
    pub command: PruneCommand,
}

#[derive(Debug, Subcommand)]
pub enum PruneCommand {
    /// Prune stopped containers beyond `retain_containers`, then unused images.
    All,
    /// Prune dangling images and tagged images no container uses (latest is kept).
    Images,
    /// Prune stopped app containers, keeping the newest ones.
    Containers {
        /// How many stopped containers to keep (default: `retain_containers`, 5).
        #[arg(long)]
        retain: Option<u32>,
    },
}

/// Options of `dhow registry login` and `logout`.
#[derive(Debug, Clone, Args)]
pub struct RegistryArgs {
    /// Skip this machine (only the servers).
    #[arg(short = 'L', long = "skip-local")]
    pub skip_local: bool,
    /// Skip the servers (only this machine).
    #[arg(short = 'R', long = "skip-remote")]
    pub skip_remote: bool,
    /// Print the commands (redacted) instead of running them.
    #[arg(long = "dry-run")]
    pub dry_run: bool,
}

#[derive(Debug, Subcommand)]
pub enum RegistryCommand {
    /// A `localhost:PORT` registry: start the local registry container
    /// (`kamal-docker-registry`, image `registry:3`) on this machine. Any other registry: log in
    /// here and on every server, as `login`.
    Setup(RegistryArgs),
    /// A `localhost:PORT` registry: stop and remove the local registry container. Any other
    /// registry: log out here and on every server, as `logout`.
    Remove(RegistryArgs),
    /// Log in to the registry here and on every server (the password goes through stdin).
    Login(RegistryArgs),
    /// Log out of the registry here and on every server.
    Logout(RegistryArgs),
}
