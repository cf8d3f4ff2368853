//! The bridge from the loader's [`TemplateRenderer`] to the ERB renderer in [`crate::erb`]: one
//! environment overlay shared by the files of a load (as Ruby shares one `ENV`), with the
//! loader's environment (including `KAMAL_DESTINATION`) in front of the caller's host.

use std::cell::RefCell;
use std::collections::BTreeMap;

use super::load::{Rendered, TemplateFailure, TemplateRenderer};
use crate::erb::{self, EnvOverlay, ErbHost};

/// Renders config files with [`crate::erb`], running commands and reading files through `host`.
pub struct ErbTemplates<'h> {
    host: &'h dyn ErbHost,
    overlay: RefCell<EnvOverlay>,
}

impl std::fmt::Debug for ErbTemplates<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ErbTemplates")
            .field("overlay", &self.overlay)
            .finish_non_exhaustive()
    }
}

impl<'h> ErbTemplates<'h> {
    /// A renderer over `host` (commands, files, working directory). Environment variables come
    /// from the map the loader passes, not from `host`.
    pub fn new(host: &'h dyn ErbHost) -> Self {
        Self {
            host,
            overlay: RefCell::new(EnvOverlay::new()),
        }
    }
}

struct EnvHost<'a> {
    inner: &'a dyn ErbHost,
    env: &'a BTreeMap<String, String>,
}

impl ErbHost for EnvHost<'_> {
    fn env(&self, name: &str) -> Option<String> {
        self.env.get(name).cloned()
    }

    fn env_vars(&self) -> Vec<(String, String)> {
        self.env
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    fn run(&self, command: &str) -> Result<String, String> {
        self.run_with_env(command, &BTreeMap::new())
    }

    fn run_with_env(
        &self,
        command: &str,
        env_changes: &BTreeMap<String, Option<String>>,
    ) -> Result<String, String> {
        // The loader sets or removes KAMAL_DESTINATION for the load; a child process sees that
        // too, as in Kamal, which puts it in its own process environment before ERB runs.
        let mut changes = env_changes.clone();
        changes
            .entry("KAMAL_DESTINATION".to_owned())
            .or_insert_with(|| self.env.get("KAMAL_DESTINATION").cloned());
        self.inner.run_with_env(command, &changes)
    }

    fn read_file(&self, path: &str) -> Result<Option<String>, String> {
        self.inner.read_file(path)
    }

    fn current_dir(&self) -> String {
        self.inner.current_dir()
    }
}

impl TemplateRenderer for ErbTemplates<'_> {
    fn render(
        &self,
        origin: &str,
        source: &str,
        env: &BTreeMap<String, String>,
    ) -> Result<Rendered, TemplateFailure> {
        let host = EnvHost {
            inner: self.host,
            env,
        };
        let mut overlay = self.overlay.borrow_mut();
        match erb::render_with(source, origin, &host, &mut overlay) {
            Ok(r) => Ok(Rendered {
                text: r.text,
                line_map: r.line_map,
            }),
            Err(e) => {
                let mut message = e.to_string();
                let prefix = format!("{}:{}:{}: ", e.origin, e.line, e.column);
                if let Some(rest) = message.strip_prefix(&prefix) {
                    message = rest.to_string();
                }
                Err(TemplateFailure {
                    message,
                    line: e.line,
                    col: Some(e.column),
                    hint: e.hint,
                })
            }
        }
    }
}
