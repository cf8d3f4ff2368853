//! Image builds (Kamal's `commands/builder.rb` and `builder/*.rb`): the `docker buildx build`
//! line of the local, remote, hybrid and cloud builders and the `pack` line, builder
//! create/remove/inspect/details, the git clone Kamal builds from, and the pull-side checks; plus
//! what Kamal does not have: a plain `docker build` + `docker push` for machines without the buildx
//! plugin, and the commands that adopt an image built elsewhere.
//!
//! Build secrets never appear on a command line: `--secret id="NAME"` names them, and the values
//! go into the build process's environment (`BuildKit` reads the variable of the same name), as in
//! Kamal. With `pack`, dhow passes `--env NAME` without a value (pack reads the environment)
//! where Kamal writes the value into the argv.

use crate::cmd::{Command, Token, argumentize};
use crate::config::{Config, Value};

/// Which of Kamal's builders a configuration selects (`KAMAL.builder.name`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Local,
    Remote,
    Hybrid,
    Pack,
    Cloud,
}

impl Kind {
    /// Kamal's name for it (`kamal build details` prints `Builder: <name>`).
    pub fn name(self) -> &'static str {
        match self {
            Kind::Local => "local",
            Kind::Remote => "remote",
            Kind::Hybrid => "hybrid",
            Kind::Pack => "pack",
            Kind::Cloud => "cloud",
        }
    }
}

/// The build commands of one configuration and version.
#[derive(Debug, Clone, Copy)]
pub struct Builder<'a> {
    config: &'a Config,
    version: &'a str,
    /// The local Docker architecture (`amd64`, `arm64`), as `docker info` reports it.
    local_arch: Option<&'a str>,
    /// `build dev`: the tags carry Kamal's `-dirty` suffix.
    dirty: bool,
}

/// Why the plain `docker build` path cannot build a configuration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0} needs the docker buildx plugin, which is not installed locally")]
pub struct NeedsBuildx(pub String);

/// The plain-docker build of a configuration: the build, then the pushes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlainBuild {
    /// `docker build ... 2>&1`.
    pub build: Command,
    /// `docker push <version tag>`, `docker push <latest tag>` (none for `--output docker`).
    pub push: Vec<Command>,
    /// Settings that only buildx honours and that the plain build leaves out.
    pub warnings: Vec<String>,
    /// Build secrets or `ssh` need `BuildKit`: run with `DOCKER_BUILDKIT=1`.
    pub needs_buildkit: bool,
}

impl<'a> Builder<'a> {
    pub fn new(config: &'a Config, version: &'a str, local_arch: Option<&'a str>) -> Self {
        Self {
            config,
            version,
            local_arch,
            dirty: false,
        }
    }

    /// Kamal's `tag_as_dirty` (`build dev`): the build writes `<repository>:<version>-dirty` and
    /// `<repository>:latest[-<dest>]-dirty`.
    #[must_use]
    pub fn tagged_dirty(mut self) -> Self {
        self.dirty = true;
        self
    }

    /// Kamal's `KAMAL.builder.target`: remote (or hybrid when some arches build locally), else
    /// pack, else cloud, else local.
    pub fn kind(&self) -> Kind {
        let builder = &self.config.builder;
        if builder.is_remote(self.local_arch) {
            if self.builds_locally() {
                Kind::Hybrid
            } else {
                Kind::Remote
            }
        } else if self.is_pack() {
            Kind::Pack
        } else if builder.is_cloud() {
            Kind::Cloud
        } else {
            Kind::Local
        }
    }

    /// Kamal's `builder.local?`.
    fn builds_locally(&self) -> bool {
        let builder = &self.config.builder;
        builder.local
            && (builder.arches.is_empty() || !builder.local_arches(self.local_arch).is_empty())
    }

    fn is_pack(&self) -> bool {
        self.config
            .builder
            .raw
            .get("pack")
            .is_some_and(crate::config::Node::is_truthy)
    }

    fn docker_driver(&self) -> bool {
        self.config.builder.driver == "docker"
    }

