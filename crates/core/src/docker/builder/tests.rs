//! Exact strings from Kamal's `test/commands/builder_test.rb` (2.11's command shapes: the
//! `--output=type=registry` exporter and the trailing `2>&1`), kamal.md §7 items 17-19, and
//! dhow's own plain-docker and adoption commands.

use std::collections::BTreeMap;

use super::*;
use crate::cmd::{for_exec, for_log};
use crate::config::{LoadInput, NoTemplates, SourceFile};

const BASE: &str = "service: app\nimage: dhh/app\nservers: [1.1.1.1]\n";
const REGISTRY: &str = "registry: {username: dhh, password: secret}\n";

/// Loads the fixture with `builder` (flow YAML) and `extra` root keys.
fn config_with(builder: &str, extra: &str) -> Config {
    let env = BTreeMap::new();
    let registry = if extra.contains("registry:") {
        ""
    } else {
        REGISTRY
    };
    let text = format!("{BASE}{registry}{extra}builder: {builder}\n");
    let input = LoadInput {
        base: SourceFile {
            name: "config/deploy.yml",
            text: Some(&text),
        },
        destination: None,
        env: &env,
        running_version: "2.11.0",
        local_arch: Some("amd64"),
        renderer: &NoTemplates,
    };
    crate::config::load(&input).expect("valid config")
}

fn cfg(builder: &str) -> Config {
    config_with(builder, "")
}

fn builder(config: &Config) -> Builder<'_> {
    Builder::new(config, "123", Some("amd64"))
}

fn push(builder_yaml: &str) -> String {
    let config = cfg(builder_yaml);
    for_exec(&builder(&config).push("registry", false))
}

fn options(builder_yaml: &str) -> String {
    let config = cfg(builder_yaml);
    let command =
        Command::from_words(Vec::<String>::new()).tokens(builder(&config).build_options());
    for_exec(&command).trim_start().to_owned()
}

#[test]
fn target_linux_amd64_locally_by_default() {
    let config = cfg("{arch: amd64, cache: {type: gha}}");
    assert_eq!(builder(&config).kind().name(), "local");
    assert_eq!(
        for_exec(&builder(&config).push("registry", false)),
        "docker buildx build --output=type=registry --platform linux/amd64 --builder kamal-local-docker-container -t dhh/app:123 -t dhh/app:latest --cache-to type=gha --cache-from type=gha --label service=\"app\" --file Dockerfile . 2>&1"
    );
}

#[test]
fn target_specified_arch_locally() {
    assert_eq!(
        push("{arch: [amd64]}"),
        "docker buildx build --output=type=registry --platform linux/amd64 --builder kamal-local-docker-container -t dhh/app:123 -t dhh/app:latest --label service=\"app\" --file Dockerfile . 2>&1"
    );
}

#[test]
fn hybrid_build_if_remote_is_set_and_building_multiarch() {
    let config = cfg("{arch: [amd64, arm64], remote: \"ssh://app@127.0.0.1\", cache: {type: gha}}");
    assert_eq!(builder(&config).kind().name(), "hybrid");
    assert_eq!(
        for_exec(&builder(&config).push("registry", false)),
        "docker buildx build --output=type=registry --platform linux/amd64,linux/arm64 --builder kamal-hybrid-docker-container-ssh---app-127-0-0-1 -t dhh/app:123 -t dhh/app:latest --cache-to type=gha --cache-from type=gha --label service=\"app\" --file Dockerfile . 2>&1"
    );
    assert_eq!(
        builder(&config).push_env(),
        [("BUILDKIT_NO_CLIENT_TOKEN", "1")]
    );
    assert!(!builder(&config).login_to_registry_locally());
}

