//! The pause state machine of a service: running, paused (requests wait up to `fail_after`) and
//! stopped (requests get the 503 maintenance page with the stop message).

use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use crate::options::Nanos;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PauseState {
    #[default]
    Running,
    Paused,
    Stopped,
}

impl PauseState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Running => "running",
            Self::Paused => "paused",
            Self::Stopped => "stopped",
        }
    }
}

impl Serialize for PauseState {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u8(match self {
            Self::Running => 0,
            Self::Paused => 1,
            Self::Stopped => 2,
        })
    }
}

impl<'de> Deserialize<'de> for PauseState {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(match u8::deserialize(d)? {
            1 => Self::Paused,
            2 => Self::Stopped,
            _ => Self::Running,
        })
    }
}

/// The saved form: `{"state":0,"stop_message":"","fail_after":0}`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct PauseSnapshot {
    pub state: PauseState,
    pub stop_message: String,
    pub fail_after: Nanos,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WaitResult {
    Proceed,
    Stopped(String),
    TimedOut,
}

#[derive(Debug)]
pub struct PauseController {
    state: watch::Sender<PauseSnapshot>,
}

impl Default for PauseController {
    fn default() -> Self {
        Self::new(PauseSnapshot::default())
    }
}

impl PauseController {
    pub fn new(snapshot: PauseSnapshot) -> Self {
        Self {
            state: watch::channel(snapshot).0,
        }
    }

    pub fn snapshot(&self) -> PauseSnapshot {
        self.state.borrow().clone()
    }

    pub fn state(&self) -> PauseState {
        self.state.borrow().state
    }

    pub fn pause(&self, fail_after: Duration) {
        self.state.send_replace(PauseSnapshot {
            state: PauseState::Paused,
            stop_message: String::new(),
            fail_after: Nanos(fail_after),
        });
    }

    pub fn stop(&self, message: &str) {
        self.state.send_replace(PauseSnapshot {
            state: PauseState::Stopped,
            stop_message: message.to_string(),
            fail_after: Nanos::default(),
        });
    }

    pub fn resume(&self) {
        self.state.send_replace(PauseSnapshot::default());
    }

    /// Waits while paused (at most `fail_after` from now).
    pub async fn wait(&self) -> WaitResult {
        // Running (nearly always): nothing to subscribe to.
        if self.state.borrow().state == PauseState::Running {
            return WaitResult::Proceed;
        }
        let mut rx = self.state.subscribe();
        let snapshot = rx.borrow_and_update().clone();
        let deadline = match snapshot.state {
            PauseState::Running => return WaitResult::Proceed,
            PauseState::Stopped => return WaitResult::Stopped(snapshot.stop_message),
            PauseState::Paused => tokio::time::Instant::now() + snapshot.fail_after.0,
        };
        loop {
            match tokio::time::timeout_at(deadline, rx.changed()).await {
                Err(_) | Ok(Err(_)) => return WaitResult::TimedOut,
                Ok(Ok(())) => {
                    let current = rx.borrow_and_update().clone();
                    match current.state {
                        PauseState::Running => return WaitResult::Proceed,
                        PauseState::Stopped => return WaitResult::Stopped(current.stop_message),
                        PauseState::Paused => {}
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[tokio::test]
    async fn pause_controller_test_running_by_default() {
        let pc = PauseController::default();
        assert_eq!(pc.state(), PauseState::Running);
        assert_eq!(pc.wait().await, WaitResult::Proceed);
    }

    #[tokio::test]
    async fn pause_controller_test_paused_wait_blocks_until_resume() {
        let pc = Arc::new(PauseController::default());
        pc.pause(Duration::from_secs(30));
        let waiter = tokio::spawn({
            let pc = Arc::clone(&pc);
            async move { pc.wait().await }
        });
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        pc.resume();
        assert_eq!(waiter.await.unwrap(), WaitResult::Proceed);
    }

    #[tokio::test]
    async fn pause_controller_test_paused_wait_times_out() {
        let pc = PauseController::default();
        pc.pause(Duration::from_millis(10));
        assert_eq!(pc.wait().await, WaitResult::TimedOut);
    }

    #[tokio::test]
    async fn pause_controller_test_stopped_returns_message() {
        let pc = PauseController::default();
        pc.stop("down for maintenance");
        assert_eq!(
            pc.wait().await,
            WaitResult::Stopped("down for maintenance".into())
        );
    }

    #[tokio::test]
    async fn pause_controller_test_stop_releases_paused_waiters() {
        let pc = Arc::new(PauseController::default());
        pc.pause(Duration::from_secs(30));
        let waiter = tokio::spawn({
            let pc = Arc::clone(&pc);
            async move { pc.wait().await }
        });
        tokio::task::yield_now().await;
        pc.stop("bye");
        assert_eq!(waiter.await.unwrap(), WaitResult::Stopped("bye".into()));
    }

    #[test]
    fn state_serializes_as_numbers() {
        let s = PauseSnapshot {
            state: PauseState::Stopped,
            stop_message: "m".into(),
            fail_after: Nanos(Duration::from_secs(1)),
        };
        assert_eq!(
            serde_json::to_string(&s).unwrap(),
            r#"{"state":2,"stop_message":"m","fail_after":1000000000}"#
        );
    }
}