    fn driver(&self) -> &str {
        &self.config.builder.driver
    }

    fn remote(&self) -> &str {
        self.config.builder.remote.as_deref().unwrap_or_default()
    }

    /// The buildx builder's name (`kamal-local-docker-container`, ...); `None` for pack.
    pub fn builder_name(&self) -> Option<String> {
        let local_registry = self.config.registry.is_local();
        match self.kind() {
            Kind::Local if local_registry => {
                Some(format!("kamal-local-registry-{}", self.driver()))
            }
            Kind::Local => Some(format!("kamal-local-{}", self.driver())),
            Kind::Remote => Some(format!("kamal-remote-{}", self.remote_suffix())),
            Kind::Hybrid => Some(format!(
                "kamal-hybrid-{}-{}",
                self.driver(),
                self.remote_suffix()
            )),
            Kind::Cloud => Some(self.driver().replace([' ', '/'], "-")),
            Kind::Pack => None,
        }
    }

    /// `<remote with [^a-z0-9_-] replaced by ->[-local-registry]`.
    fn remote_suffix(&self) -> String {
        let sanitized: String = self
            .remote()
            .chars()
            .map(|c| {
                if c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-' {
                    c
                } else {
                    '-'
                }
            })
            .collect();
        if self.config.registry.is_local() {
            format!("{sanitized}-local-registry")
        } else {
            sanitized
        }
    }

    fn remote_context_name(&self) -> String {
        format!("{}-context", self.builder_name().unwrap_or_default())
    }

    /// `<repository>:<version>`.
    pub fn image(&self) -> String {
        self.config.absolute_image(self.version)
    }

    /// The tags a build writes: `<repository>:<version>` and `<repository>:latest[-<dest>]`, each
    /// with `-dirty` appended for `build dev`.
    pub fn tags(&self) -> [String; 2] {
        let tags = [self.image(), self.config.latest_image()];
        if self.dirty {
            tags.map(|tag| format!("{tag}-dirty"))
        } else {
            tags
        }
    }

    fn tag_options(&self) -> Vec<String> {
        self.tags()
            .into_iter()
            .flat_map(|tag| ["-t".to_owned(), tag])
            .collect()
    }

    fn platform(arches: &[String]) -> Vec<String> {
        if arches.is_empty() {
            return Vec::new();
        }
        vec![
            "--platform".to_owned(),
            arches
                .iter()
                .map(|arch| format!("linux/{arch}"))
                .collect::<Vec<_>>()
                .join(","),
        ]
    }

    /// `--driver-opt network=host` with a local registry.
    fn driver_options(&self) -> Vec<String> {
        if self.config.registry.is_local() {
            vec!["--driver-opt".to_owned(), "network=host".to_owned()]
        } else {
            Vec::new()
        }
    }

    /// `[<server>/]<cache image>`, the cache image defaulting to `<image>-build-cache`.
    fn cache_image_ref(&self) -> String {
        let image = self
            .config
            .builder
            .cache
            .as_ref()
            .and_then(|cache| cache.image.clone())
            .unwrap_or_else(|| format!("{}-build-cache", self.config.image));
        match &self.config.registry.server {
            Some(server) => format!("{server}/{image}"),
            None => image,
        }
    }

    /// `--cache-to`: `type=gha[,<options>]` or `type=registry,ref=<ref>[,<options>]`.
    pub fn cache_to(&self) -> Option<String> {
        let cache = self.config.builder.cache.as_ref()?;
        let mut parts = match cache.kind.as_str() {
            "gha" => vec!["type=gha".to_owned()],
            "registry" => vec![
                "type=registry".to_owned(),
                format!("ref={}", self.cache_image_ref()),
            ],
            _ => return None,
        };
        parts.extend(cache.options.clone());
        Some(parts.join(","))
    }

    /// `--cache-from`: gha keeps only the `url=`, `url_v2=`, `token=`, `scope=` and `timeout=`
    /// options; registry is `type=registry,ref=<ref>`.
    pub fn cache_from(&self) -> Option<String> {
        let cache = self.config.builder.cache.as_ref()?;
        match cache.kind.as_str() {
            "gha" => {
                let mut parts = vec!["type=gha".to_owned()];
                let options = cache.options.as_deref().unwrap_or_default();
                parts.extend(
                    options
                        .split(',')
                        .filter(|option| {
                            ["url=", "url_v2=", "token=", "scope=", "timeout="]
                                .iter()
                                .any(|prefix| option.starts_with(prefix))
                        })
                        .map(str::to_owned),
                );
                Some(parts.join(","))
            }
            "registry" => Some(format!("type=registry,ref={}", self.cache_image_ref())),
            _ => None,
        }
    }

    fn build_cache(&self) -> Vec<String> {
        match (self.cache_to(), self.cache_from()) {
            (Some(to), Some(from)) => {
                vec!["--cache-to".to_owned(), to, "--cache-from".to_owned(), from]
            }
            _ => Vec::new(),
        }
    }

    fn build_labels(&self) -> Vec<Token> {
        argumentize(
            "--label",
            [("service", self.config.service.as_str())],
            false,
        )
    }

    /// `--build-arg K="v"`, redacted in logs; a `false` value gives `K=false` and an empty one a
    /// bare `K` (docker then takes it from the environment), as Kamal's `argumentize`.
    fn build_args(&self, flag: &str) -> Vec<Token> {
        let raw = self.config.builder.raw.get("args");
        let mut tokens = Vec::new();
        for (key, value) in &self.config.builder.args {
            let is_false = raw
                .and_then(|args| args.get(key))
                .is_some_and(|node| matches!(node.value, Value::Bool(false)));
            if is_false {
                tokens.push(Token::Plain(flag.to_owned()));
                tokens.push(Token::Plain(format!("{key}=false")));
            } else {
                tokens.extend(argumentize(flag, [(key.as_str(), value.as_str())], true));
            }
        }
        tokens
    }

    /// `--secret id="NAME"`: the value comes from the environment variable `NAME`.
    fn build_secrets(&self) -> Vec<Token> {
        argumentize(
            "--secret",
            self.config
                .builder
                .secrets
                .iter()
                .map(|name| ("id", name.as_str())),
            false,
        )
    }

    /// The build-option words after the tags, in Kamal's order: cache, label, build args,
    /// secrets, dockerfile, target, ssh, provenance, sbom.
    pub fn build_options(&self) -> Vec<Token> {
        let builder = &self.config.builder;
        let mut tokens: Vec<Token> = self.build_cache().into_iter().map(Token::Plain).collect();
        tokens.extend(self.build_labels());
        tokens.extend(self.build_args("--build-arg"));
        tokens.extend(self.build_secrets());
        tokens.extend(self.common_tail());
        for (flag, value) in [
            ("--provenance", &builder.provenance),
            ("--sbom", &builder.sbom),
        ] {
            if let Some(value) = value {
                tokens.push(Token::Plain(flag.to_owned()));
                tokens.push(Token::Plain(value.clone()));
            }
        }
        tokens
    }

    /// `--file <dockerfile> [--target <t>] [--ssh <s>]`.
    fn common_tail(&self) -> Vec<Token> {
        let builder = &self.config.builder;
        let mut words = vec!["--file".to_owned(), builder.dockerfile.clone()];
        for (flag, value) in [("--target", &builder.target), ("--ssh", &builder.ssh)] {
            if let Some(value) = value.as_ref().filter(|value| !value.is_empty()) {
                words.push(flag.to_owned());
                words.push(value.clone());
            }
        }
        words.into_iter().map(Token::Plain).collect()
    }

    /// `builder.dockerfile` (`Dockerfile`), relative to the directory dhow runs in.
    pub fn dockerfile(&self) -> &str {
        &self.config.builder.dockerfile
    }

    /// Kamal builds from a clean git clone unless `builder.context` is set.
    pub fn context_is_set(&self) -> bool {
        self.config.builder.context.is_some()
    }

    /// `builder.context`, or `.` (with the default git-clone build, `.` of the clone).
    pub fn context(&self) -> String {
        self.config
            .builder
            .context
            .clone()
            .unwrap_or_else(|| ".".to_owned())
    }

    /// Kamal's `build push`: `docker buildx build --output=type=<output> --platform ...
    /// [--builder <name>] -t <version> -t <latest> <options> [--no-cache] <context> 2>&1`, or the
    /// `pack build ... && docker push ... && docker push ...` line of the pack builder.
    pub fn push(&self, output: &str, no_cache: bool) -> Command {
        if self.kind() == Kind::Pack {
            return self.pack_push(output, no_cache);
        }
        let mut command = Command::from_words(["docker", "buildx", "build"])
            .arg(format!("--output=type={output}"))
            .args(Self::platform(&self.config.builder.arches));
        if !self.docker_driver() {
            command = command
                .arg("--builder")
                .arg(self.builder_name().unwrap_or_default());
        }
        command = command
            .args(self.tag_options())
            .tokens(self.build_options());
        if no_cache {
            command = command.arg("--no-cache");
        }
        command.arg(self.context()).arg("2>&1")
    }

    fn pack_push(&self, output: &str, no_cache: bool) -> Command {
        let builder = &self.config.builder;
        let arch = builder
            .local_arches(self.local_arch)
            .first()
            .cloned()
            .unwrap_or_default();
        let mut build = Command::from_words(["pack", "build"])
            .arg(self.config.repository())
            .arg("--platform")
            .arg(format!("linux/{arch}"))
            .args(["--creation-time", "now", "--builder"])
            .arg(builder.pack_builder.clone().unwrap_or_default());
        for buildpack in builder
            .pack_buildpacks
            .iter()
            .map(String::as_str)
            .chain(["paketo-buildpacks/image-labels"])
        {
            build = build.arg("--buildpack").arg(buildpack);
        }
        build = build.args(self.tag_options());
        if no_cache {
            build = build.arg("--clear-cache");
        }
        build = build
            .arg("--env")
            .arg(format!("BP_IMAGE_LABELS=service={}", self.config.service))
            .tokens(argumentize(
                "--env",
                builder.args.iter().map(|(k, v)| (k.as_str(), v.as_str())),
                false,
            ));
        for secret in &builder.secrets {
            build = build.arg("--env").arg(secret.clone());
        }
        build = build.arg("--path").arg(self.context());
        if output != "registry" {
            return build;
        }
        let [version, latest] = self.tags();
        Command::combine(
            [
                build,
                Command::from_words(["docker", "push"]).arg(version),
                Command::from_words(["docker", "push"]).arg(latest),
            ],
            "&&",
        )
    }

    /// `build create`; `None` when there is nothing to create (`driver: docker`, pack).
    pub fn create(&self) -> Option<Command> {
        let name = self.builder_name()?;
        match self.kind() {
            Kind::Local => (!self.docker_driver()).then(|| {
                Command::from_words(["docker", "buildx", "create", "--name"])
                    .arg(name)
                    .arg(format!("--driver={}", self.driver()))
                    .args(self.driver_options())
            }),
            Kind::Remote => Some(Command::combine(
                [
                    self.create_remote_context(),
                    Command::from_words(["docker", "buildx", "create", "--name"])
                        .arg(name)
                        .args(self.driver_options())
                        .arg(self.remote_context_name()),
                ],
                ";",
            )),
            Kind::Hybrid => {
                let builder = &self.config.builder;
                Some(Command::combine(
                    [
                        Command::from_words(["docker", "buildx", "create"])
                            .args(Self::platform(&builder.local_arches(self.local_arch)))
                            .arg("--name")
                            .arg(name.clone())
                            .arg(format!("--driver={}", self.driver()))
                            .args(self.driver_options()),
                        self.create_remote_context(),
                        Command::from_words(["docker", "buildx", "create"])
                            .args(Self::platform(&builder.remote_arches(self.local_arch)))
                            .args(["--append", "--name"])
                            .arg(name)
                            .args(self.driver_options())
                            .arg(self.remote_context_name()),
                    ],
                    "&&",
                ))
            }
            Kind::Cloud => Some(
                Command::from_words(["docker", "buildx", "create", "--driver"]).arg(self.driver()),
            ),
            Kind::Pack => None,
        }
    }

    /// `docker context create <n>-context --description '<n> host' --docker 'host=<remote>'`.
    fn create_remote_context(&self) -> Command {
        let name = self.builder_name().unwrap_or_default();
        Command::from_words(["docker", "context", "create"])
            .arg(self.remote_context_name())
            .arg("--description")
            .arg(format!("'{name} host'"))
            .arg("--docker")
            .arg(format!("'host={}'", self.remote()))
    }

    /// `build remove`; `None` when there is nothing to remove (`driver: docker`, pack).
    pub fn remove(&self) -> Option<Command> {
        let name = self.builder_name()?;
        let rm = Command::from_words(["docker", "buildx", "rm"]).arg(name);
        match self.kind() {
            Kind::Local => (!self.docker_driver()).then_some(rm),
            Kind::Remote | Kind::Hybrid => Some(Command::combine(
                [
                    Command::from_words(["docker", "context", "rm"])
                        .arg(self.remote_context_name()),
                    rm,
                ],
                ";",
            )),
            Kind::Cloud => Some(rm),
            Kind::Pack => None,
        }
    }

    /// `build details`: `docker context ls && docker buildx ls` (`;` for remote builders), or
    /// `pack builder inspect <builder>`.
    pub fn info(&self) -> Command {
        let ls = [
            Command::from_words(["docker", "context", "ls"]),
            Command::from_words(["docker", "buildx", "ls"]),
        ];
        match self.kind() {
            Kind::Remote | Kind::Hybrid => Command::combine(ls, ";"),
            Kind::Pack => self.pack_inspect(),
            Kind::Local | Kind::Cloud => Command::combine(ls, "&&"),
        }
    }

    fn pack_inspect(&self) -> Command {
        Command::from_words(["pack", "builder", "inspect"])
            .arg(self.config.builder.pack_builder.clone().unwrap_or_default())
    }

    /// The check before a build that the builder exists (and, for remote builders, points at
    /// the remote); `None` with `driver: docker`.
    pub fn inspect_builder(&self) -> Option<Command> {
        let name = self.builder_name();
        match self.kind() {
            Kind::Local | Kind::Cloud => (!self.docker_driver())
                .then(|| Command::from_words(["docker", "buildx", "inspect"]).args(name)),
            Kind::Pack => Some(self.pack_inspect()),
            Kind::Remote | Kind::Hybrid => {
                let context = self.remote_context_name();
                let inspect_buildx = Command::combine(
                    [
                        Command::from_words(["docker", "buildx", "inspect"]).args(name),
                        Command::from_words(["grep", "-q"]).arg(format!("Endpoint:.*{context}")),
                    ],
                    "|",
                );
                let inspect_context = Command::combine(
                    [
                        Command::from_words(["docker", "context", "inspect"])
                            .arg(context)
                            .args(["--format", "'{{.Endpoints.docker.Host}}'"]),
                        Command::from_words(["grep", "-xq"]).arg(self.remote()),
                    ],
                    "|",
                );
                Some(Command::combine(
                    [
                        Command::combine([inspect_buildx, inspect_context], "&&"),
                        Command::new("(echo no compatible builder && exit 1)"),
                    ],
                    "||",
                ))
            }
        }
    }

    /// Whether the registry login happens locally before the build (not for remote builders,
    /// which push with the remote Docker host's credentials).
    pub fn login_to_registry_locally(&self) -> bool {
        !matches!(self.kind(), Kind::Remote | Kind::Hybrid)
    }

    /// Extra environment of the build process: `BUILDKIT_NO_CLIENT_TOKEN=1` for remote builders.
    pub fn push_env(&self) -> Vec<(&'static str, &'static str)> {
        match self.kind() {
            Kind::Remote | Kind::Hybrid => vec![("BUILDKIT_NO_CLIENT_TOKEN", "1")],
            _ => Vec::new(),
        }
    }

    /// `docker image rm --force <image>` (before a pull on a host).
    pub fn clean(&self) -> Command {
        Command::from_words(["docker", "image", "rm", "--force"]).arg(self.image())
    }

    /// `docker pull <image>`.
    pub fn pull(&self) -> Command {
        Command::from_words(["docker", "pull"]).arg(self.image())
    }

    /// Kamal's `validate_image`: the pulled image must carry `service=<svc>`.
    pub fn validate_image(&self) -> Command {
        let image = self.image();
        Command::combine(
            [
                Command::from_words(["docker", "inspect", "-f", "'{{ .Config.Labels.service }}'"])
                    .arg(image.clone()),
                Command::combine(
                    [
                        Command::from_words(["grep", "-x"]).arg(self.config.service.clone()),
                        Command::new(format!(
                            "(echo \"Image {image} is missing the 'service' label\" && exit 1)"
                        )),
                    ],
                    "||",
                ),
            ],
            "|",
        )
    }

    /// The first registry mirror of a host (mirror seeding).
    pub fn first_mirror() -> Command {
        Command::from_words([
            "docker",
            "info",
            "--format '{{index .RegistryConfig.Mirrors 0}}'",
        ])
    }

    /// `docker --version && docker buildx version` (Kamal refuses to build without buildx).
    pub fn ensure_docker_installed() -> Command {
        Command::combine(
            [
                Command::from_words(["docker", "--version"]),
                Self::buildx_version(),
            ],
            "&&",
        )
    }

    /// `docker buildx version`: whether the buildx plugin is there.
    pub fn buildx_version() -> Command {
        Command::from_words(["docker", "buildx", "version"])
    }

    /// `docker info --format '{{.Architecture}}'`: the local Docker architecture.
    pub fn docker_arch() -> Command {
        Command::from_words(["docker", "info", "--format", "'{{.Architecture}}'"])
    }

    /// dhow's build where buildx is missing, in the shape of Kamal 1's native builder:
    /// `docker build [--platform linux/<arch>] -t <version> -t <latest> --label service="<svc>"
    /// [--build-arg K="v"]... [--secret id="NAME"]... --file <Dockerfile> [--target T] [--ssh S]
    /// [--no-cache] <context> 2>&1`, then `docker push` of both tags. Settings only buildx can
    /// honour are refused (several arches, a remote builder, cloud, attestations, an exporter
    /// other than `registry`/`docker`) or, for the cache, left out with a warning.
    pub fn plain(&self, output: &str, no_cache: bool) -> Result<PlainBuild, NeedsBuildx> {
        let builder = &self.config.builder;
        match self.kind() {
            Kind::Remote | Kind::Hybrid => {
                return Err(NeedsBuildx(format!(
                    "a remote builder (builder.remote {})",
                    self.remote()
                )));
            }
            Kind::Cloud => {
                return Err(NeedsBuildx(format!(
                    "the cloud builder (builder.driver {})",
                    self.driver()
                )));
            }
            Kind::Local | Kind::Pack => {}
        }
        if builder.arches.len() > 1 {
            return Err(NeedsBuildx(format!(
                "a multi-arch build (builder.arch {})",
                builder.arches.join(", ")
            )));
        }
        for (key, value) in [("provenance", &builder.provenance), ("sbom", &builder.sbom)] {
            if let Some(value) = value.as_deref().filter(|value| *value != "false") {
                return Err(NeedsBuildx(format!("builder.{key} {value}")));
            }
        }
        if output != "registry" && output != "docker" {
            return Err(NeedsBuildx(format!("--output {output}")));
        }
        let mut warnings = Vec::new();
        if builder.cache.is_some() {
            warnings.push(
                "builder.cache needs docker buildx, which is not installed locally: building without the cache".to_owned(),
            );
        }
        let mut build = Command::from_words(["docker", "build"])
            .args(Self::platform(&builder.arches))
            .args(self.tag_options())
            .tokens(self.build_labels())
            .tokens(self.build_args("--build-arg"))
            .tokens(self.build_secrets())
            .tokens(self.common_tail());
        if no_cache {
            build = build.arg("--no-cache");
        }
        let build = build.arg(self.context()).arg("2>&1");
        let push = if output == "registry" {
            self.tags().into_iter().map(push_image).collect()
        } else {
            Vec::new()
        };
        Ok(PlainBuild {
            build,
            push,
            warnings,
            needs_buildkit: !builder.secrets.is_empty() || builder.ssh.is_some(),
        })
    }

    /// Adopting `reference` when it already carries the service label: `docker tag` to both tags.
    pub fn adopt_tags(&self, reference: &str) -> Vec<Command> {
        self.tags()
            .into_iter()
            .map(|tag| Command::from_words(["docker", "tag", reference]).arg(tag))
            .collect()
    }

    /// Adopting `reference` without the service label: `docker build --label service="<svc>"
    /// -t <version> -t <latest> -` with `FROM <reference>` on standard input (no layer added).
    pub fn adopt_relabel(&self, reference: &str) -> Command {
        Command::from_words(["docker", "build"])
            .tokens(self.build_labels())
            .args(self.tag_options())
            .arg("-")
            .arg("2>&1")
            .with_stdin(crate::Secret::new(format!("FROM {reference}\n")))
    }

    /// Adopting with buildx when the label is there: the registry copies the manifest (every
    /// platform of a multi-arch image), `docker buildx imagetools create -t <version> -t <latest>
    /// <reference>`.
    pub fn adopt_imagetools(&self, reference: &str) -> Command {
        Command::from_words(["docker", "buildx", "imagetools", "create"])
            .args(self.tag_options())
            .arg(reference)
    }
}

