//! What a workspace is estimated to cost a month: its storage capacity times the price of one
//! GiB-month for its deployment type and throughput tier (FSx for Lustre bills the storage
//! capacity, prorated by the second, from creation to deletion; on SSD tiers the throughput is
//! part of that price). Prices come from the class (`spec.prices`, what the platform team
//! pays) or from the table shipped here; a workspace with neither says so rather than guess.

use kube::KubeSchema;
use serde::{Deserialize, Serialize};

use crate::workspace::DeploymentType;

/// The pattern of a currency code.
pub const CURRENCY: &str = r"^[A-Z]{3}$";
/// The pattern of a price: a decimal with at most six places.
pub const PRICE: &str = r"^[0-9]{1,6}(\.[0-9]{1,6})?$";

/// The pattern of an amount: a decimal with at most two places.
pub const AMOUNT: &str = r"^[0-9]{1,12}(\.[0-9]{1,2})?$";

/// An amount in hundredths, from its decimal text ([`AMOUNT`]).
pub fn cents(text: &str) -> Option<i64> {
    let (whole, frac) = text.split_once('.').unwrap_or((text, ""));
    let digits =
        |s: &str, n: usize| (1..=n).contains(&s.len()) && s.chars().all(|c| c.is_ascii_digit());
    if !digits(whole, 12) || !(frac.is_empty() && !text.contains('.') || digits(frac, 2)) {
        return None;
    }
    let whole: i64 = whole.parse().ok()?;
    let frac: i64 = format!("{frac:0<2}").parse().ok()?;
    Some(whole * 100 + frac)
}

/// Prices a class sets for its workspaces (its region's, in its currency).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct Prices {
    /// ISO 4217 code (default USD).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = CURRENCY))]
    pub currency: Option<String>,
    /// Where the prices come from (a price list and its date), shown with every estimate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 256))]
    pub source: Option<String>,
    /// The price of one GiB-month, by deployment type (and throughput for PERSISTENT_2).
    #[serde(rename = "perGiBMonth")]
    #[schemars(length(max = 8))]
    pub per_gib_month: Vec<Rate>,
}

/// One price.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct Rate {
    /// SCRATCH_2 or PERSISTENT_2.
    pub deployment_type: DeploymentType,
    /// PERSISTENT_2 only: the throughput tier in MB/s per TiB (125, 250, 500, 1000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 1000))]
    pub throughput: Option<i32>,
    /// The price of one GiB-month as a decimal (e.g. "0.145").
    #[schemars(
        length(min = 1, max = 16),
        regex(pattern = r"^[0-9]{1,6}(\.[0-9]{1,6})?$")
    )]
    pub price: String,
}

/// The monthly estimate as status shows it.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CostStatus {
    /// The amount, e.g. "174.00" (left out when no price is known).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amount: Option<String>,
    /// ISO 4217 code.
    pub currency: String,
    /// "174.00 USD", or "unknown" (the printer column).
    pub summary: String,
    /// What the amount is made of (capacity x price, tier, source), or why there is none.
    pub basis: String,
}

/// A price the operator ships: region, deployment type, throughput, price per GiB-month in
/// USD, and where it comes from.
type Shipped = (
    &'static str,
    DeploymentType,
    Option<i32>,
    &'static str,
    &'static str,
);

/// Source of the shipped Asia Pacific (Tokyo) prices.
const TOKYO: &str = "DevelopersIO, 2022-09-03: hourly price of a 1.2 TiB PERSISTENT_2 file system in ap-northeast-1, times 730 hours, over 1200 GiB";

/// The prices shipped with the operator. Only what a dated source states: no authoritative
/// price list was at hand for other regions, so their classes set `spec.prices`.
pub const SHIPPED: [Shipped; 4] = [
    (
        "ap-northeast-1",
        DeploymentType::Persistent2,
        Some(125),
        "0.188583",
        TOKYO,
    ),
    (
        "ap-northeast-1",
        DeploymentType::Persistent2,
        Some(250),
        "0.279833",
        TOKYO,
    ),
    (
        "ap-northeast-1",
        DeploymentType::Persistent2,
        Some(500),
        "0.468416",
        TOKYO,
    ),
    (
        "ap-northeast-1",
        DeploymentType::Persistent2,
        Some(1000),
        "0.845583",
        TOKYO,
    ),
];

