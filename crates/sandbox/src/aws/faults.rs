//! Fault injection: throttling, 5xx errors, slow responses and arbitrary AWS errors, by
//! operation and rate, from a seeded generator so a run can be repeated.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// What an injected fault does.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "kind")]
pub enum FaultKind {
    /// `ThrottlingException` (FSx) or `RequestLimitExceeded` (EC2).
    Throttle,
    /// HTTP 500 `InternalServerError` (FSx) or `InternalError` (EC2).
    ServerError,
    /// Answer normally after this long.
    Delay { ms: u64 },
    /// Any AWS error.
    Error {
        status: u16,
        code: String,
        message: String,
    },
}

/// One rule: which operations, what, how often, how many times.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FaultRule {
    /// Operation name (`CreateFileSystem`), `*` for all, or `fsx:*` / `ec2:*`.
    #[serde(default = "any")]
    pub operation: String,
    #[serde(flatten)]
    pub kind: FaultKind,
    /// Probability per matching call, 0..=1.
    #[serde(default = "always")]
    pub rate: f64,
    /// Stop after injecting this many.
    #[serde(default)]
    pub limit: Option<u64>,
    #[serde(default, skip_deserializing)]
    pub injected: u64,
}

fn any() -> String {
    "*".into()
}

fn always() -> f64 {
    1.0
}

/// The rules in force and the generator.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Faults {
    pub seed: u64,
    pub rules: Vec<FaultRule>,
    #[serde(skip)]
    rng: Rng,
}

impl Default for Faults {
    fn default() -> Self {
        Self::new(1, Vec::new())
    }
}

impl Faults {
    pub fn new(seed: u64, rules: Vec<FaultRule>) -> Self {
        Self {
            seed,
            rules,
            rng: Rng::new(seed),
        }
    }

    /// A uniform number in 0..1 (also used for lifecycle jitter).
    pub fn unit(&mut self) -> f64 {
        self.rng.unit()
    }

    /// The faults to apply to one call: an optional delay, then an optional error.
    pub fn pick(
        &mut self,
        service: &str,
        operation: &str,
    ) -> (Option<Duration>, Option<FaultKind>) {
        let mut delay = None;
        let mut error = None;
        for i in 0..self.rules.len() {
            let rule = &self.rules[i];
            let matches = rule.operation == "*"
                || rule.operation == operation
                || rule.operation == format!("{service}:*");
            if !matches || rule.limit.is_some_and(|l| rule.injected >= l) {
                continue;
            }
            let rate = rule.rate;
            if self.rng.unit() >= rate {
                continue;
            }
            let rule = &mut self.rules[i];
            match &rule.kind {
                FaultKind::Delay { ms } => {
                    rule.injected += 1;
                    delay = Some(Duration::from_millis(*ms));
                }
                other if error.is_none() => {
                    rule.injected += 1;
                    error = Some(other.clone());
                }
                _ => {}
            }
        }
        (delay, error)
    }

    /// Parses `op:kind:rate[:limit]` as given on the command line, e.g. `*:throttle:0.3`,
    /// `CreateFileSystem:server-error:0.1`, `fsx:*:delay=200:1`.
    pub fn parse_rule(text: &str) -> Result<FaultRule, String> {
        let parts: Vec<&str> = text.split(':').collect();
        let (operation, kind, rate, limit) = match parts.as_slice() {
            // `fsx:*:kind:rate[:limit]`
            [svc, "*", kind, rate] => (format!("{svc}:*"), *kind, *rate, None),
            [svc, "*", kind, rate, limit] => (format!("{svc}:*"), *kind, *rate, Some(*limit)),
            [op, kind, rate] => (op.to_string(), *kind, *rate, None),
            [op, kind, rate, limit] => (op.to_string(), *kind, *rate, Some(*limit)),
            _ => return Err(format!("fault {text:?}: expected op:kind:rate[:limit]")),
        };
        let kind = match kind.split_once('=') {
            Some(("delay", ms)) => FaultKind::Delay {
                ms: ms.parse().map_err(|e| format!("fault {text:?}: {e}"))?,
            },
            None if kind == "throttle" => FaultKind::Throttle,
            None if kind == "server-error" => FaultKind::ServerError,
            _ => {
                return Err(format!(
                    "fault {text:?}: kind is throttle, server-error or delay=MS"
                ));
            }
        };
        Ok(FaultRule {
            operation,
            kind,
            rate: rate.parse().map_err(|e| format!("fault {text:?}: {e}"))?,
            limit: limit
                .map(|l| l.parse().map_err(|e| format!("fault {text:?}: {e}")))
                .transpose()?,
            injected: 0,
        })
    }
}

/// xorshift64*: small, seeded, good enough for fault rates and jitter.
#[derive(Debug, Clone)]
struct Rng(u64);

impl Default for Rng {
    fn default() -> Self {
        Self::new(1)
    }
}

impl Rng {
    /// Mixes the seed (splitmix64) so that small seeds do not start with small numbers.
    fn new(seed: u64) -> Self {
        let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        Self((z ^ (z >> 31)).max(1))
    }

    fn unit(&mut self) -> f64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        (x.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_are_roughly_honoured_and_repeatable() {
        let rule = Faults::parse_rule("*:throttle:0.3").expect("rule");
        let count = |seed| {
            let mut f = Faults::new(seed, vec![rule.clone()]);
            (0..10_000)
                .filter(|_| f.pick("fsx", "DescribeFileSystems").1.is_some())
                .count()
        };
        let n = count(7);
        assert!((2_700..3_300).contains(&n), "{n}");
        assert_eq!(n, count(7), "same seed, same faults");
    }

    #[test]
    fn limits_and_operations_are_respected() {
        let rule = Faults::parse_rule("CreateFileSystem:server-error:1:2").expect("rule");
        let mut f = Faults::new(1, vec![rule]);
        assert_eq!(f.pick("ec2", "CreateSecurityGroup").1, None);
        assert_eq!(
            f.pick("fsx", "CreateFileSystem").1,
            Some(FaultKind::ServerError)
        );
        assert_eq!(
            f.pick("fsx", "CreateFileSystem").1,
            Some(FaultKind::ServerError)
        );
        assert_eq!(f.pick("fsx", "CreateFileSystem").1, None);
        let delay = Faults::parse_rule("fsx:*:delay=200:1:3").expect("rule");
        assert_eq!((delay.operation.as_str(), delay.limit), ("fsx:*", Some(3)));
        assert!(Faults::parse_rule("nonsense").is_err());
    }
}