#[test]
fn remote_build_if_remote_is_set_and_local_disabled() {
    let config = cfg(
        "{arch: [amd64, arm64], remote: \"ssh://app@127.0.0.1\", cache: {type: gha}, local: false}",
    );
    assert_eq!(builder(&config).kind().name(), "remote");
    assert_eq!(
        for_exec(&builder(&config).push("registry", false)),
        "docker buildx build --output=type=registry --platform linux/amd64,linux/arm64 --builder kamal-remote-ssh---app-127-0-0-1 -t dhh/app:123 -t dhh/app:latest --cache-to type=gha --cache-from type=gha --label service=\"app\" --file Dockerfile . 2>&1"
    );
}

#[test]
fn target_remote_when_remote_set_and_arch_is_non_local() {
    let config = cfg("{arch: [arm64], remote: \"ssh://app@host\", cache: {type: gha}}");
    assert_eq!(builder(&config).kind().name(), "remote");
    assert_eq!(
        for_exec(&builder(&config).push("registry", false)),
        "docker buildx build --output=type=registry --platform linux/arm64 --builder kamal-remote-ssh---app-host -t dhh/app:123 -t dhh/app:latest --cache-to type=gha --cache-from type=gha --label service=\"app\" --file Dockerfile . 2>&1"
    );
}

#[test]
fn target_local_when_remote_set_and_arch_is_local() {
    let config = cfg("{arch: [amd64], remote: \"ssh://app@host\", cache: {type: gha}}");
    assert_eq!(builder(&config).kind().name(), "local");
    assert_eq!(
        for_exec(&builder(&config).push("registry", false)),
        "docker buildx build --output=type=registry --platform linux/amd64 --builder kamal-local-docker-container -t dhh/app:123 -t dhh/app:latest --cache-to type=gha --cache-from type=gha --label service=\"app\" --file Dockerfile . 2>&1"
    );
    assert!(builder(&config).login_to_registry_locally());
    assert!(builder(&config).push_env().is_empty());
}

#[test]
fn target_pack_when_pack_is_set() {
    let config = cfg(
        "{arch: amd64, pack: {builder: \"heroku/builder:24\", buildpacks: [heroku/ruby, heroku/procfile]}}",
    );
    assert_eq!(builder(&config).kind().name(), "pack");
    assert_eq!(
        for_exec(&builder(&config).push("registry", false)),
        "pack build dhh/app --platform linux/amd64 --creation-time now --builder heroku/builder:24 --buildpack heroku/ruby --buildpack heroku/procfile --buildpack paketo-buildpacks/image-labels -t dhh/app:123 -t dhh/app:latest --env BP_IMAGE_LABELS=service=app --path . && docker push dhh/app:123 && docker push dhh/app:latest"
    );
    assert_eq!(
        for_exec(&builder(&config).info()),
        "pack builder inspect heroku/builder:24"
    );
    assert_eq!(builder(&config).create(), None);
    assert_eq!(builder(&config).remove(), None);
}

#[test]
fn pack_build_args_passed_as_env_and_no_cache() {
    let config = cfg(
        "{args: {a: 1, b: 2}, arch: amd64, pack: {builder: \"heroku/builder:24\", buildpacks: [heroku/ruby, heroku/procfile]}}",
    );
    assert_eq!(
        for_exec(&builder(&config).push("registry", true)),
        "pack build dhh/app --platform linux/amd64 --creation-time now --builder heroku/builder:24 --buildpack heroku/ruby --buildpack heroku/procfile --buildpack paketo-buildpacks/image-labels -t dhh/app:123 -t dhh/app:latest --clear-cache --env BP_IMAGE_LABELS=service=app --env a=\"1\" --env b=\"2\" --path . && docker push dhh/app:123 && docker push dhh/app:latest"
    );
    assert_eq!(
        for_exec(&builder(&config).push("docker", false)),
        "pack build dhh/app --platform linux/amd64 --creation-time now --builder heroku/builder:24 --buildpack heroku/ruby --buildpack heroku/procfile --buildpack paketo-buildpacks/image-labels -t dhh/app:123 -t dhh/app:latest --env BP_IMAGE_LABELS=service=app --env a=\"1\" --env b=\"2\" --path ."
    );
}