/// `docker pull <reference>`.
pub fn pull_image(reference: &str) -> Command {
    Command::from_words(["docker", "pull", reference])
}

/// `docker push <image>`.
pub fn push_image(image: String) -> Command {
    Command::from_words(["docker".to_owned(), "push".to_owned(), image])
}

/// `docker image inspect -f '{{ .Config.Labels.service }}' <reference>`: the service label of a
/// local image (`<no value>` when it has none).
pub fn service_label(reference: &str) -> Command {
    Command::from_words([
        "docker",
        "image",
        "inspect",
        "-f",
        "'{{ .Config.Labels.service }}'",
        reference,
    ])
}

/// `docker image inspect -f '{{json .RepoDigests}}' <image>`: the registry digests of a local
/// image, as a JSON list of `<repository>@sha256:...`.
pub fn repo_digests(image: &str) -> Command {
    Command::from_words([
        "docker",
        "image",
        "inspect",
        "-f",
        "'{{json .RepoDigests}}'",
        image,
    ])
}

/// `docker buildx imagetools inspect <image>`: the digest of what a buildx push left in the
/// registry (its `Digest:` line).
pub fn imagetools_inspect(image: &str) -> Command {
    Command::from_words(["docker", "buildx", "imagetools", "inspect", image])
}

/// The `sha256:...` digest in `docker push` output (`<tag>: digest: sha256:... size: N`) or in
/// `docker buildx imagetools inspect` output (`Digest:    sha256:...`); the last one wins.
pub fn parse_digest(output: &str) -> Option<String> {
    output
        .lines()
        .filter_map(|line| {
            let trimmed = line.trim();
            let rest = trimmed
                .strip_prefix("Digest:")
                .or_else(|| trimmed.split_once(": digest: ").map(|(_, rest)| rest))?;
            let digest = rest.split_whitespace().next()?;
            is_digest(digest).then(|| digest.to_owned())
        })
        .next_back()
}

