//! The files an app boot puts on the hosts besides the container (Kamal 2.11's
//! `commands/app/assets.rb`, `app/error_pages.rb` and `create_ssl_directory` of `app/proxy.rb`):
//! asset bridging between versions (`asset_path`), the proxy's error pages (`error_pages_path`)
//! and the directory of a role's custom TLS certificate, with their paths on the host.

use crate::cmd::Command;
use crate::config::{Config, Ssl};

use super::app::App;
use super::proxy;

/// The uid the kamal-proxy image runs as (the `kamal-proxy` user of its `/etc/passwd`, as in
/// basecamp/kamal-proxy): the owner a private key must have for the proxy to read it with mode
/// 0600.
pub const PROXY_UID: &str = "1000";

/// `.kamal/proxy/apps-config/<svc>[-<dest>]/error_pages`.
pub fn error_pages_directory(config: &Config) -> String {
    format!(
        "{}/{}/error_pages",
        proxy::apps_directory(),
        config.service_and_destination()
    )
}

/// `mkdir -p .kamal/proxy/apps-config/<svc>[-<dest>]/error_pages` (Kamal's
/// `create_error_pages_directory`).
pub fn create_error_pages_directory(config: &Config) -> Command {
    Command::from_words([
        "mkdir".to_owned(),
        "-p".to_owned(),
        error_pages_directory(config),
    ])
}

/// `mkdir -p .../error_pages/<version>`: the directory Kamal's recursive upload creates.
pub fn create_error_pages_version_directory(config: &Config, version: &str) -> Command {
    Command::from_words([
        "mkdir".to_owned(),
        "-p".to_owned(),
        format!("{}/{version}", error_pages_directory(config)),
    ])
}

/// `find .../error_pages -mindepth 1 -maxdepth 1 ! -name <version> -exec rm -rf {} +`: every
/// other version's error pages removed (Kamal's `clean_up_error_pages`).
pub fn clean_up_error_pages(config: &Config, version: &str) -> Command {
    Command::from_words([
        "find".to_owned(),
        error_pages_directory(config),
        "-mindepth".to_owned(),
        "1".to_owned(),
        "-maxdepth".to_owned(),
        "1".to_owned(),
        "!".to_owned(),
        "-name".to_owned(),
        version.to_owned(),
        "-exec".to_owned(),
        "rm".to_owned(),
        "-rf".to_owned(),
        "{} +".to_owned(),
    ])
}

/// Whether `name` is one of the error pages Kamal uploads (its glob `{4??.html,5??.html}`).
pub fn is_error_page(name: &str) -> bool {
    let Some(stem) = name.strip_suffix(".html") else {
        return false;
    };
    let mut chars = stem.chars();
    matches!(chars.next(), Some('4' | '5')) && chars.count() == 2
}

/// `mkdir -p`, as Kamal's `make_directory`.
fn make_directory(path: &str) -> Command {
    Command::from_words(["mkdir", "-p", path])
}

/// `cp -rnT <source> <destination> [|| true]`, as Kamal's `copy_contents`.
fn copy_contents(source: &str, destination: &str, continue_on_error: bool) -> Command {
    let command = Command::from_words(["cp", "-rnT", source, destination]);
    if continue_on_error {
        command.arg("|| true")
    } else {
        command
    }
}

/// `find <parent> -maxdepth 1 -name '<role>-*' ! -name <basename> -exec rm -rf "{}" +`.
fn find_and_remove_older_siblings(role: &str, path: &str) -> Command {
    let (parent, name) = path.rsplit_once('/').unwrap_or((".", path));
    Command::from_words([
        "find".to_owned(),
        parent.to_owned(),
        "-maxdepth 1".to_owned(),
        "-name".to_owned(),
        format!("'{role}-*'"),
        "!".to_owned(),
        "-name".to_owned(),
        name.to_owned(),
        "-exec rm -rf \"{}\" +".to_owned(),
    ])
}

