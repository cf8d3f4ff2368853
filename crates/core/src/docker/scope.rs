//! `Scope`: the names every builder derives from the service and destination, spelled as Kamal
//! spells them (`.kamal`, `<svc>[-<dest>]`, `latest[-<dest>]`).

/// Kamal's run directory, relative to the SSH user's home. Not configurable (Kamal ignores
/// `run_directory`).
pub const RUN_DIRECTORY: &str = ".kamal";

/// The service, its destination and image repository: enough to name every host-side object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    pub service: String,
    pub destination: Option<String>,
    /// `[<registry server>/]<image>`.
    pub repository: String,
    /// The pull request of a preview: its latest tag ends in `-pr-<N>`.
    pub preview: Option<u64>,
}

impl Scope {
    pub fn new(service: &str, destination: Option<&str>, repository: &str) -> Self {
        Self {
            service: service.to_owned(),
            destination: destination.map(str::to_owned),
            repository: repository.to_owned(),
            preview: None,
        }
    }

    /// The scope of pull request `preview`'s preview (or the plain one for `None`).
    #[must_use]
    pub fn with_preview(mut self, preview: Option<u64>) -> Self {
        self.preview = preview;
        self
    }

    /// `<svc>[-<dest>]`.
    pub fn service_and_destination(&self) -> String {
        match &self.destination {
            Some(destination) => format!("{}-{destination}", self.service),
            None => self.service.clone(),
        }
    }

    /// `latest` or `latest-<dest>`, plus `-pr-<N>` for a preview.
    pub fn latest_tag(&self) -> String {
        let tag = match &self.destination {
            Some(destination) => format!("latest-{destination}"),
            None => "latest".to_owned(),
        };
        match self.preview {
            Some(pr) => format!("{tag}-pr-{pr}"),
            None => tag,
        }
    }

    /// `<repository>:latest[-<dest>]`.
    pub fn latest_image(&self) -> String {
        format!("{}:{}", self.repository, self.latest_tag())
    }

    /// `<repository>:<version>`.
    pub fn absolute_image(&self, version: &str) -> String {
        format!("{}:{version}", self.repository)
    }

    /// `.kamal/apps`.
    pub fn apps_directory() -> String {
        format!("{RUN_DIRECTORY}/apps")
    }

    /// `.kamal/apps/<svc>[-<dest>]`.
    pub fn app_directory(&self) -> String {
        format!(
            "{}/{}",
            Self::apps_directory(),
            self.service_and_destination()
        )
    }

    /// `.kamal/apps/<svc>[-<dest>]/env`.
    pub fn env_directory(&self) -> String {
        format!("{}/env", self.app_directory())
    }

    /// `.kamal/apps/<svc>[-<dest>]/env/roles/<role>.env`.
    pub fn role_env_file(&self, role: &str) -> String {
        format!("{}/roles/{role}.env", self.env_directory())
    }

    /// `.kamal/apps/<svc>[-<dest>]/env/accessories/<name>.env`.
    pub fn accessory_env_file(&self, accessory: &str) -> String {
        format!("{}/accessories/{accessory}.env", self.env_directory())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_like_kamal() {
        let plain = Scope::new("app", None, "dhh/app");
        assert_eq!(plain.service_and_destination(), "app");
        assert_eq!(plain.latest_image(), "dhh/app:latest");
        assert_eq!(
            plain.role_env_file("web"),
            ".kamal/apps/app/env/roles/web.env"
        );

        let staging = Scope::new("app", Some("staging"), "registry.io/dhh/app");
        assert_eq!(staging.service_and_destination(), "app-staging");
        assert_eq!(staging.latest_image(), "registry.io/dhh/app:latest-staging");
        assert_eq!(staging.absolute_image("999"), "registry.io/dhh/app:999");
        assert_eq!(
            staging.accessory_env_file("mysql"),
            ".kamal/apps/app-staging/env/accessories/mysql.env"
        );
    }
}