/// Whether `text` is a price as [`PRICE`] has it.
pub fn is_price(text: &str) -> bool {
    let digits = |s: &str| (1..=6).contains(&s.len()) && s.chars().all(|c| c.is_ascii_digit());
    match text.split_once('.') {
        Some((whole, frac)) => digits(whole) && digits(frac),
        None => digits(text),
    }
}

/// A price in millionths of a currency unit, from its decimal text ([`PRICE`]).
pub fn micros(text: &str) -> Option<i64> {
    if !is_price(text) {
        return None;
    }
    let (whole, frac) = text.split_once('.').unwrap_or((text, ""));
    let whole: i64 = whole.parse().ok()?;
    let frac: i64 = format!("{frac:0<6}").parse().ok()?;
    Some(whole * 1_000_000 + frac)
}

/// An estimate: the amount (cents) and what it is made of.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Estimate {
    /// Hundredths of the currency, rounded half up; `None` when no price is known.
    pub cents: Option<i64>,
    pub currency: String,
    /// "1200 GiB x 0.145 USD per GiB-month (PERSISTENT_2 at 125 MB/s/TiB; <source>)", or why
    /// there is no price.
    pub basis: String,
}

/// The currency of a class's prices (USD when it names none, as the shipped prices are).
fn currency_of(prices: Option<&Prices>) -> String {
    prices
        .and_then(|p| p.currency.clone())
        .unwrap_or_else(|| "USD".into())
}

/// The monthly estimate of `gib` of `deployment` at `throughput`, from the class's prices,
/// else the shipped ones for `region`.
pub fn estimate(
    gib: i64,
    deployment: DeploymentType,
    throughput: Option<i32>,
    class: Option<&Prices>,
    region: Option<&str>,
) -> Estimate {
    let tier = match (deployment, throughput) {
        (DeploymentType::Persistent2, Some(t)) => {
            format!("{} at {t} MB/s/TiB", deployment.as_str())
        }
        _ => deployment.as_str().to_string(),
    };
    let wanted = |d: DeploymentType, t: Option<i32>| {
        d == deployment && (deployment != DeploymentType::Persistent2 || t == throughput)
    };
    let from_class = class.and_then(|p| {
        let rate = p
            .per_gib_month
            .iter()
            .find(|r| wanted(r.deployment_type, r.throughput))?;
        let source = p
            .source
            .clone()
            .unwrap_or_else(|| "the class's prices".into());
        Some((rate.price.clone(), currency_of(Some(p)), source))
    });
    let shipped = || {
        let region = region?;
        SHIPPED
            .iter()
            .find(|(r, d, t, _, _)| *r == region && wanted(*d, *t))
            .map(|(_, _, _, price, source)| {
                (price.to_string(), "USD".to_string(), source.to_string())
            })
    };
    let Some((price, currency, source)) = from_class.or_else(shipped) else {
        let currency = currency_of(class);
        let place = region.map_or("the operator's region".to_string(), str::to_string);
        return Estimate {
            cents: None,
            currency,
            basis: format!(
                "no price for {tier} in {place}: the class sets none (spec.prices) and none is shipped"
            ),
        };
    };
    let cents = micros(&price)
        .and_then(|m| m.checked_mul(gib))
        .map(|total| (total + 5_000) / 10_000);
    Estimate {
        cents,
        basis: format!("{gib} GiB x {price} {currency} per GiB-month ({tier}; {source})"),
        currency,
    }
}