impl App<'_> {
    /// Kamal's `assets?`: the role has an `asset_path` and runs behind the proxy.
    pub fn assets(&self) -> bool {
        self.role.asset_path.is_some() && self.role.running_proxy()
    }

    fn assets_directory(&self) -> String {
        format!("{}/assets", self.config.app_directory())
    }

    /// `.kamal/apps/<svc>/assets/extracted/<role>-<version>`.
    pub fn asset_extracted_directory(&self, version: &str) -> String {
        format!(
            "{}/extracted/{}-{version}",
            self.assets_directory(),
            self.role.name
        )
    }

    /// `.kamal/apps/<svc>/assets/volumes/<role>-<version>`: what the container of `version`
    /// mounts at `asset_path`.
    pub fn asset_volume_directory(&self, version: &str) -> String {
        format!(
            "{}/volumes/{}-{version}",
            self.assets_directory(),
            self.role.name
        )
    }

    /// Kamal's `extract_assets`: the image's `asset_path` copied (symlinks followed) into the
    /// version's extracted directory through a created, never started, `<prefix>-assets`
    /// container. `None` when the role has no assets.
    pub fn extract_assets(&self) -> Option<Command> {
        let (asset_path, _) = self.role.asset_path.as_ref().filter(|_| self.assets())?;
        let container = format!("{}-assets", self.container_prefix());
        let extracted = self.asset_extracted_directory(self.version);
        Some(Command::combine(
            [
                make_directory(&extracted),
                Command::from_words([
                    "docker",
                    "container",
                    "rm",
                    &container,
                    "2> /dev/null",
                    "|| true",
                ]),
                Command::from_words([
                    "docker".to_owned(),
                    "container".to_owned(),
                    "create".to_owned(),
                    "--name".to_owned(),
                    container.clone(),
                    self.config.absolute_image(self.version),
                ]),
                Command::from_words([
                    "docker".to_owned(),
                    "container".to_owned(),
                    "cp".to_owned(),
                    "-L".to_owned(),
                    format!("{container}:{asset_path}/."),
                    extracted,
                ]),
                Command::from_words(["docker", "container", "rm", &container]),
            ],
            "&&",
        ))
    }

    /// Kamal's `sync_asset_volumes(old_version:)`: the new version's volume gets its own assets
    /// and, with an old version running, both volumes get the other's assets (`-n`: nothing is
    /// overwritten), so old and new containers serve the union while traffic switches.
    pub fn sync_asset_volumes(&self, old_version: Option<&str>) -> Command {
        let new_extracted = self.asset_extracted_directory(self.version);
        let new_volume = self.asset_volume_directory(self.version);
        let mut commands = vec![
            make_directory(&new_volume),
            copy_contents(&new_extracted, &new_volume, false),
        ];
        if let Some(old) = old_version.filter(|old| !old.is_empty()) {
            commands.push(copy_contents(
                &new_extracted,
                &self.asset_volume_directory(old),
                true,
            ));
            commands.push(copy_contents(
                &self.asset_extracted_directory(old),
                &new_volume,
                true,
            ));
        }
        Command::combine(commands, ";")
    }

    /// Kamal's `clean_up_assets`: every other version's extracted and volume directories of this
    /// role removed.
    pub fn clean_up_assets(&self) -> Command {
        Command::combine(
            [
                find_and_remove_older_siblings(
                    &self.role.name,
                    &self.asset_extracted_directory(self.version),
                ),
                find_and_remove_older_siblings(
                    &self.role.name,
                    &self.asset_volume_directory(self.version),
                ),
            ],
            ";",
        )
    }

    /// Whether the role runs behind the proxy with a custom certificate (Kamal's
    /// `running_proxy? && proxy.custom_ssl_certificate?`); the names of its two secrets.
    pub fn custom_certificate(&self) -> Option<(String, String)> {
        match self.role.proxy.as_ref().map(crate::config::Proxy::ssl) {
            Some(Ssl::Custom {
                certificate_pem,
                private_key_pem,
            }) => Some((certificate_pem, private_key_pem)),
            _ => None,
        }
    }

    /// `.kamal/proxy/apps-config/<svc>[-<dest>]/tls/<role>`.
    pub fn tls_directory(&self) -> String {
        format!(
            "{}/{}/tls/{}",
            proxy::apps_directory(),
            self.config.service_and_destination(),
            self.role.name
        )
    }

    /// `mkdir -p .kamal/proxy/apps-config/<svc>[-<dest>]/tls/<role>` (Kamal's
    /// `create_ssl_directory`).
    pub fn create_ssl_directory(&self) -> Command {
        make_directory(&self.tls_directory())
    }

    /// `.../tls/<role>/cert.pem` on the host.
    pub fn host_tls_cert(&self) -> String {
        format!("{}/cert.pem", self.tls_directory())
    }

    /// `.../tls/<role>/key.pem` on the host.
    pub fn host_tls_key(&self) -> String {
        format!("{}/key.pem", self.tls_directory())
    }

    /// `chown 1000 .../tls/<role>/key.pem`: the 0600 key handed to the proxy's user (root may;
    /// an SSH user whose uid is 1000 already owns it).
    pub fn hand_key_to_proxy(&self) -> Command {
        Command::from_words([
            "chown".to_owned(),
            PROXY_UID.to_owned(),
            self.host_tls_key(),
        ])
    }

    /// `chmod 644 .../tls/<role>/key.pem`: Kamal's mode, the fallback when the SSH user can
    /// not give the key to the proxy's user.
    pub fn key_readable_by_all(&self) -> Command {
        Command::from_words(["chmod".to_owned(), "644".to_owned(), self.host_tls_key()])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cmd::for_exec;
    use crate::docker::app::tests::{app, load};

    const ASSETS: &str = "servers: [1.1.1.1]\nasset_path: /public/assets\n";

    #[test]
    fn extract_assets_like_kamal() {
        let config = load(ASSETS, None);
        assert_eq!(
            for_exec(&app(&config, "web", "999").extract_assets().expect("assets")),
            "mkdir -p .kamal/apps/app/assets/extracted/web-999 && docker container rm app-web-assets 2> /dev/null || true && docker container create --name app-web-assets dhh/app:999 && docker container cp -L app-web-assets:/public/assets/. .kamal/apps/app/assets/extracted/web-999 && docker container rm app-web-assets"
        );
    }

    #[test]
    fn extract_assets_with_destination_and_options() {
        let config = load(
            "servers: [1.1.1.1]\nasset_path: /public/assets:ro\n",
            Some(("staging", "env: {clear: {A: b}}\n")),
        );
        assert_eq!(
            for_exec(&app(&config, "web", "999").extract_assets().expect("assets")),
            "mkdir -p .kamal/apps/app-staging/assets/extracted/web-999 && docker container rm app-web-staging-assets 2> /dev/null || true && docker container create --name app-web-staging-assets dhh/app:999 && docker container cp -L app-web-staging-assets:/public/assets/. .kamal/apps/app-staging/assets/extracted/web-999 && docker container rm app-web-staging-assets"
        );
        assert!(
            for_exec(&app(&config, "web", "999").run("1.1.1.1", None)).contains(
                " --volume $PWD/.kamal/apps/app-staging/assets/volumes/web-999:/public/assets:ro "
            )
        );
    }

    #[test]
    fn no_assets_without_asset_path_or_proxy() {
        let config = load("servers: [1.1.1.1]\n", None);
        assert!(!app(&config, "web", "999").assets());
        assert_eq!(app(&config, "web", "999").extract_assets(), None);
        let config = load(
            "servers:\n  web: [1.1.1.1]\n  workers:\n    hosts: [1.1.1.2]\n    asset_path: /public/assets\n",
            None,
        );
        assert!(!app(&config, "workers", "999").assets());
        assert_eq!(app(&config, "workers", "999").extract_assets(), None);
    }

    #[test]
    fn role_asset_path_overrides_the_root_one() {
        let config = load(
            "servers:\n  web:\n    hosts: [1.1.1.1]\n    asset_path: /rails/public\nasset_path: /public/assets\n",
            None,
        );
        assert!(
            for_exec(&app(&config, "web", "1").extract_assets().expect("assets"))
                .contains(" docker container cp -L app-web-assets:/rails/public/. ")
        );
    }

    #[test]
    fn sync_asset_volumes_like_kamal() {
        let config = load(ASSETS, None);
        assert_eq!(
            for_exec(&app(&config, "web", "999").sync_asset_volumes(None)),
            "mkdir -p .kamal/apps/app/assets/volumes/web-999 ; cp -rnT .kamal/apps/app/assets/extracted/web-999 .kamal/apps/app/assets/volumes/web-999"
        );
        assert_eq!(
            for_exec(&app(&config, "web", "999").sync_asset_volumes(Some(""))),
            "mkdir -p .kamal/apps/app/assets/volumes/web-999 ; cp -rnT .kamal/apps/app/assets/extracted/web-999 .kamal/apps/app/assets/volumes/web-999"
        );
        assert_eq!(
            for_exec(&app(&config, "web", "999").sync_asset_volumes(Some("998"))),
            "mkdir -p .kamal/apps/app/assets/volumes/web-999 ; cp -rnT .kamal/apps/app/assets/extracted/web-999 .kamal/apps/app/assets/volumes/web-999 ; cp -rnT .kamal/apps/app/assets/extracted/web-999 .kamal/apps/app/assets/volumes/web-998 || true ; cp -rnT .kamal/apps/app/assets/extracted/web-998 .kamal/apps/app/assets/volumes/web-999 || true"
        );
    }

    #[test]
    fn clean_up_assets_like_kamal() {
        let config = load(ASSETS, None);
        assert_eq!(
            for_exec(&app(&config, "web", "999").clean_up_assets()),
            "find .kamal/apps/app/assets/extracted -maxdepth 1 -name 'web-*' ! -name web-999 -exec rm -rf \"{}\" + ; find .kamal/apps/app/assets/volumes -maxdepth 1 -name 'web-*' ! -name web-999 -exec rm -rf \"{}\" +"
        );
    }

    #[test]
    fn error_pages_like_kamal() {
        let config = load("servers: [1.1.1.1]\nerror_pages_path: public\n", None);
        assert_eq!(
            for_exec(&create_error_pages_directory(&config)),
            "mkdir -p .kamal/proxy/apps-config/app/error_pages"
        );
        assert_eq!(
            for_exec(&create_error_pages_version_directory(&config, "999")),
            "mkdir -p .kamal/proxy/apps-config/app/error_pages/999"
        );
        assert_eq!(
            for_exec(&clean_up_error_pages(&config, "999")),
            "find .kamal/proxy/apps-config/app/error_pages -mindepth 1 -maxdepth 1 ! -name 999 -exec rm -rf {} +"
        );
        let config = load(
            "servers: [1.1.1.1]\nerror_pages_path: public\n",
            Some(("staging", "env: {clear: {A: b}}\n")),
        );
        assert_eq!(
            for_exec(&clean_up_error_pages(&config, "1")),
            "find .kamal/proxy/apps-config/app-staging/error_pages -mindepth 1 -maxdepth 1 ! -name 1 -exec rm -rf {} +"
        );
    }

    #[test]
    fn error_page_glob() {
        for name in ["404.html", "500.html", "503.html", "4xx.html", "599.html"] {
            assert!(is_error_page(name), "{name}");
        }
        for name in [
            "404.htm",
            "5000.html",
            "50.html",
            "200.html",
            "index.html",
            ".404.html",
            "404.html.bak",
        ] {
            assert!(!is_error_page(name), "{name}");
        }
    }

    #[test]
    fn ssl_directory_and_files_like_kamal() {
        let config = load(
            "servers: [1.1.1.1]\nproxy:\n  host: example.com\n  ssl:\n    certificate_pem: CERT_PEM\n    private_key_pem: KEY_PEM\n",
            None,
        );
        let web = app(&config, "web", "999");
        assert_eq!(
            web.custom_certificate(),
            Some(("CERT_PEM".to_owned(), "KEY_PEM".to_owned()))
        );
        assert_eq!(
            for_exec(&web.create_ssl_directory()),
            "mkdir -p .kamal/proxy/apps-config/app/tls/web"
        );
        assert_eq!(
            web.host_tls_cert(),
            ".kamal/proxy/apps-config/app/tls/web/cert.pem"
        );
        assert_eq!(
            web.host_tls_key(),
            ".kamal/proxy/apps-config/app/tls/web/key.pem"
        );
        assert_eq!(
            for_exec(&web.hand_key_to_proxy()),
            "chown 1000 .kamal/proxy/apps-config/app/tls/web/key.pem"
        );
        assert_eq!(
            for_exec(&web.key_readable_by_all()),
            "chmod 644 .kamal/proxy/apps-config/app/tls/web/key.pem"
        );
        let proxy_deploy = for_exec(&web.proxy_deploy("abc").expect("proxy role"));
        assert!(proxy_deploy.contains(" --tls --tls-certificate-path=\"/home/kamal-proxy/.apps-config/app/tls/web/cert.pem\" --tls-private-key-path=\"/home/kamal-proxy/.apps-config/app/tls/web/key.pem\" "), "{proxy_deploy}");
    }

    #[test]
    fn no_custom_certificate_for_automatic_tls() {
        let config = load(
            "servers: [1.1.1.1]\nproxy:\n  host: example.com\n  ssl: true\n",
            None,
        );
        assert_eq!(app(&config, "web", "999").custom_certificate(), None);
    }
}
