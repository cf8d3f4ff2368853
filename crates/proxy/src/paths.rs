//! Where kamal-proxy keeps its files: the control socket, the data directory and the state file.

use std::path::PathBuf;

fn non_empty_env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

fn temp_dir() -> PathBuf {
    non_empty_env("TMPDIR").map_or_else(|| PathBuf::from("/tmp"), PathBuf::from)
}

/// The unix socket client and server meet on: `$KAMAL_PROXY_SOCKET`, else
/// `$XDG_RUNTIME_DIR/kamal-proxy.sock`, else `$TMPDIR` (or `/tmp`) `/kamal-proxy.sock`.
pub fn socket_path() -> PathBuf {
    if let Some(path) = non_empty_env("KAMAL_PROXY_SOCKET") {
        return PathBuf::from(path);
    }
    if let Some(dir) = non_empty_env("XDG_RUNTIME_DIR") {
        return PathBuf::from(dir).join("kamal-proxy.sock");
    }
    temp_dir().join("kamal-proxy.sock")
}

/// `~/.config/kamal-proxy` (honouring `$XDG_CONFIG_HOME`), created 0700; the temp dir if that fails.
pub fn data_dir() -> PathBuf {
    let config = non_empty_env("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| non_empty_env("HOME").map(|h| PathBuf::from(h).join(".config")));
    if let Some(config) = config {
        let dir = config.join("kamal-proxy");
        if create_private_dir(&dir).is_ok() {
            return dir;
        }
    }
    temp_dir()
}

fn create_private_dir(dir: &PathBuf) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

/// `<data dir>/kamal-proxy.state`.
pub fn state_path() -> PathBuf {
    data_dir().join("kamal-proxy.state")
}

/// `<data dir>/certs`, the default ACME cache directory.
pub fn default_acme_cache_path() -> PathBuf {
    data_dir().join("certs")
}
