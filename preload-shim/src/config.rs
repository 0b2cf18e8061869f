//! The shim's settings, parsed once from the process environment (`BINDIP`, `BINDIP6`,
//! `P2PLAB_NODE`, `P2PLAB_SHIM_LOG`). Parsing is pure and never allocates.

use std::ffi::CStr;
use std::net::{Ipv4Addr, Ipv6Addr};

/// Longest node name `uname` can carry (`nodename` is 65 bytes with its NUL).
pub const NODE_MAX: usize = 64;

/// The node's own addresses; a `None` family is left to the kernel.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Ips {
    pub v4: Option<Ipv4Addr>,
    pub v6: Option<Ipv6Addr>,
}

impl Ips {
    /// True when the shim has an address to enforce.
    pub fn active(&self) -> bool {
        self.v4.is_some() || self.v6.is_some()
    }
}

/// The node name reported by `gethostname` and `uname`, stored inline and NUL-terminated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NodeName {
    bytes: [u8; NODE_MAX + 1],
    len: usize,
}

impl NodeName {
    fn new(raw: &[u8]) -> Option<Self> {
        if raw.is_empty() || raw.len() > NODE_MAX {
            return None;
        }
        let mut bytes = [0; NODE_MAX + 1];
        bytes.get_mut(..raw.len())?.copy_from_slice(raw);
        Some(Self {
            bytes,
            len: raw.len(),
        })
    }

    pub fn as_bytes(&self) -> &[u8] {
        self.bytes.get(..self.len).unwrap_or_default()
    }

    /// The name as a C string (a NUL always follows it).
    pub fn as_c_str(&self) -> &CStr {
        CStr::from_bytes_until_nul(&self.bytes).unwrap_or_default()
    }
}

/// Everything the shim needs to know, fixed for the life of the process.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Config {
    pub ips: Ips,
    pub node: Option<NodeName>,
    pub log: bool,
}

/// The raw values of the variables the shim reads (`None` when unset).
#[derive(Clone, Copy, Debug, Default)]
pub struct RawEnv<'a> {
    pub bindip: Option<&'a [u8]>,
    pub bindip6: Option<&'a [u8]>,
    pub node: Option<&'a [u8]>,
    pub log: Option<&'a [u8]>,
}

/// A variable whose value the shim cannot use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConfigError<'a> {
    pub var: &'static str,
    pub value: &'a [u8],
    pub expected: &'static str,
}

impl Config {
    pub fn parse(env: RawEnv<'_>) -> Result<Self, ConfigError<'_>> {
        let v4 = env
            .bindip
            .map(|raw| {
                parse_ip::<Ipv4Addr>(raw)
                    .filter(|ip| {
                        !ip.is_unspecified()
                            && !ip.is_multicast()
                            && !ip.is_broadcast()
                            && !ip.is_loopback()
                    })
                    .ok_or(ConfigError {
                        var: "BINDIP",
                        value: raw,
                        expected: "a unicast, non-loopback IPv4 address, e.g. BINDIP=10.0.3.7",
                    })
            })
            .transpose()?;
        let v6 = env
            .bindip6
            .map(|raw| {
                parse_ip::<Ipv6Addr>(raw)
                    .filter(|ip| !ip.is_unspecified() && !ip.is_multicast() && !ip.is_loopback())
                    .ok_or(ConfigError {
                        var: "BINDIP6",
                        value: raw,
                        expected: "a unicast, non-loopback IPv6 address, e.g. BINDIP6=fd00::3:7",
                    })
            })
            .transpose()?;
        let node = env
            .node
            .map(|raw| {
                NodeName::new(raw).ok_or(ConfigError {
                    var: "P2PLAB_NODE",
                    value: raw,
                    expected: "a node name of 1 to 64 bytes",
                })
            })
            .transpose()?;
        Ok(Self {
            ips: Ips { v4, v6 },
            node,
            log: env.log == Some(b"1"),
        })
    }
}

fn parse_ip<T: std::str::FromStr>(raw: &[u8]) -> Option<T> {
    std::str::from_utf8(raw).ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(bindip: Option<&'a str>, bindip6: Option<&'a str>) -> RawEnv<'a> {
        RawEnv {
            bindip: bindip.map(str::as_bytes),
            bindip6: bindip6.map(str::as_bytes),
            ..RawEnv::default()
        }
    }

