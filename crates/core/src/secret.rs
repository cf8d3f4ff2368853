//! `Secret<T>`: a value that never prints. Debug and Display show `[REDACTED]`; the inner value is
//! reached only through [`Secret::expose`], so every place that reveals a secret is greppable.

use std::fmt;

/// The text shown wherever a secret would have been printed.
pub const REDACTED: &str = "[REDACTED]";

/// A secret value. It has no `Serialize` impl and redacts itself in `Debug` and `Display`.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Secret<T>(T);

impl<T> Secret<T> {
    /// Wraps a value read from a secrets file, the environment or an adapter.
    pub fn new(value: T) -> Self {
        Self(value)
    }

    /// Reveals the value. Call this only where the value leaves the process on purpose: an
    /// uploaded 0600 env file, a child's stdin, a masked Actions log line.
    pub fn expose(&self) -> &T {
        &self.0
    }

    /// Consumes the wrapper and returns the value.
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> fmt::Debug for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl<T> fmt::Display for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl From<String> for Secret<String> {
    fn from(value: String) -> Self {
        Self(value)
    }
}

impl From<&str> for Secret<String> {
    fn from(value: &str) -> Self {
        Self(value.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_display_are_redacted() {
        let secret = Secret::new("hunter2-canary".to_owned());
        assert_eq!(format!("{secret:?}"), "[REDACTED]");
        assert_eq!(format!("{secret}"), "[REDACTED]");
        assert_eq!(format!("{:?}", Some(&secret)), "Some([REDACTED])");
        assert_eq!(secret.expose(), "hunter2-canary");
    }

    #[test]
    fn redacted_inside_containers() {
        let pairs = vec![("DB_PASSWORD", Secret::from("canary-xyz"))];
        let rendered = format!("{pairs:?}");
        assert!(!rendered.contains("canary-xyz"), "{rendered}");
        assert!(rendered.contains("[REDACTED]"));
    }
}
