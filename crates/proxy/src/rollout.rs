//! The rollout split: which requests (by their `kamal-rollout` cookie) use the rollout slot,
//! by allow-list or by FNV-1a-32 hash under a percentage split point.

use serde::{Deserialize, Serialize};

use crate::options::null_as_empty;

pub const ROLLOUT_COOKIE: &str = "kamal-rollout";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct RolloutController {
    pub percentage: i64,
    pub percentage_split_point: f64,
    #[serde(deserialize_with = "null_as_empty")]
    pub allowlist: Vec<String>,
}

pub fn fnv1a32(data: &[u8]) -> u32 {
    let mut hash: u32 = 0x811c_9dc5;
    for byte in data {
        hash ^= u32::from(*byte);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    hash
}

impl RolloutController {
    pub fn new(percentage: i64, allowlist: Vec<String>) -> Self {
        #[expect(clippy::cast_precision_loss, reason = "percentages are small")]
        let split = percentage as f64 / 100.0 * f64::from(u32::MAX);
        Self {
            percentage,
            percentage_split_point: split,
            allowlist,
        }
    }

    /// Whether a request with this cookie value goes to the rollout slot.
    pub fn use_rollout(&self, cookie: Option<&str>) -> bool {
        let Some(value) = cookie.filter(|v| !v.is_empty()) else {
            return false;
        };
        if self.allowlist.iter().any(|a| a == value) {
            return true;
        }
        f64::from(fnv1a32(value.as_bytes())) <= self.percentage_split_point && self.percentage > 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn count(rc: &RolloutController) -> usize {
        (0..1000)
            .filter(|i| rc.use_rollout(Some(&format!("{i:05}"))))
            .count()
    }

    #[test]
    fn rollout_controller_test_matches_allowlist_items() {
        let rc = RolloutController::new(0, vec!["1".into(), "2".into()]);
        assert!(rc.use_rollout(Some("1")));
        assert!(rc.use_rollout(Some("2")));
        assert!(!rc.use_rollout(Some("3")));
        assert!(!rc.use_rollout(None));
    }

    #[test]
    fn rollout_controller_test_percentage_split() {
        let rc = RolloutController::new(60, vec![]);
        let n = count(&rc);
        assert!((580..=620).contains(&n), "{n}");
        assert!(!rc.use_rollout(None));
    }

    #[test]
    fn rollout_controller_test_allow_list_and_percentage_together() {
        let rc = RolloutController::new(10, vec!["00001".into(), "00002".into()]);
        let n = count(&rc);
        assert!((80..=120).contains(&n), "{n}");
        assert!(rc.use_rollout(Some("00001")));
        assert!(rc.use_rollout(Some("00002")));
        assert!(!rc.use_rollout(None));
    }

    #[test]
    fn rollout_controller_test_zero_percentage_routes_nothing() {
        let rc = RolloutController::new(0, vec![]);
        assert_eq!(count(&rc), 0);
    }

    #[test]
    fn state_round_trips() {
        let rc: RolloutController = serde_json::from_str(
            r#"{"percentage":100,"percentage_split_point":4294967295,"allowlist":null}"#,
        )
        .unwrap();
        assert!(rc.use_rollout(Some("00001")));
        let json = serde_json::to_string(&RolloutController::new(20, vec!["a".into()])).unwrap();
        assert_eq!(
            json,
            r#"{"percentage":20,"percentage_split_point":858993459.0,"allowlist":["a"]}"#
        );
    }

    #[test]
    fn fnv_known_vector() {
        assert_eq!(fnv1a32(b""), 0x811c_9dc5);
        assert_eq!(fnv1a32(b"a"), 0xe40c_292c);
    }
}
