//! Deployment status badges as data: the shields.io endpoint JSON and a self-contained SVG
//! (shields' "flat" style) for one environment, from its latest deployment state, version and
//! age. The clock comes in as a value.

use std::fmt::Write as _;

/// The state a badge shows, from the environment's latest deployment status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BadgeState {
    /// The latest deployment succeeded.
    Success,
    /// A deployment is queued or running.
    InProgress,
    /// The latest deployment failed or errored.
    Failure,
    /// The environment has no active deployment (torn down, or never deployed).
    Inactive,
}

impl BadgeState {
    /// From a GitHub deployment status state (`success`, `failure`, `error`, `in_progress`,
    /// `queued`, `pending`, `inactive`); unknown states read as inactive.
    pub fn from_deployment_state(state: &str) -> Self {
        match state {
            "success" => BadgeState::Success,
            "queued" | "pending" | "in_progress" => BadgeState::InProgress,
            "failure" | "error" => BadgeState::Failure,
            _ => BadgeState::Inactive,
        }
    }

    /// The colour name shields.io understands.
    pub fn color_name(self) -> &'static str {
        match self {
            BadgeState::Success => "brightgreen",
            BadgeState::InProgress => "yellow",
            BadgeState::Failure => "red",
            BadgeState::Inactive => "lightgrey",
        }
    }

    /// The same colour as shields.io renders it.
    pub fn color_hex(self) -> &'static str {
        match self {
            BadgeState::Success => "#4c1",
            BadgeState::InProgress => "#dfb317",
            BadgeState::Failure => "#e05d44",
            BadgeState::Inactive => "#9f9f9f",
        }
    }

    fn word(self) -> &'static str {
        match self {
            BadgeState::Success => "live",
            BadgeState::InProgress => "deploying",
            BadgeState::Failure => "failed",
            BadgeState::Inactive => "inactive",
        }
    }
}

/// What one environment's badge says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Badge {
    pub label: String,
    pub message: String,
    pub state: BadgeState,
}

/// The facts a badge is made from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadgeFacts<'a> {
    pub environment: &'a str,
    /// The deployed version (a git SHA is shortened to 7 characters).
    pub version: Option<&'a str>,
    pub state: BadgeState,
    /// When the shown state was reached, in seconds since the Unix epoch.
    pub since_epoch: Option<i64>,
    /// Now, in seconds since the Unix epoch.
    pub now_epoch: i64,
}

impl Badge {
    /// `label` = the environment; `message` = short version and age (`a1b2c3d · 2h ago`), or
    /// the state when the version is unknown or the deploy is not live.
    pub fn new(facts: &BadgeFacts<'_>) -> Self {
        let version = facts.version.map(short_version);
        let age = facts
            .since_epoch
            .map(|since| format!("{} ago", age_text(facts.now_epoch - since)));
        let message = match (facts.state, version, age) {
            (BadgeState::Success, Some(v), Some(age)) => format!("{v} · {age}"),
            (BadgeState::Success, Some(v), None) => v,
            (state, Some(v), _) => format!("{v} {}", state.word()),
            (state, None, _) => state.word().to_owned(),
        };
        Badge {
            label: facts.environment.to_owned(),
            message,
            state: facts.state,
        }
    }

    /// The shields.io endpoint JSON (`schemaVersion`, `label`, `message`, `color`), one line.
    pub fn endpoint_json(&self) -> String {
        let value = serde_json::json!({
            "schemaVersion": 1,
            "label": self.label,
            "message": self.message,
            "color": self.state.color_name(),
        });
        value.to_string()
    }

