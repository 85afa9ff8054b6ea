//! Exit codes of the `shipper` binary and the typed error that selects one.
//!
//! | code | meaning |
//! |---:|---|
//! | 0 | success (including a clean stop on SIGINT/SIGTERM) |
//! | 1 | failure while running (a consumer-group membership ended, a plugin failed its test, `reconcile` found a gap) |
//! | 2 | usage or configuration error: bad flags, a bad config key, a file that cannot be read, a plugin that is not a valid component |
//! | 3 | a dependency cannot be reached or refuses our credentials at start-up (SLS, the sink) |
//!
//! The same table is in `shipper --help` ([`EXIT_CODES_HELP`]) and the README. Commands
//! return [`Failure`]; `main` prints its chain and exits with [`Failure::code`].

use std::fmt;

/// The exit-code table as `shipper --help` prints it.
pub const EXIT_CODES_HELP: &str = "Exit codes:
  0  success, including a clean stop on SIGINT/SIGTERM
  1  failure while running (a consumer-group membership ended, a plugin test failed,
     `reconcile` found a gap)
  2  usage or configuration error (flags, config keys, unreadable files, invalid plugin)
  3  a dependency (SLS, the sink) cannot be reached or refuses the credentials at start-up";

/// Why a command failed, which decides the exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// Exit 1: something failed while running.
    Runtime,
    /// Exit 2: the flags or the configuration are wrong; nothing was started.
    Config,
    /// Exit 3: a dependency cannot be reached or refuses the credentials at start-up.
    Unavailable,
}

impl FailureKind {
    /// The process exit code.
    pub fn code(self) -> u8 {
        match self {
            FailureKind::Runtime => 1,
            FailureKind::Config => 2,
            FailureKind::Unavailable => 3,
        }
    }
}

/// A command's failure: what failed (an `anyhow` chain: what, then why) and its kind.
#[derive(Debug)]
pub struct Failure {
    /// Which exit code.
    pub kind: FailureKind,
    /// What failed and why.
    pub error: anyhow::Error,
}

impl Failure {
    /// The process exit code.
    pub fn code(&self) -> u8 {
        self.kind.code()
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // `{:#}` prints the whole context chain on one line: what failed, then why.
        write!(f, "{:#}", self.error)
    }
}

/// Marks an error (or a `Result`'s error) with the exit code it stands for.
pub trait FailureExt<T> {
    /// A configuration or usage error (exit 2).
    fn config_error(self) -> Result<T, Failure>;
    /// A dependency that cannot be reached or refuses us at start-up (exit 3).
    fn unavailable(self) -> Result<T, Failure>;
    /// A failure while running (exit 1).
    fn runtime_error(self) -> Result<T, Failure>;
}

impl<T, E: Into<anyhow::Error>> FailureExt<T> for Result<T, E> {
    fn config_error(self) -> Result<T, Failure> {
        self.map_err(|e| Failure {
            kind: FailureKind::Config,
            error: e.into(),
        })
    }

    fn unavailable(self) -> Result<T, Failure> {
        self.map_err(|e| Failure {
            kind: FailureKind::Unavailable,
            error: e.into(),
        })
    }

    fn runtime_error(self) -> Result<T, Failure> {
        self.map_err(|e| Failure {
            kind: FailureKind::Runtime,
            error: e.into(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kind_has_its_documented_code_and_the_chain_is_printed() {
        let e: Result<(), _> = Err(anyhow::anyhow!("cause").context("what failed"));
        let f = e.config_error().unwrap_err();
        assert_eq!(f.code(), 2);
        assert_eq!(f.to_string(), "what failed: cause");
        assert_eq!(
            Err::<(), _>(anyhow::anyhow!("x"))
                .unavailable()
                .unwrap_err()
                .code(),
            3
        );
        assert_eq!(
            Err::<(), _>(anyhow::anyhow!("x"))
                .runtime_error()
                .unwrap_err()
                .code(),
            1
        );
        for code in 1..=3 {
            assert!(EXIT_CODES_HELP.contains(&format!("  {code}  ")));
        }
    }
}