/// The status of a workspace's estimate: its asked capacity, deployment type and throughput
/// (an adopted file system's as observed: `observed`), at its class's prices.
pub fn status(
    spec: &crate::LustreWorkspaceSpec,
    class: &crate::LustreWorkspaceClass,
    observed: Option<(i64, DeploymentType, Option<i32>)>,
) -> CostStatus {
    if spec.is_tiering() {
        return CostStatus {
            summary: "unknown".into(),
            amount: None,
            currency: currency_of(class.spec.prices.as_ref()),
            basis: "Intelligent-Tiering is billed by the data it holds and its throughput: no estimate from a class's GiB-month prices".into(),
        };
    }
    let asked = (
        i64::from(spec.capacity_gib()),
        crate::validation::effective_deployment_type(spec, &class.spec),
        spec.per_unit_storage_throughput,
    );
    let (gib, deployment, throughput) = match (&spec.file_system_id, observed) {
        (Some(_), Some(seen)) => seen,
        _ => asked,
    };
    let e = estimate(
        gib,
        deployment,
        throughput,
        class.spec.prices.as_ref(),
        class.spec.region.as_deref(),
    );
    let amount = e.cents.map(amount);
    CostStatus {
        summary: amount
            .as_ref()
            .map_or_else(|| "unknown".to_string(), |a| format!("{a} {}", e.currency)),
        amount,
        currency: e.currency,
        basis: e.basis,
    }
}

/// Hundredths as text: `17400` → `174.00`.
pub fn amount(cents: i64) -> String {
    format!("{}.{:02}", cents / 100, cents % 100)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prices_are_read_exactly() {
        assert_eq!(micros("0.145"), Some(145_000));
        assert_eq!(micros("12"), Some(12_000_000));
        assert_eq!(micros("0.1234567"), None);
        assert_eq!(micros(".5"), None);
        assert_eq!(micros("1e3"), None);
        assert_eq!(micros("1234567"), None);
        assert_eq!(micros("0."), None);
        assert_eq!(cents("2500"), Some(250_000));
        assert_eq!(cents("2500.5"), Some(250_050));
        assert_eq!(cents("2500."), None);
        assert_eq!(cents("1.234"), None);
    }

    #[test]
    fn the_estimate_is_capacity_times_rate_from_the_class_then_the_shipped_table() {
        let class = Prices {
            currency: Some("USD".into()),
            source: Some("our contract, 2026-11".into()),
            per_gib_month: vec![
                Rate {
                    deployment_type: DeploymentType::Scratch2,
                    throughput: None,
                    price: "0.140".into(),
                },
                Rate {
                    deployment_type: DeploymentType::Persistent2,
                    throughput: Some(250),
                    price: "0.21".into(),
                },
            ],
        };
        let e = estimate(
            1200,
            DeploymentType::Scratch2,
            None,
            Some(&class),
            Some("us-east-1"),
        );
        assert_eq!((e.cents, e.currency.as_str()), (Some(16_800), "USD"));
        assert_eq!(
            e.basis,
            "1200 GiB x 0.140 USD per GiB-month (SCRATCH_2; our contract, 2026-11)"
        );
        let e = estimate(
            4800,
            DeploymentType::Persistent2,
            Some(250),
            Some(&class),
            None,
        );
        assert_eq!(e.cents, Some(100_800));
        // No class price for this tier and none shipped for the region: said, not guessed.
        let e = estimate(
            2400,
            DeploymentType::Persistent2,
            Some(500),
            Some(&class),
            Some("us-east-1"),
        );
        assert_eq!(e.cents, None);
        assert!(
            e.basis
                .starts_with("no price for PERSISTENT_2 at 500 MB/s/TiB in us-east-1")
        );
        // The shipped table: 1200 GiB x 0.188583 = 226.2996.
        let e = estimate(
            1200,
            DeploymentType::Persistent2,
            Some(125),
            None,
            Some("ap-northeast-1"),
        );
        assert_eq!(
            (e.cents, amount(e.cents.unwrap_or_default())),
            (Some(22_630), "226.30".to_string())
        );
    }
}
