//! `dhow config`: the merged configuration (base + destination) as `kamal config` prints it,
//! secrets redacted.

use std::collections::BTreeMap;
use std::path::Path;

use crate::cli::GlobalArgs;
use crate::error::Error;
use crate::printer::Printer;
use crate::settings;

pub fn run(
    global: &GlobalArgs,
    env: &BTreeMap<String, String>,
    dir: &Path,
    printer: Printer,
) -> Result<(), Error> {
    let loaded = settings::load_config(global, env, dir)?;
    let version = settings::version(global, env, &loaded.config, dir)?;
    let view = loaded.config.kamal_config_view(&version);
    printer.data(&dhow_core::config::to_yaml(&view));
    Ok(())
}
