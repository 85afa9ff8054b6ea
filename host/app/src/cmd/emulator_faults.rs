//! `shipper emulator --fault-file FILE`: fault injection from outside the process, for
//! harnesses that run the emulator as its own process (the chaos run in `tests/chaos/`).
//!
//! The file is re-read whenever it changes (polled every 200 ms). Its rules replace the
//! previous ones; an empty or missing file clears them. One rule per line,
//! `API FAULT [PROBABILITY]`, `#` starts a comment:
//!
//! ```text
//! pull 503 0.5          # half of the PullLogs answer 503 ServerBusy
//! pull quota 0.3        # 403 ReadQuotaExceed
//! heartbeat 500         # every heartbeat answers 500
//! checkpoint drop 0.2   # a fifth of the checkpoint commits lose their connection
//! ```
//!
//! APIs: `any`, `pull`, `cursor`, `put`, `heartbeat`, `checkpoint`, `get-checkpoint`,
//! `list-shards`. Faults: `500`, `503`, `quota`, `drop`. The faults themselves are those of
//! `shipper_emulator::faults`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use shipper_emulator::{Api, Fault, FaultRule, Faults};

/// How often the file is checked for changes.
const POLL: Duration = Duration::from_millis(200);

/// A line of the fault file that is not a rule.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "fault file line {line}: {message} (expected `API FAULT [PROBABILITY]`, e.g. `pull 503 0.5`)"
)]
pub struct RuleError {
    line: usize,
    message: String,
}

/// Parses the file's text into rules.
pub fn parse(text: &str) -> Result<Vec<FaultRule>, RuleError> {
    let mut rules = Vec::new();
    for (n, raw) in text.lines().enumerate() {
        let line = raw.split('#').next().unwrap_or_default().trim();
        if line.is_empty() {
            continue;
        }
        let err = |message: String| RuleError {
            line: n + 1,
            message,
        };
        let words: Vec<&str> = line.split_whitespace().collect();
        let (api, fault, probability) = match words.as_slice() {
            [api, fault] => (*api, *fault, 1.0),
            [api, fault, p] => {
                let p: f64 = p
                    .parse()
                    .map_err(|_| err(format!("probability `{p}` is not a number")))?;
                (*api, *fault, p)
            }
            _ => return Err(err(format!("`{line}` has {} words", words.len()))),
        };
        let api = match api {
            "any" => Api::Any,
            "pull" => Api::PullLogs,
            "cursor" => Api::GetCursor,
            "put" => Api::PutLogs,
            "heartbeat" => Api::Heartbeat,
            "checkpoint" => Api::UpdateCheckpoint,
            "get-checkpoint" => Api::GetCheckpoint,
            "list-shards" => Api::ListShards,
            other => return Err(err(format!("unknown API `{other}`"))),
        };
        let fault = match fault {
            "500" => Fault::InternalServerError,
            "503" => Fault::ServerBusy,
            "quota" => Fault::ReadQuotaExceed,
            "drop" => Fault::DropConnection,
            other => return Err(err(format!("unknown fault `{other}`"))),
        };
        rules.push(FaultRule::new(api, fault).probability(probability));
    }
    Ok(rules)
}

/// Applies `path`'s rules to `faults` now and whenever the file changes, until the task is
/// dropped. A file that does not parse clears every rule and is named in an ERROR line.
pub async fn watch(path: PathBuf, faults: Faults) {
    let mut last: Option<String> = None;
    loop {
        let text = read(&path).await;
        if last.as_deref() != Some(text.as_str()) {
            faults.clear();
            match parse(&text) {
                Ok(rules) => {
                    tracing::info!(path = %path.display(), rules = rules.len(), "fault rules applied");
                    for rule in rules {
                        faults.add(rule);
                    }
                }
                Err(e) => {
                    tracing::error!(path = %path.display(), error = %e, "fault rules cleared")
                }
            }
            last = Some(text);
        }
        tokio::time::sleep(POLL).await;
    }
}

/// The file's text; a missing or unreadable file counts as empty (no faults).
async fn read(path: &Path) -> String {
    tokio::fs::read_to_string(path).await.unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_parse_with_comments_and_probabilities() {
        let rules = parse("# storms\npull 503 0.5\n\nheartbeat drop # every one\n").unwrap();
        assert_eq!(
            rules,
            vec![
                FaultRule::new(Api::PullLogs, Fault::ServerBusy).probability(0.5),
                FaultRule::new(Api::Heartbeat, Fault::DropConnection),
            ]
        );
    }

    #[test]
    fn a_bad_line_is_named() {
        let e = parse("pull 503\npull teapot\n").unwrap_err();
        assert_eq!(e.line, 2);
        assert!(e.to_string().contains("unknown fault `teapot`"), "{e}");
        assert!(
            parse("pull 503 often")
                .unwrap_err()
                .to_string()
                .contains("not a number")
        );
        assert!(parse("pull").is_err());
    }
}