    /// A self-contained SVG badge in shields' flat style, 20 px high.
    pub fn svg(&self) -> String {
        let label_text = text_width(&self.label);
        let message_text = text_width(&self.message);
        // 5 px of padding either side of each text, as shields does.
        let label_width = label_text + 10;
        let message_width = message_text + 10;
        let width = label_width + message_width;
        let label = xml_escape(&self.label);
        let message = xml_escape(&self.message);
        let title = format!("{label}: {message}");
        let color = self.state.color_hex();
        // Text is laid out at 10× scale, as shields does, for sub-pixel placement.
        let label_x = label_width * 5;
        let message_x = label_width * 10 + message_width * 5;
        let label_length = label_text * 10;
        let message_length = message_text * 10;
        let mut svg = String::new();
        let _ = write!(
            svg,
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"20\" \
             role=\"img\" aria-label=\"{title}\"><title>{title}</title>\
             <linearGradient id=\"s\" x2=\"0\" y2=\"100%\"><stop offset=\"0\" stop-color=\"#bbb\" \
             stop-opacity=\".1\"/><stop offset=\"1\" stop-opacity=\".1\"/></linearGradient>\
             <clipPath id=\"r\"><rect width=\"{width}\" height=\"20\" rx=\"3\" fill=\"#fff\"/>\
             </clipPath><g clip-path=\"url(#r)\"><rect width=\"{label_width}\" height=\"20\" \
             fill=\"#555\"/><rect x=\"{label_width}\" width=\"{message_width}\" height=\"20\" \
             fill=\"{color}\"/><rect width=\"{width}\" height=\"20\" fill=\"url(#s)\"/></g>\
             <g fill=\"#fff\" text-anchor=\"middle\" \
             font-family=\"Verdana,Geneva,DejaVu Sans,sans-serif\" \
             text-rendering=\"geometricPrecision\" font-size=\"110\">\
             <text aria-hidden=\"true\" x=\"{label_x}\" y=\"150\" fill=\"#010101\" \
             fill-opacity=\".3\" transform=\"scale(.1)\" textLength=\"{label_length}\">{label}</text>\
             <text x=\"{label_x}\" y=\"140\" transform=\"scale(.1)\" fill=\"#fff\" \
             textLength=\"{label_length}\">{label}</text>\
             <text aria-hidden=\"true\" x=\"{message_x}\" y=\"150\" fill=\"#010101\" \
             fill-opacity=\".3\" transform=\"scale(.1)\" textLength=\"{message_length}\">{message}</text>\
             <text x=\"{message_x}\" y=\"140\" transform=\"scale(.1)\" fill=\"#fff\" \
             textLength=\"{message_length}\">{message}</text></g></svg>"
        );
        svg
    }

    /// The SVG's width in pixels (its height is always 20).
    pub fn svg_width(&self) -> u32 {
        text_width(&self.label) + text_width(&self.message) + 20
    }
}

/// A git SHA shortened to 7 characters; other versions as they are.
pub fn short_version(version: &str) -> String {
    let is_sha = version.len() >= 12 && version.bytes().all(|b| b.is_ascii_hexdigit());
    if is_sha {
        version[..7].to_owned()
    } else {
        version.to_owned()
    }
}

/// An age in the largest whole unit: `45s`, `12m`, `3h`, `5d`, `7w`. Negative ages (clock
/// skew) read as `0s`.
pub fn age_text(seconds: i64) -> String {
    let s = seconds.max(0);
    match s {
        0..60 => format!("{s}s"),
        60..3_600 => format!("{}m", s / 60),
        3_600..86_400 => format!("{}h", s / 3_600),
        86_400..1_209_600 => format!("{}d", s / 86_400),
        _ => format!("{}w", s / 604_800),
    }
}