/// The digest of `repository` among `docker image inspect`'s `RepoDigests` JSON list.
pub fn digest_for_repository(repo_digests_json: &str, repository: &str) -> Option<String> {
    let list: Vec<String> = serde_json::from_str(repo_digests_json.trim()).ok()?;
    list.iter().find_map(|entry| {
        let (repo, digest) = entry.rsplit_once('@')?;
        (repo == repository && is_digest(digest)).then(|| digest.to_owned())
    })
}

fn is_digest(text: &str) -> bool {
    text.strip_prefix("sha256:")
        .is_some_and(|hex| hex.len() == 64 && hex.chars().all(|c| c.is_ascii_hexdigit()))
}

/// An image reference checked for what `docker pull` accepts: no whitespace or shell
/// metacharacters, not empty, not starting with `-`.
pub fn valid_reference(reference: &str) -> bool {
    !reference.is_empty()
        && !reference.starts_with('-')
        && reference.chars().all(|c| {
            c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '/' | ':' | '@' | '+')
        })
}

/// Ruby's `Shellwords.escape`: every character outside `[A-Za-z0-9_\-.,:+/@\n]` gets a
/// backslash, a newline becomes `'\n'`, the empty string `''`.
pub fn shell_escape(text: &str) -> String {
    if text.is_empty() {
        return "''".to_owned();
    }
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c == '\n' {
            out.push_str("'\n'");
        } else {
            if !(c.is_ascii_alphanumeric() || "_-.,:+/@".contains(c)) {
                out.push('\\');
            }
            out.push(c);
        }
    }
    out
}

