//! Connection targets in the syntax of `ovs-vsctl --db`: `unix:PATH`,
//! `tcp:HOST[:PORT]`, `ssl:HOST[:PORT]`, with IPv6 addresses in brackets and
//! several targets separated by commas (tried in turn).

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use thiserror::Error;

/// The IANA port for OVSDB, which OVS uses when a target names none.
pub const DEFAULT_PORT: u16 = 6640;

/// Where to connect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A Unix domain socket.
    Unix(PathBuf),
    /// Plain TCP.
    Tcp {
        /// Host name or address (without IPv6 brackets).
        host: String,
        /// Port.
        port: u16,
    },
    /// TLS over TCP.
    Ssl {
        /// Host name or address (without IPv6 brackets).
        host: String,
        /// Port.
        port: u16,
    },
}

/// A target string that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("bad OVSDB target \"{target}\": {reason}")]
pub struct TargetError {
    target: String,
    reason: &'static str,
}

fn host_port(rest: &str) -> Result<(String, u16), &'static str> {
    let (host, port) = if let Some(after) = rest.strip_prefix('[') {
        let (host, tail) = after
            .split_once(']')
            .ok_or("unclosed '[' in IPv6 address")?;
        match tail {
            "" => (host, None),
            t => (host, Some(t.strip_prefix(':').ok_or("junk after ']'")?)),
        }
    } else {
        match rest.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (rest, None),
        }
    };
    if host.is_empty() {
        return Err("missing host");
    }
    let port = match port {
        None => DEFAULT_PORT,
        Some(p) => p
            .parse::<u16>()
            .map_err(|_| "port is not a number from 0 to 65535")?,
    };
    Ok((host.to_owned(), port))
}

impl Target {
    /// Parses a comma-separated list of targets.
    pub fn parse_list(s: &str) -> Result<Vec<Target>, TargetError> {
        let list: Vec<Target> = s
            .split(',')
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(str::parse)
            .collect::<Result<_, _>>()?;
        if list.is_empty() {
            return Err(TargetError {
                target: s.to_owned(),
                reason: "no target given",
            });
        }
        Ok(list)
    }

    /// Whether the connection uses TLS.
    pub fn is_ssl(&self) -> bool {
        matches!(self, Target::Ssl { .. })
    }
}

impl FromStr for Target {
    type Err = TargetError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = |reason| TargetError {
            target: s.to_owned(),
            reason,
        };
        let (kind, rest) = s
            .split_once(':')
            .ok_or_else(|| err("expected unix:, tcp: or ssl:"))?;
        match kind {
            "unix" if !rest.is_empty() => Ok(Target::Unix(PathBuf::from(rest))),
            "unix" => Err(err("missing socket path")),
            "tcp" => host_port(rest)
                .map(|(host, port)| Target::Tcp { host, port })
                .map_err(err),
            "ssl" => host_port(rest)
                .map(|(host, port)| Target::Ssl { host, port })
                .map_err(err),
            _ => Err(err("expected unix:, tcp: or ssl:")),
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hp = |f: &mut fmt::Formatter<'_>, kind: &str, host: &str, port: u16| {
            if host.contains(':') {
                write!(f, "{kind}:[{host}]:{port}")
            } else {
                write!(f, "{kind}:{host}:{port}")
            }
        };
        match self {
            Target::Unix(p) => write!(f, "unix:{}", p.display()),
            Target::Tcp { host, port } => hp(f, "tcp", host, *port),
            Target::Ssl { host, port } => hp(f, "ssl", host, *port),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_ovs_vsctl_syntax() {
        let cases: &[(&str, Target)] = &[
            (
                "unix:/var/run/openvswitch/db.sock",
                Target::Unix("/var/run/openvswitch/db.sock".into()),
            ),
            (
                "tcp:127.0.0.1:6641",
                Target::Tcp {
                    host: "127.0.0.1".into(),
                    port: 6641,
                },
            ),
            (
                "tcp:ovsdb.example",
                Target::Tcp {
                    host: "ovsdb.example".into(),
                    port: 6640,
                },
            ),
            (
                "ssl:[::1]:6640",
                Target::Ssl {
                    host: "::1".into(),
                    port: 6640,
                },
            ),
            (
                "ssl:[fe80::1]",
                Target::Ssl {
                    host: "fe80::1".into(),
                    port: 6640,
                },
            ),
        ];
        for (s, t) in cases {
            assert_eq!(&s.parse::<Target>().unwrap(), t, "{s}");
            assert_eq!(t.to_string().parse::<Target>().unwrap(), *t);
        }
        for bad in [
            "",
            "unix:",
            "tcp:",
            "tcp::1",
            "tcp:h:99999",
            "ptcp:6640",
            "ssl:[::1",
            "ssl:[::1]x",
            "x",
        ] {
            assert!(bad.parse::<Target>().is_err(), "{bad} accepted");
        }
        let list = Target::parse_list("tcp:10.0.0.1:6640, tcp:10.0.0.2:6640").unwrap();
        assert_eq!(list.len(), 2);
        assert!(Target::parse_list(" , ").is_err());
    }
}
