//! Which upgrade a connector asks the API server for first. Raw SPDY, unless this machine says
//! otherwise (`KFTRAY_TRANSPORT=websocket`): with raw SPDY the API server passes the bytes
//! through to the kubelet, while SPDY inside WebSocket it must unwrap and re-frame. Measured
//! (BENCHMARKS.md, figures 1 and 11), the WebSocket path cost the cluster more CPU per GiB and
//! carried less, by an amount that moved between runs. Either way the other is the fallback
//! when the cluster, or a proxy on the way, refuses the first.
//!
//! A machine setting, not a file's: what a proxy between this machine and the cluster lets
//! through is this machine's business, not a team file's.

/// The environment variable that chooses.
const ENV: &str = "KFTRAY_TRANSPORT";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FirstChoice {
    /// SPDY/3.1 on the upgraded connection, as kubectl spoke before 1.31.
    #[default]
    Spdy,
    /// SPDY/3.1 inside WebSocket messages, kubectl's first choice since 1.31.
    WebSocket,
}

impl FirstChoice {
    /// This machine's choice: `KFTRAY_TRANSPORT` when set, else raw SPDY.
    pub fn from_env() -> Result<FirstChoice, String> {
        match std::env::var(ENV) {
            Err(_) => Ok(FirstChoice::default()),
            Ok(value) => FirstChoice::parse(&value),
        }
    }

    fn parse(value: &str) -> Result<FirstChoice, String> {
        match value {
            "" | "spdy" => Ok(FirstChoice::Spdy),
            "websocket" => Ok(FirstChoice::WebSocket),
            other => Err(format!(
                "{ENV}={other:?} is not a transport: set it to `spdy` (the default) or \
                 `websocket` (SPDY inside WebSocket, for a proxy that lets only WebSocket \
                 upgrades through), or unset it"
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_two_names_and_nothing_else() {
        assert_eq!(FirstChoice::parse("spdy"), Ok(FirstChoice::Spdy));
        assert_eq!(FirstChoice::parse(""), Ok(FirstChoice::Spdy));
        assert_eq!(FirstChoice::parse("websocket"), Ok(FirstChoice::WebSocket));
        let err = FirstChoice::parse("WebSockets").unwrap_err();
        assert!(err.contains("KFTRAY_TRANSPORT=\"WebSockets\"") && err.contains("`websocket`"));
    }
}