/// The git clone Kamal builds from when `builder.context` is unset (`builder/clone.rb`), with
/// paths already absolute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GitClone {
    /// `git rev-parse --show-toplevel` of the working directory.
    pub root: String,
    /// `<tmp>/kamal-clones/<svc>-<first 13 hex of sha256(pwd)>`.
    pub clone_directory: String,
    /// `<clone dir>/<repo basename><pwd relative to the repo root>`.
    pub build_directory: String,
}

impl GitClone {
    /// Kamal's paths: `tmp` the system temp directory, `pwd_sha256` the hex SHA-256 of the
    /// working directory, `pwd` the working directory, `root` the repository root.
    pub fn new(service: &str, tmp: &str, pwd: &str, pwd_sha256: &str, root: &str) -> Self {
        let short: String = pwd_sha256.chars().take(13).collect();
        let clone_directory = format!("{tmp}/kamal-clones/{service}-{short}");
        let basename = root.rsplit('/').next().unwrap_or(root);
        let relative = pwd.strip_prefix(root).unwrap_or_default();
        let build_directory = format!("{clone_directory}/{basename}{relative}");
        Self {
            root: root.to_owned(),
            clone_directory,
            build_directory,
        }
    }

    fn git(path: &str, args: &[&str]) -> Command {
        Command::from_words(["git", "-C"])
            .arg(shell_escape(path))
            .args(args.iter().copied())
    }

    /// `git -C <clone dir> clone <root> --recurse-submodules`.
    pub fn clone_repository(&self) -> Command {
        Self::git(&self.clone_directory, &["clone"])
            .arg(shell_escape(&self.root))
            .arg("--recurse-submodules")
    }

    /// The steps that reset an existing clone to `revision`.
    pub fn reset_steps(&self, revision: &str) -> Vec<Command> {
        let root = shell_escape(&self.root);
        let dir = &self.build_directory;
        vec![
            Self::git(dir, &["remote", "set-url", "origin", &root]),
            Self::git(dir, &["fetch", "origin"]),
            Self::git(dir, &["reset", "--hard", revision]),
            Self::git(dir, &["clean", "-fdx"]),
            Self::git(dir, &["submodule", "update", "--init"]),
        ]
    }

    /// `git -C <build dir> status --porcelain` (must print nothing).
    pub fn status(&self) -> Command {
        Self::git(&self.build_directory, &["status", "--porcelain"])
    }

    /// `git -C <build dir> rev-parse HEAD` (must be the local HEAD).
    pub fn revision(&self) -> Command {
        Self::git(&self.build_directory, &["rev-parse", "HEAD"])
    }
}

#[cfg(test)]
mod tests;