/// Kamal writes `--env token_a="foo"` (the value in the argv); dhow names the variable and
/// passes the value in the environment.
#[test]
fn pack_build_secrets_by_name_only() {
    let config = cfg(
        "{secrets: [token_a, token_b], arch: amd64, pack: {builder: \"heroku/builder:24\", buildpacks: [heroku/ruby, heroku/procfile]}}",
    );
    assert_eq!(
        for_exec(&builder(&config).push("registry", false)),
        "pack build dhh/app --platform linux/amd64 --creation-time now --builder heroku/builder:24 --buildpack heroku/ruby --buildpack heroku/procfile --buildpack paketo-buildpacks/image-labels -t dhh/app:123 -t dhh/app:latest --env BP_IMAGE_LABELS=service=app --env token_a --env token_b --path . && docker push dhh/app:123 && docker push dhh/app:latest"
    );
}

#[test]
fn cloud_builder() {
    let config = cfg("{arch: [amd64], driver: \"cloud docker-org-name/builder-name\"}");
    assert_eq!(builder(&config).kind().name(), "cloud");
    assert_eq!(
        for_exec(&builder(&config).push("registry", false)),
        "docker buildx build --output=type=registry --platform linux/amd64 --builder cloud-docker-org-name-builder-name -t dhh/app:123 -t dhh/app:latest --label service=\"app\" --file Dockerfile . 2>&1"
    );
    assert_eq!(
        builder(&config).create().map(|c| for_exec(&c)).as_deref(),
        Some("docker buildx create --driver cloud docker-org-name/builder-name")
    );
    assert_eq!(
        builder(&config).remove().map(|c| for_exec(&c)).as_deref(),
        Some("docker buildx rm cloud-docker-org-name-builder-name")
    );
    assert_eq!(
        builder(&config)
            .inspect_builder()
            .map(|c| for_exec(&c))
            .as_deref(),
        Some("docker buildx inspect cloud-docker-org-name-builder-name")
    );
}

#[test]
fn build_args_are_redacted_in_logs() {
    assert_eq!(
        options("{arch: amd64, args: {a: 1, b: 2}}"),
        "--label service=\"app\" --build-arg a=\"1\" --build-arg b=\"2\" --file Dockerfile"
    );
    let config = cfg("{arch: amd64, args: {TOKEN: canary-arg, DISABLED: false, EMPTY: null}}");
    let command = builder(&config).push("registry", false);
    assert_eq!(
        for_log(&command),
        "docker buildx build --output=type=registry --platform linux/amd64 --builder kamal-local-docker-container -t dhh/app:123 -t dhh/app:latest --label service=\"app\" --build-arg TOKEN=[REDACTED] --build-arg DISABLED=false --build-arg EMPTY --file Dockerfile . 2>&1"
    );
    assert!(for_exec(&command).contains("--build-arg TOKEN=\"canary-arg\""));
}

#[test]
fn build_secrets_by_name() {
    assert_eq!(
        options("{arch: amd64, secrets: [token_a, token_b]}"),
        "--label service=\"app\" --secret id=\"token_a\" --secret id=\"token_b\" --file Dockerfile"
    );
    assert_eq!(
        push("{arch: amd64, secrets: [a, b]}"),
        "docker buildx build --output=type=registry --platform linux/amd64 --builder kamal-local-docker-container -t dhh/app:123 -t dhh/app:latest --label service=\"app\" --secret id=\"a\" --secret id=\"b\" --file Dockerfile . 2>&1"
    );
}

#[test]
fn build_dockerfile_target_and_ssh() {
    assert_eq!(
        options("{arch: amd64, dockerfile: Dockerfile.xyz}"),
        "--label service=\"app\" --file Dockerfile.xyz"
    );
    assert_eq!(
        options("{arch: amd64, target: prod}"),
        "--label service=\"app\" --file Dockerfile --target prod"
    );
    assert_eq!(
        options("{arch: amd64, ssh: default=$SSH_AUTH_SOCK}"),
        "--label service=\"app\" --file Dockerfile --ssh default=$SSH_AUTH_SOCK"
    );
}

