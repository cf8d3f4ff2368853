//! Kamal 2 configuration: loading (ERB through an injected renderer, YAML with positions,
//! destination overlays), validation against Kamal's own documentation schema with every error
//! collected, the typed configuration with defaults and derived values, and the `config` view.
//!
//! Phases: [`yaml`] (spanned tree) → [`load`] (merge, validate, type) → [`Config`] → [`view`].

pub mod error;
pub mod load;
pub mod model;
pub mod preview;
mod rules;
pub mod schema;
pub mod template;
mod validate;
pub mod view;
pub mod yaml;

pub use error::{ConfigError, ConfigErrors, ErrorKind, render_error};
pub use load::{
    LoadInput, NoTemplates, Rendered, SourceFile, TemplateFailure, TemplateRenderer,
    destination_file_name, load, load_preview,
};
pub use model::{
    Accessory, Boot, BootLimit, Builder, BuilderCache, Config, Credential, Env, HooksOutput, Host,
    Logging, PathMount, Proxy, ProxyRun, Registry, Role, SecretRef, Ssh, SshConfigFiles, SshProxy,
    Sshkit, Ssl,
};
pub use schema::{SECTIONS, docs};
pub use template::ErbTemplates;
pub use view::{to_json, to_yaml};
pub use yaml::{Node, Span, Value};
