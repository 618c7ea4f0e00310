//! Signal names as `kill` accepts them: `KILL`, `SIGKILL`, `9`.

use crate::error::{Error, Result};
use nix::sys::signal::Signal;
use std::str::FromStr;

/// Parses a signal given by name (with or without `SIG`, any case) or number.
pub fn parse(s: &str) -> Result<Signal> {
    let bad = || Error::Signal(format!("unknown signal {s:?}"));
    if let Ok(n) = s.parse::<i32>() {
        return Signal::try_from(n).map_err(|_| bad());
    }
    let up = s.to_ascii_uppercase();
    let name = if up.starts_with("SIG") {
        up
    } else {
        format!("SIG{up}")
    };
    Signal::from_str(&name).map_err(|_| bad())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_numbers() {
        assert_eq!(parse("KILL").unwrap(), Signal::SIGKILL);
        assert_eq!(parse("sigterm").unwrap(), Signal::SIGTERM);
        assert_eq!(parse("SIGUSR1").unwrap(), Signal::SIGUSR1);
        assert_eq!(parse("9").unwrap(), Signal::SIGKILL);
        assert!(parse("NOPE").is_err());
        assert!(parse("0").is_err());
        assert!(parse("65").is_err());
    }
}