#[test]
fn build_context() {
    assert_eq!(
        push("{arch: amd64, context: \"..\"}"),
        "docker buildx build --output=type=registry --platform linux/amd64 --builder kamal-local-docker-container -t dhh/app:123 -t dhh/app:latest --label service=\"app\" --file Dockerfile .. 2>&1"
    );
    assert_eq!(
        push("{arch: amd64, context: ./foo}"),
        "docker buildx build --output=type=registry --platform linux/amd64 --builder kamal-local-docker-container -t dhh/app:123 -t dhh/app:latest --label service=\"app\" --file Dockerfile ./foo 2>&1"
    );
}

#[test]
fn push_with_provenance_and_sbom() {
    let head = "docker buildx build --output=type=registry --platform linux/amd64 --builder kamal-local-docker-container -t dhh/app:123 -t dhh/app:latest --label service=\"app\" --file Dockerfile";
    assert_eq!(
        push("{arch: amd64, provenance: mode=max}"),
        format!("{head} --provenance mode=max . 2>&1")
    );
    assert_eq!(
        push("{arch: amd64, provenance: false}"),
        format!("{head} --provenance false . 2>&1")
    );
    assert_eq!(
        push("{arch: amd64, sbom: true}"),
        format!("{head} --sbom true . 2>&1")
    );
    assert_eq!(
        push("{arch: amd64, sbom: false}"),
        format!("{head} --sbom false . 2>&1")
    );
}

#[test]
fn push_with_no_cache_and_other_outputs() {
    let config = cfg("{arch: amd64}");
    assert_eq!(
        for_exec(&builder(&config).push("registry", true)),
        "docker buildx build --output=type=registry --platform linux/amd64 --builder kamal-local-docker-container -t dhh/app:123 -t dhh/app:latest --label service=\"app\" --file Dockerfile --no-cache . 2>&1"
    );
    assert_eq!(
        for_exec(&builder(&config).push("docker", false)),
        "docker buildx build --output=type=docker --platform linux/amd64 --builder kamal-local-docker-container -t dhh/app:123 -t dhh/app:latest --label service=\"app\" --file Dockerfile . 2>&1"
    );
}

#[test]
fn docker_driver_passes_no_builder_and_creates_nothing() {
    let config = cfg("{arch: amd64, driver: docker}");
    assert_eq!(
        for_exec(&builder(&config).push("registry", false)),
        "docker buildx build --output=type=registry --platform linux/amd64 -t dhh/app:123 -t dhh/app:latest --label service=\"app\" --file Dockerfile . 2>&1"
    );
    assert_eq!(builder(&config).create(), None);
    assert_eq!(builder(&config).remove(), None);
    assert_eq!(builder(&config).inspect_builder(), None);
}

#[test]
fn destination_latest_tag() {
    let env = BTreeMap::new();
    let text = format!("{BASE}{REGISTRY}builder: {{arch: amd64}}\n");
    let input = LoadInput {
        base: SourceFile {
            name: "config/deploy.yml",
            text: Some(&text),
        },
        destination: Some((
            "staging",
            SourceFile {
                name: "config/deploy.staging.yml",
                text: Some("servers: [1.1.1.2]\n"),
            },
        )),
        env: &env,
        running_version: "2.11.0",
        local_arch: Some("amd64"),
        renderer: &NoTemplates,
    };
    let config = crate::config::load(&input).expect("valid config");
    assert_eq!(
        builder(&config).tags(),
        [
            "dhh/app:123".to_owned(),
            "dhh/app:latest-staging".to_owned()
        ]
    );
}