    #[test]
    fn unset_means_inactive() {
        let cfg = Config::parse(RawEnv::default()).unwrap();
        assert!(!cfg.ips.active());
        assert!(!cfg.log);
        assert_eq!(cfg.node, None);
    }

    #[test]
    fn addresses_parse() {
        let cfg = Config::parse(env(Some("10.0.3.7"), Some("fd00::3:7"))).unwrap();
        assert_eq!(cfg.ips.v4, Some(Ipv4Addr::new(10, 0, 3, 7)));
        assert_eq!(cfg.ips.v6, Some("fd00::3:7".parse().unwrap()));
    }

    #[test]
    fn bad_bindip_is_an_error() {
        for bad in [
            "",
            "10.0.3",
            "nonsense",
            "0.0.0.0",
            "224.0.0.1",
            "255.255.255.255",
            "127.0.0.1",
            "127.9.8.7",
            "::1",
        ] {
            let err = Config::parse(env(Some(bad), None)).unwrap_err();
            assert_eq!(err.var, "BINDIP", "{bad:?}");
        }
        assert_eq!(
            Config::parse(env(None, Some("10.0.0.1"))).unwrap_err().var,
            "BINDIP6"
        );
    }

    #[test]
    fn bad_bindip6_is_an_error() {
        for bad in ["", "fd00::3::7", "::", "ff02::1", "::1", "10.0.0.1"] {
            let err = Config::parse(env(None, Some(bad))).unwrap_err();
            assert_eq!((err.var, err.value), ("BINDIP6", bad.as_bytes()), "{bad:?}");
        }
        // a good BINDIP does not excuse a bad BINDIP6, nor the other way round
        assert_eq!(
            Config::parse(env(Some("10.0.3.7"), Some("::")))
                .unwrap_err()
                .var,
            "BINDIP6"
        );
        assert_eq!(
            Config::parse(env(Some("0.0.0.0"), Some("fd00::1")))
                .unwrap_err()
                .var,
            "BINDIP"
        );
    }

    #[test]
    fn either_address_alone_makes_the_shim_active() {
        let v4 = Config::parse(env(Some("10.0.3.7"), None)).unwrap().ips;
        assert_eq!((v4.active(), v4.v6), (true, None));
        let v6 = Config::parse(env(None, Some("fd00::3:7"))).unwrap().ips;
        assert_eq!((v6.active(), v6.v4), (true, None));
    }

    #[test]
    fn node_names_of_1_to_64_bytes_are_kept() {
        let longest = [b'n'; NODE_MAX];
        for name in [&b"a"[..], &longest[..]] {
            let raw = RawEnv {
                node: Some(name),
                ..RawEnv::default()
            };
            let node = Config::parse(raw).unwrap().node.unwrap();
            assert_eq!(node.as_bytes(), name);
            assert_eq!(node.as_c_str().to_bytes(), name);
        }
        let empty = RawEnv {
            node: Some(b""),
            ..RawEnv::default()
        };
        assert_eq!(Config::parse(empty).unwrap_err().var, "P2PLAB_NODE");
    }

    #[test]
    fn only_log_1_turns_the_log_on() {
        for (value, on) in [
            (&b"1"[..], true),
            (b"0", false),
            (b"", false),
            (b"11", false),
        ] {
            let raw = RawEnv {
                log: Some(value),
                ..RawEnv::default()
            };
            assert_eq!(Config::parse(raw).unwrap().log, on, "{value:?}");
        }
    }

    #[test]
    fn node_name_and_log() {
        let raw = RawEnv {
            node: Some(b"peer-7"),
            log: Some(b"1"),
            ..RawEnv::default()
        };
        let cfg = Config::parse(raw).unwrap();
        assert_eq!(cfg.node.unwrap().as_bytes(), b"peer-7");
        assert!(cfg.log);
        let long = [b'a'; NODE_MAX + 1];
        let raw = RawEnv {
            node: Some(&long),
            ..RawEnv::default()
        };
        assert_eq!(Config::parse(raw).unwrap_err().var, "P2PLAB_NODE");
    }
}