/// Seconds since the Unix epoch of a GitHub timestamp (`2026-11-25T15:04:05Z`, or with a
/// `+hh:mm` offset); `None` when it does not parse.
pub fn parse_timestamp(text: &str) -> Option<i64> {
    let b = text.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' {
        return None;
    }
    let num = |from: usize, to: usize| -> Option<i64> {
        let part = text.get(from..to)?;
        if part.bytes().all(|c| c.is_ascii_digit()) {
            part.parse().ok()
        } else {
            None
        }
    };
    let (year, month, day) = (num(0, 4)?, num(5, 7)?, num(8, 10)?);
    let (hour, minute, second) = (num(11, 13)?, num(14, 16)?, num(17, 19)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 {
        return None;
    }
    // Skip fractional seconds.
    let mut rest = &text[19..];
    if let Some(fraction) = rest.strip_prefix('.') {
        let digits = fraction.bytes().take_while(u8::is_ascii_digit).count();
        rest = &fraction[digits..];
    }
    let offset = match rest {
        "Z" | "z" => 0,
        _ => {
            let sign = match rest.as_bytes().first()? {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            if rest.len() != 6 || rest.as_bytes()[3] != b':' {
                return None;
            }
            let h: i64 = rest[1..3].parse().ok()?;
            let m: i64 = rest[4..6].parse().ok()?;
            sign * (h * 3_600 + m * 60)
        }
    };
    let days = days_from_civil(year, month, day);
    Some(days * 86_400 + hour * 3_600 + minute * 60 + second - offset)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The width in whole pixels of `text` in Verdana 11 px (the font shields measures with),
/// from per-character advance widths in tenths of a pixel; characters outside the table
/// count as a wide letter.
fn text_width(text: &str) -> u32 {
    let tenths: u32 = text.chars().map(char_width_tenths).sum();
    tenths.div_ceil(10)
}

fn char_width_tenths(c: char) -> u32 {
    match c {
        ' ' => 39,
        '!' | '\'' | '|' | 'i' | 'l' | ':' | ';' | '.' | ',' | '·' => 43,
        '"' => 50,
        '$' | '*' | '+' | '<' | '=' | '>' | '^' | '~' | '_' => 73,
        '(' | ')' | '[' | ']' | '{' | '}' | '-' | 'f' | 'j' | 'r' | 't' => 47,
        '/' | '\\' | '?' | 's' | 'c' | 'z' => 60,
        '0'..='9' => 70,
        'a' | 'e' | 'k' | 'v' | 'x' | 'y' => 66,
        'b' | 'd' | 'g' | 'h' | 'n' | 'o' | 'p' | 'q' | 'u' => 69,
        'm' => 106,
        'A'..='Z' => match c {
            'I' => 46,
            'J' => 50,
            'M' | 'W' => 95,
            'O' | 'Q' | 'G' | 'D' | 'H' | 'N' | 'C' | 'U' => 82,
            _ => 75,
        },
        // '#', '%', '&', '@', 'w' and anything else: a wide letter.
        _ => 90,
    }
}

fn xml_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(state: BadgeState, version: Option<&'static str>) -> BadgeFacts<'static> {
        BadgeFacts {
            environment: "production",
            version,
            state,
            since_epoch: Some(1_000),
            now_epoch: 1_000 + 2 * 3_600 + 59,
        }
    }

    #[test]
    fn message_is_short_version_and_age_when_live() {
        let badge = Badge::new(&facts(
            BadgeState::Success,
            Some("0123456789abcdef0123456789abcdef01234567"),
        ));
        assert_eq!(badge.label, "production");
        assert_eq!(badge.message, "0123456 · 2h ago");
        assert_eq!(
            badge.endpoint_json(),
            r#"{"color":"brightgreen","label":"production","message":"0123456 · 2h ago","schemaVersion":1}"#
        );
    }

    #[test]
    fn message_names_the_state_otherwise() {
        assert_eq!(
            Badge::new(&facts(BadgeState::Failure, Some("v2"))).message,
            "v2 failed"
        );
        assert_eq!(
            Badge::new(&facts(BadgeState::InProgress, Some("v3"))).message,
            "v3 deploying"
        );
        assert_eq!(
            Badge::new(&facts(BadgeState::Inactive, None)).message,
            "inactive"
        );
        assert_eq!(
            Badge::new(&facts(BadgeState::Failure, None)).endpoint_json(),
            r#"{"color":"red","label":"production","message":"failed","schemaVersion":1}"#
        );
    }

    #[test]
    fn states_map_from_github() {
        for (state, expected) in [
            ("success", BadgeState::Success),
            ("queued", BadgeState::InProgress),
            ("pending", BadgeState::InProgress),
            ("in_progress", BadgeState::InProgress),
            ("failure", BadgeState::Failure),
            ("error", BadgeState::Failure),
            ("inactive", BadgeState::Inactive),
            ("something-new", BadgeState::Inactive),
        ] {
            assert_eq!(
                BadgeState::from_deployment_state(state),
                expected,
                "{state}"
            );
        }
    }

    #[test]
    fn ages_use_the_largest_unit() {
        assert_eq!(age_text(-5), "0s");
        assert_eq!(age_text(59), "59s");
        assert_eq!(age_text(60), "1m");
        assert_eq!(age_text(3_599), "59m");
        assert_eq!(age_text(3_600), "1h");
        assert_eq!(age_text(86_399), "23h");
        assert_eq!(age_text(86_400), "1d");
        assert_eq!(age_text(13 * 86_400), "13d");
        assert_eq!(age_text(14 * 86_400), "2w");
    }

    #[test]
    fn timestamps_parse_as_github_writes_them() {
        assert_eq!(parse_timestamp("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_timestamp("2026-11-25T15:04:05Z"), Some(1_795_619_045));
        assert_eq!(
            parse_timestamp("2026-11-25T16:04:05+01:00"),
            Some(1_795_619_045)
        );
        assert_eq!(
            parse_timestamp("2026-11-25T15:04:05.123Z"),
            Some(1_795_619_045)
        );
        assert_eq!(parse_timestamp("2024-02-29T00:00:00Z"), Some(1_709_164_800));
        assert_eq!(parse_timestamp("yesterday"), None);
        assert_eq!(parse_timestamp("2026-13-01T00:00:00Z"), None);
        assert_eq!(parse_timestamp("2026-11-25T15:04:05"), None);
    }

    #[test]
    fn short_versions() {
        assert_eq!(
            short_version("0123456789abcdef0123456789abcdef01234567"),
            "0123456"
        );
        assert_eq!(
            short_version("0123456789abcdef0123456789abcdef01234567_uncommitted_abcd"),
            "0123456789abcdef0123456789abcdef01234567_uncommitted_abcd"
        );
        assert_eq!(short_version("v1.2.3"), "v1.2.3");
    }

    #[test]
    fn svg_is_self_contained_and_sized_from_its_text() {
        let badge = Badge::new(&facts(BadgeState::Success, Some("v1")));
        let svg = badge.svg();
        assert!(svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\" width=\""));
        assert!(svg.ends_with("</svg>"));
        assert!(!svg.contains("href"), "no external references: {svg}");
        let width = badge.svg_width();
        assert!(svg.contains(&format!("width=\"{width}\" height=\"20\"")));
        // p 6.9 + r 4.7 + o 6.9 + d 6.9 + u 6.9 + c 6.0 + t 4.7 + i 4.3 + o 6.9 + n 6.9 = 61.1
        assert_eq!(text_width("production"), 62);
        assert_eq!(
            width,
            text_width("production") + text_width("v1 · 2h ago") + 20
        );
        assert!(svg.contains("fill=\"#4c1\""));
        assert!(svg.contains("<title>production: v1 · 2h ago</title>"));
    }

    #[test]
    fn svg_escapes_text() {
        let badge = Badge {
            label: "a<b>&\"c\"".to_owned(),
            message: "it's".to_owned(),
            state: BadgeState::Inactive,
        };
        let svg = badge.svg();
        assert!(svg.contains("a&lt;b&gt;&amp;&quot;c&quot;: it&apos;s"));
        assert!(!svg.contains("a<b>"));
        assert!(svg.contains("fill=\"#9f9f9f\""));
    }
}