#[test]
fn cache_specs() {
    let gha = cfg(
        "{arch: amd64, cache: {type: gha, options: \"mode=max,url=http://x,scope=s,token=t,ignore-error=true\"}}",
    );
    assert_eq!(
        builder(&gha).cache_to().as_deref(),
        Some("type=gha,mode=max,url=http://x,scope=s,token=t,ignore-error=true")
    );
    assert_eq!(
        builder(&gha).cache_from().as_deref(),
        Some("type=gha,url=http://x,scope=s,token=t")
    );
    let registry = config_with(
        "{arch: amd64, cache: {type: registry, options: mode=max}}",
        "registry: {server: registry.example.com, username: dhh, password: secret}\n",
    );
    assert_eq!(
        for_exec(&builder(&registry).push("registry", false)),
        "docker buildx build --output=type=registry --platform linux/amd64 --builder kamal-local-docker-container -t registry.example.com/dhh/app:123 -t registry.example.com/dhh/app:latest --cache-to type=registry,ref=registry.example.com/dhh/app-build-cache,mode=max --cache-from type=registry,ref=registry.example.com/dhh/app-build-cache --label service=\"app\" --file Dockerfile . 2>&1"
    );
    let custom = cfg("{arch: amd64, cache: {type: registry, image: my/cache}}");
    assert_eq!(
        builder(&custom).cache_from().as_deref(),
        Some("type=registry,ref=my/cache")
    );
}

#[test]
fn validate_image_pull_clean_and_mirror() {
    let config = cfg("{arch: amd64}");
    let builder = builder(&config);
    assert_eq!(
        for_exec(&builder.validate_image()),
        "docker inspect -f '{{ .Config.Labels.service }}' dhh/app:123 | grep -x app || (echo \"Image dhh/app:123 is missing the 'service' label\" && exit 1)"
    );
    assert_eq!(
        for_exec(&Builder::first_mirror()),
        "docker info --format '{{index .RegistryConfig.Mirrors 0}}'"
    );
    assert_eq!(for_exec(&builder.pull()), "docker pull dhh/app:123");
    assert_eq!(
        for_exec(&builder.clean()),
        "docker image rm --force dhh/app:123"
    );
    assert_eq!(
        for_exec(&Builder::ensure_docker_installed()),
        "docker --version && docker buildx version"
    );
}

#[test]
fn local_builder_create_remove_inspect_details() {
    let config = cfg("{arch: amd64}");
    let builder = builder(&config);
    assert_eq!(
        builder.create().map(|c| for_exec(&c)).as_deref(),
        Some("docker buildx create --name kamal-local-docker-container --driver=docker-container")
    );
    assert_eq!(
        builder.remove().map(|c| for_exec(&c)).as_deref(),
        Some("docker buildx rm kamal-local-docker-container")
    );
    assert_eq!(
        builder.inspect_builder().map(|c| for_exec(&c)).as_deref(),
        Some("docker buildx inspect kamal-local-docker-container")
    );
    assert_eq!(
        for_exec(&builder.info()),
        "docker context ls && docker buildx ls"
    );
}

#[test]
fn local_builder_with_local_registry_includes_network_host_driver_option() {
    let config = config_with("{arch: amd64}", "registry: {server: \"localhost:5000\"}\n");
    assert_eq!(builder(&config).kind().name(), "local");
    assert_eq!(
        builder(&config).create().map(|c| for_exec(&c)).as_deref(),
        Some(
            "docker buildx create --name kamal-local-registry-docker-container --driver=docker-container --driver-opt network=host"
        )
    );
}

#[test]
fn remote_builder_with_local_registry() {
    let config = config_with(
        "{arch: arm64, remote: \"ssh://app@1.1.1.5\"}",
        "registry: {server: \"localhost:5000\"}\n",
    );
    assert_eq!(builder(&config).kind().name(), "remote");
    assert_eq!(
        builder(&config).create().map(|c| for_exec(&c)).as_deref(),
        Some(
            "docker context create kamal-remote-ssh---app-1-1-1-5-local-registry-context --description 'kamal-remote-ssh---app-1-1-1-5-local-registry host' --docker 'host=ssh://app@1.1.1.5' ; docker buildx create --name kamal-remote-ssh---app-1-1-1-5-local-registry --driver-opt network=host kamal-remote-ssh---app-1-1-1-5-local-registry-context"
        )
    );
}

