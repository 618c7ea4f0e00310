//! Signal names as `kill` accepts them: `KILL`, `SIGKILL`, `9`, and `0`
//! (no signal: whether the process is there, as kill(2) and runc take it).

use crate::error::{Error, Result};
use nix::sys::signal::Signal;
use std::str::FromStr;

/// Parses a signal given by name (with or without `SIG`, any case) or
/// number; `None` for 0.
pub fn parse(s: &str) -> Result<Option<Signal>> {
    let bad = || Error::Signal(format!("unknown signal {s:?}"));
    if let Ok(n) = s.parse::<i32>() {
        if n == 0 {
            return Ok(None);
        }
        return Signal::try_from(n).map(Some).map_err(|_| bad());
    }
    let up = s.to_ascii_uppercase();
    let name = if up.starts_with("SIG") {
        up
    } else {
        format!("SIG{up}")
    };
    Signal::from_str(&name).map(Some).map_err(|_| bad())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_numbers() {
        assert_eq!(parse("KILL").unwrap(), Some(Signal::SIGKILL));
        assert_eq!(parse("sigterm").unwrap(), Some(Signal::SIGTERM));
        assert_eq!(parse("SIGUSR1").unwrap(), Some(Signal::SIGUSR1));
        assert_eq!(parse("9").unwrap(), Some(Signal::SIGKILL));
        assert_eq!(parse("0").unwrap(), None);
        assert!(parse("NOPE").is_err());
        assert!(parse("-1").is_err());
        assert!(parse("65").is_err());
    }
}
