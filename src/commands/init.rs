//! `dhow init`: writes `config/deploy.yml`, `.kamal/secrets` and sample hooks, like `kamal init`.
//! Existing files are never overwritten.

use std::fs;
use std::path::Path;

use crate::error::Error;
use crate::printer::Printer;

const DEPLOY_TEMPLATE: &str = include_str!("../templates/deploy.yml");
const SECRETS_TEMPLATE: &str = include_str!("../templates/secrets");

/// The sample hooks, by file name. Every hook dhow runs has one.
const SAMPLE_HOOKS: [(&str, &str); 9] = [
    (
        "docker-setup.sample",
        include_str!("../templates/hooks/docker-setup.sample"),
    ),
    (
        "post-app-boot.sample",
        include_str!("../templates/hooks/post-app-boot.sample"),
    ),
    (
        "post-deploy.sample",
        include_str!("../templates/hooks/post-deploy.sample"),
    ),
    (
        "post-proxy-reboot.sample",
        include_str!("../templates/hooks/post-proxy-reboot.sample"),
    ),
    (
        "pre-app-boot.sample",
        include_str!("../templates/hooks/pre-app-boot.sample"),
    ),
    (
        "pre-build.sample",
        include_str!("../templates/hooks/pre-build.sample"),
    ),
    (
        "pre-connect.sample",
        include_str!("../templates/hooks/pre-connect.sample"),
    ),
    (
        "pre-deploy.sample",
        include_str!("../templates/hooks/pre-deploy.sample"),
    ),
    (
        "pre-proxy-reboot.sample",
        include_str!("../templates/hooks/pre-proxy-reboot.sample"),
    ),
];

/// Creates the files under `root` (the current directory when run from the CLI).
pub fn run(root: &Path, printer: Printer) -> Result<(), Error> {
    let deploy = root.join("config/deploy.yml");
    if deploy.exists() {
        printer.info(
            "Config file already exists in config/deploy.yml (remove first to create a new one)",
        );
    } else {
        write(&deploy, DEPLOY_TEMPLATE, None)?;
        printer.info("Created configuration file in config/deploy.yml");
    }

    let secrets = root.join(".kamal/secrets");
    if !secrets.exists() {
        write(&secrets, SECRETS_TEMPLATE, None)?;
        printer.info("Created .kamal/secrets file");
    }

    let hooks = root.join(".kamal/hooks");
    if !hooks.exists() {
        for (name, body) in SAMPLE_HOOKS {
            write(&hooks.join(name), body, Some(0o755))?;
        }
        printer.info("Created sample hooks in .kamal/hooks");
    }
    Ok(())
}

fn write(path: &Path, contents: &str, mode: Option<u32>) -> Result<(), Error> {
    let fail = |source| Error::WriteFile {
        path: path.to_path_buf(),
        source,
    };
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).map_err(fail)?;
    }
    fs::write(path, contents).map_err(fail)?;
    if let Some(mode) = mode {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(path, fs::Permissions::from_mode(mode)).map_err(fail)?;
    }
    Ok(())
}