#[test]
fn hybrid_builder_with_local_registry() {
    let config = config_with(
        "{arch: [amd64, arm64], remote: \"ssh://app@1.1.1.5\"}",
        "registry: {server: \"localhost:5000\"}\n",
    );
    assert_eq!(builder(&config).kind().name(), "hybrid");
    assert_eq!(
        builder(&config).create().map(|c| for_exec(&c)).as_deref(),
        Some(
            "docker buildx create --platform linux/amd64 --name kamal-hybrid-docker-container-ssh---app-1-1-1-5-local-registry --driver=docker-container --driver-opt network=host && docker context create kamal-hybrid-docker-container-ssh---app-1-1-1-5-local-registry-context --description 'kamal-hybrid-docker-container-ssh---app-1-1-1-5-local-registry host' --docker 'host=ssh://app@1.1.1.5' && docker buildx create --platform linux/arm64 --append --name kamal-hybrid-docker-container-ssh---app-1-1-1-5-local-registry --driver-opt network=host kamal-hybrid-docker-container-ssh---app-1-1-1-5-local-registry-context"
        )
    );
}

#[test]
fn remote_builder_inspect_remove_details() {
    let config = cfg("{arch: arm64, remote: \"ssh://app@1.1.1.5\"}");
    let builder = builder(&config);
    assert_eq!(
        builder.inspect_builder().map(|c| for_exec(&c)).as_deref(),
        Some(
            "docker buildx inspect kamal-remote-ssh---app-1-1-1-5 | grep -q Endpoint:.*kamal-remote-ssh---app-1-1-1-5-context && docker context inspect kamal-remote-ssh---app-1-1-1-5-context --format '{{.Endpoints.docker.Host}}' | grep -xq ssh://app@1.1.1.5 || (echo no compatible builder && exit 1)"
        )
    );
    assert_eq!(
        builder.remove().map(|c| for_exec(&c)).as_deref(),
        Some(
            "docker context rm kamal-remote-ssh---app-1-1-1-5-context ; docker buildx rm kamal-remote-ssh---app-1-1-1-5"
        )
    );
    assert_eq!(
        for_exec(&builder.info()),
        "docker context ls ; docker buildx ls"
    );
}

#[test]
fn plain_docker_build_like_kamal_1s_native_builder() {
    let config = cfg("{arch: amd64, args: {a: 1, b: 2}, secrets: [a, b], target: prod}");
    let plain = builder(&config).plain("registry", false).expect("plain");
    assert_eq!(
        for_exec(&plain.build),
        "docker build --platform linux/amd64 -t dhh/app:123 -t dhh/app:latest --label service=\"app\" --build-arg a=\"1\" --build-arg b=\"2\" --secret id=\"a\" --secret id=\"b\" --file Dockerfile --target prod . 2>&1"
    );
    assert_eq!(
        for_log(&plain.build),
        "docker build --platform linux/amd64 -t dhh/app:123 -t dhh/app:latest --label service=\"app\" --build-arg a=[REDACTED] --build-arg b=[REDACTED] --secret id=\"a\" --secret id=\"b\" --file Dockerfile --target prod . 2>&1"
    );
    let pushes: Vec<String> = plain.push.iter().map(for_exec).collect();
    assert_eq!(
        pushes,
        ["docker push dhh/app:123", "docker push dhh/app:latest"]
    );
    assert!(plain.needs_buildkit);
    assert!(plain.warnings.is_empty());

    let cached = cfg("{arch: amd64, cache: {type: gha}, provenance: false}");
    let plain = builder(&cached).plain("docker", true).expect("plain");
    assert_eq!(
        for_exec(&plain.build),
        "docker build --platform linux/amd64 -t dhh/app:123 -t dhh/app:latest --label service=\"app\" --file Dockerfile --no-cache . 2>&1"
    );
    assert!(plain.push.is_empty());
    assert!(!plain.needs_buildkit);
    assert_eq!(plain.warnings.len(), 1);
}

#[test]
fn plain_docker_build_refuses_what_needs_buildx() {
    for (yaml, output, reason) in [
        (
            "{arch: [amd64, arm64]}",
            "registry",
            "a multi-arch build (builder.arch amd64, arm64)",
        ),
        (
            "{arch: arm64, remote: \"ssh://app@1.1.1.5\"}",
            "registry",
            "a remote builder (builder.remote ssh://app@1.1.1.5)",
        ),
        (
            "{arch: amd64, driver: \"cloud org/b\"}",
            "registry",
            "the cloud builder (builder.driver cloud org/b)",
        ),
        (
            "{arch: amd64, provenance: mode=max}",
            "registry",
            "builder.provenance mode=max",
        ),
        ("{arch: amd64, sbom: true}", "registry", "builder.sbom true"),
        ("{arch: amd64}", "tar", "--output tar"),
    ] {
        let loaded = cfg(yaml);
        assert_eq!(
            builder(&loaded).plain(output, false),
            Err(NeedsBuildx(reason.to_owned())),
            "{yaml}"
        );
    }
    assert_eq!(
        NeedsBuildx("a multi-arch build".to_owned()).to_string(),
        "a multi-arch build needs the docker buildx plugin, which is not installed locally"
    );
}

#[test]
fn adoption_commands() {
    let config = cfg("{arch: amd64}");
    let builder = builder(&config);
    let reference =
        "ghcr.io/acme/app@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    assert_eq!(
        for_exec(&pull_image(reference)),
        format!("docker pull {reference}")
    );
    assert_eq!(
        for_exec(&service_label(reference)),
        format!("docker image inspect -f '{{{{ .Config.Labels.service }}}}' {reference}")
    );
    let tags: Vec<String> = builder.adopt_tags(reference).iter().map(for_exec).collect();
    assert_eq!(
        tags,
        [
            format!("docker tag {reference} dhh/app:123"),
            format!("docker tag {reference} dhh/app:latest"),
        ]
    );
    let relabel = builder.adopt_relabel(reference);
    assert_eq!(
        for_exec(&relabel),
        "docker build --label service=\"app\" -t dhh/app:123 -t dhh/app:latest - 2>&1"
    );
    assert_eq!(
        relabel.stdin().map(|s| s.expose().clone()),
        Some(format!("FROM {reference}\n"))
    );
    assert_eq!(
        for_exec(&builder.adopt_imagetools(reference)),
        format!("docker buildx imagetools create -t dhh/app:123 -t dhh/app:latest {reference}")
    );
    assert_eq!(
        for_exec(&repo_digests("dhh/app:123")),
        "docker image inspect -f '{{json .RepoDigests}}' dhh/app:123"
    );
    assert_eq!(
        for_exec(&imagetools_inspect("dhh/app:123")),
        "docker buildx imagetools inspect dhh/app:123"
    );
    assert!(valid_reference(reference));
    assert!(valid_reference("127.0.0.1:5000/app:v1"));
    for bad in ["", "-x", "app v1", "app;rm", "app$(x)"] {
        assert!(!valid_reference(bad), "{bad:?}");
    }
}

#[test]
fn digests_from_push_output_and_inspect() {
    let digest = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    let push = format!(
        "The push refers to repository [127.0.0.1:5000/app]\n5f70bf18a086: Pushed\nv1: digest: {digest} size: 528\n"
    );
    assert_eq!(parse_digest(&push).as_deref(), Some(digest));
    let imagetools = format!(
        "Name:      127.0.0.1:5000/app:v1\nMediaType: application/vnd.oci.image.index.v1+json\nDigest:    {digest}\n"
    );
    assert_eq!(parse_digest(&imagetools).as_deref(), Some(digest));
    assert_eq!(parse_digest("nothing: digest: sha256:abc size: 1"), None);
    let json = format!(
        "[\"other/app@sha256:{}\",\"127.0.0.1:5000/app@{digest}\"]\n",
        "f".repeat(64)
    );
    assert_eq!(
        digest_for_repository(&json, "127.0.0.1:5000/app").as_deref(),
        Some(digest)
    );
    assert_eq!(digest_for_repository("[]", "x"), None);
    assert_eq!(digest_for_repository("not json", "x"), None);
}

#[test]
fn git_clone_like_kamal() {
    let clone = GitClone::new(
        "app",
        "/tmp",
        "/absolute/path with spaces/sub",
        "0123456789abcdef",
        "/absolute/path with spaces",
    );
    assert_eq!(clone.clone_directory, "/tmp/kamal-clones/app-0123456789abc");
    assert_eq!(
        clone.build_directory,
        "/tmp/kamal-clones/app-0123456789abc/path with spaces/sub"
    );
    assert_eq!(
        for_exec(&clone.clone_repository()),
        "git -C /tmp/kamal-clones/app-0123456789abc clone /absolute/path\\ with\\ spaces --recurse-submodules"
    );
    let steps: Vec<String> = clone.reset_steps("abc123").iter().map(for_exec).collect();
    let dir = "/tmp/kamal-clones/app-0123456789abc/path\\ with\\ spaces/sub";
    assert_eq!(
        steps,
        [
            format!("git -C {dir} remote set-url origin /absolute/path\\ with\\ spaces"),
            format!("git -C {dir} fetch origin"),
            format!("git -C {dir} reset --hard abc123"),
            format!("git -C {dir} clean -fdx"),
            format!("git -C {dir} submodule update --init"),
        ]
    );
    assert_eq!(
        for_exec(&clone.status()),
        format!("git -C {dir} status --porcelain")
    );
    assert_eq!(
        for_exec(&clone.revision()),
        format!("git -C {dir} rev-parse HEAD")
    );
}

#[test]
fn shell_escape_like_ruby_shellwords() {
    assert_eq!(shell_escape(""), "''");
    assert_eq!(shell_escape("a-b_c.d,e:f+g/h@i"), "a-b_c.d,e:f+g/h@i");
    assert_eq!(shell_escape("it's $x"), "it\\'s\\ \\$x");
    assert_eq!(shell_escape("a\nb"), "a'\n'b");
}

/// Kamal 2.11's `build dev`: `push(output = "docker", tag_as_dirty: true)` — both tags with
/// `-dirty`, the exporter from `--output` (default `docker`).
#[test]
fn dev_build_tags_as_dirty() {
    let config = cfg("{arch: amd64}");
    let dev = builder(&config).tagged_dirty();
    assert_eq!(
        for_exec(&dev.push("docker", false)),
        "docker buildx build --output=type=docker --platform linux/amd64 --builder kamal-local-docker-container -t dhh/app:123-dirty -t dhh/app:latest-dirty --label service=\"app\" --file Dockerfile . 2>&1"
    );
    assert_eq!(
        for_exec(&dev.push("registry", true)),
        "docker buildx build --output=type=registry --platform linux/amd64 --builder kamal-local-docker-container -t dhh/app:123-dirty -t dhh/app:latest-dirty --label service=\"app\" --file Dockerfile --no-cache . 2>&1"
    );
    // The version and pull image stay undirty; only the build's tags change.
    assert_eq!(dev.image(), "dhh/app:123");
    assert_eq!(dev.tags(), ["dhh/app:123-dirty", "dhh/app:latest-dirty"]);

    let destination = config_with(
        "{arch: amd64, driver: docker}",
        "registry: {server: localhost:5555}\n",
    );
    assert_eq!(
        for_exec(&builder(&destination).tagged_dirty().push("docker", false)),
        "docker buildx build --output=type=docker --platform linux/amd64 -t localhost:5555/dhh/app:123-dirty -t localhost:5555/dhh/app:latest-dirty --label service=\"app\" --file Dockerfile . 2>&1"
    );

    // Without buildx: the plain build, no push for the local image store.
    let plain = dev.plain("docker", false).expect("plain");
    assert_eq!(
        for_exec(&plain.build),
        "docker build --platform linux/amd64 -t dhh/app:123-dirty -t dhh/app:latest-dirty --label service=\"app\" --file Dockerfile . 2>&1"
    );
    assert!(plain.push.is_empty());
}
