//! Kubernetes resource quantities in the exact form the API server writes them.
//!
//! A manifest in Git says `cpu: 0.5`, `memory: 1.5Gi` or `cpu: "1.0"`; the object the API server
//! hands to an admission webhook says `"500m"`, `"1536Mi"` and `"1"`. To compare the two, this
//! module reproduces what a kube-apiserver does to a quantity it decodes from JSON and encodes
//! back (k8s.io/apimachinery `resource.Quantity`: `UnmarshalJSON` → `ParseQuantity` →
//! `MarshalJSON`), step for step, with exact integer arithmetic and no floating point:
//!
//! - The suffix picks the format, and the format is kept: decimal SI (`n u m "" k M G T P E`),
//!   binary SI (`Ki Mi Gi Ti Pi Ei`) or decimal exponent (`e3`, `E-2`; a bare `E` is exa).
//! - Canonical form: the largest unit of that family that keeps the number an integer (`1.5Gi` →
//!   `1536Mi`, `0.5` → `500m`, `2000m` → `2`, `1000M` → `1G`, `1e4` → `10e3`). A binary value
//!   below 1024, or one that is not a whole number, is written in decimal SI (`0.5Ki` → `512`,
//!   `.001Ki` → `1024m`).
//! - A string that is already canonical is kept byte for byte, exactly under the conditions
//!   `ParseQuantity` uses (so `+1` and `01` come back as written, as they do from the API
//!   server).
//! - Finer than nano rounds away from zero (`0.9n` → `1n`); a binary value is capped at 2^63-1.
//!
//! A JSON *number* (YAML `cpu: 0.5`, `memory: 1e3`) reaches the API server as the text that Go's
//! `encoding/json` writes for a float64 (kubectl, Flux and Argo CD all decode YAML into Go values
//! and re-encode them), so [`canonical_value`] first writes a number as Go would: `0.5`, `1000`,
//! `129000000`, `1e-7`, `1e+21`. This is why an unquoted `1e3` becomes `1k` while the string
//! `"1e3"` stays `1e3`, and an unquoted `129e6` becomes `129M` while `"129e6"` stays `129e6`.
//!
//! Values beyond what an `u128` mantissa holds (more than 38 significant digits) are not
//! canonicalized ([`canonical`] returns `None`); callers then compare the text as it is, which can
//! only make a match stricter, never looser.

use serde_json::{Number, Value};

/// The three serializations of a quantity, chosen by the suffix it was written with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `12e6`, `1E-3`.
    DecimalExponent,
    /// `12Mi` (12 · 2^20).
    BinarySI,
    /// `12M` (12 · 10^6), and plain numbers.
    DecimalSI,
}

/// An exact decimal: `(-1)^negative · mantissa · 10^exponent`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Decimal {
    negative: bool,
    mantissa: u128,
    exponent: i32,
}

/// 2^63 - 1, the cap `ParseQuantity` puts on a binary SI value.
const MAX_INT64: u128 = i64::MAX as u128;

/// The canonical form of a quantity written as the string `text`, exactly as a kube-apiserver
/// writes it back (surrounding whitespace is trimmed first, as `UnmarshalJSON` does). `None` when
/// the API server would refuse it as a quantity, or when it is too large for exact arithmetic
/// here.
pub fn canonical(text: &str) -> Option<String> {
    parse(text.trim_matches(is_go_space))
}

/// The canonical form of a JSON value in a quantity field: a string as [`canonical`], a number
/// as the text Go's `encoding/json` would have sent for it. `None` for anything else.
pub fn canonical_value(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => canonical(s),
        Value::Number(n) => canonical(&go_json_number(n)),
        _ => None,
    }
}

/// Whether two JSON values are the same quantity as the API server stores it: equal canonical
/// forms. `None` when either is not a quantity.
///
/// Equal forms, or the same number in two forms: the API server writes `17656.25Ki` as
/// `18080000` (binary SI, not a multiple of 1024) and reads that back as decimal SI, whose
/// canonical form is `18080k`; both are what Git's `17656.25Ki` is stored as (the comparison
/// of forms alone refused them: found by `tests/fuzz.rs`).
pub fn same(a: &Value, b: &Value) -> Option<bool> {
    let (a, b) = (canonical_value(a)?, canonical_value(b)?);
    Some(a == b || exact(&a).is_some_and(|x| exact(&b) == Some(x)))
}

/// The exact value of a quantity's canonical text, normalized (no trailing zeros in the
/// mantissa), so that two forms of one number compare equal.
fn exact(canonical: &str) -> Option<Decimal> {
    let p = split(canonical)?;
    let (base, exponent, _) = interpret(p.suffix)?;
    let mut d = Decimal {
        negative: !p.positive,
        mantissa: format!("{}{}", p.num, p.denom).parse().ok()?,
        exponent: -(p.denom.len() as i32),
    };
    if base == 10 {
        d.exponent = d.exponent.checked_add(exponent)?;
    } else {
        d.mantissa = d
            .mantissa
            .checked_mul(1u128.checked_shl(exponent as u32)?)?;
    }
    if d.mantissa == 0 {
        return Some(Decimal {
            negative: false,
            mantissa: 0,
            exponent: 0,
        });
    }
    while d.mantissa.is_multiple_of(10) {
        d.mantissa /= 10;
        d.exponent = d.exponent.checked_add(1)?;
    }
    Some(d)
}

/// The text Go's `encoding/json` writes for a number that was decoded into `interface{}`
/// (integers as they are; other numbers as float64: shortest round-trip digits, `%f` style for
/// 1e-6 ≤ |x| < 1e21 and `%e` style outside, with `e-7` and `e+21` exponents).
pub fn go_json_number(n: &Number) -> String {
    if let Some(i) = n.as_i64() {
        return i.to_string();
    }
    if let Some(u) = n.as_u64() {
        return u.to_string();
    }
    let f = n.as_f64().unwrap_or(0.0);
    let abs = f.abs();
    if abs == 0.0 || (1e-6..1e21).contains(&abs) {
        return format!("{f}");
    }
    // Rust writes `1.5e-7` and `1e21`; Go writes `1.5e-07` (cleaned to `1.5e-7` by
    // encoding/json) and `1e+21`.
    let text = format!("{f:e}");
    match text.split_once('e') {
        Some((mantissa, exp)) if exp.starts_with('-') => format!("{mantissa}e{exp}"),
        Some((mantissa, exp)) => format!("{mantissa}e+{exp:0>2}"),
        None => text,
    }
}

/// Go's `strings.TrimSpace` set for ASCII input (the only input a quantity can be).
fn is_go_space(c: char) -> bool {
    c.is_whitespace()
}

/// The pieces `parseQuantityString` cuts a quantity into.
struct Pieces<'a> {
    positive: bool,
    /// Integer digits, leading zeros stripped, `"0"` when none are left.
    num: &'a str,
    /// Fraction digits (possibly empty).
    denom: &'a str,
    suffix: &'a str,
}

/// apimachinery's `parseQuantityString`, byte for byte.
fn split(s: &str) -> Option<Pieces<'_>> {
    let b = s.as_bytes();
    let end = b.len();
    let mut pos = 0;
    let mut positive = true;
    if pos < end {
        match b[0] {
            b'-' => {
                positive = false;
                pos += 1;
            }
            b'+' => pos += 1,
            _ => {}
        }
    }
    // Leading zeros.
    loop {
        if pos >= end {
            return Some(Pieces {
                positive,
                num: "0",
                denom: "",
                suffix: "",
            });
        }
        if b[pos] == b'0' {
            pos += 1;
        } else {
            break;
        }
    }
    let start = pos;
    while pos < end && b[pos].is_ascii_digit() {
        pos += 1;
    }
    let mut num = &s[start..pos];
    if pos >= end {
        return Some(Pieces {
            positive,
            num: if num.is_empty() { "0" } else { num },
            denom: "",
            suffix: "",
        });
    }
    if num.is_empty() {
        num = "0";
    }
    let mut denom = "";
    if b[pos] == b'.' {
        pos += 1;
        let start = pos;
        while pos < end && b[pos].is_ascii_digit() {
            pos += 1;
        }
        denom = &s[start..pos];
        if pos >= end {
            return Some(Pieces {
                positive,
                num,
                denom,
                suffix: "",
            });
        }
    }
    let suffix_start = pos;
    while pos < end && b"eEinumkKMGTP".contains(&b[pos]) {
        pos += 1;
    }
    if pos < end && (b[pos] == b'-' || b[pos] == b'+') {
        pos += 1;
    }
    while pos < end && b[pos].is_ascii_digit() {
        pos += 1;
    }
    if pos < end {
        // Something after the exponent's digits: ErrFormatWrong.
        return None;
    }
    Some(Pieces {
        positive,
        num,
        denom,
        suffix: &s[suffix_start..],
    })
}

/// apimachinery's suffixer: (base, exponent, format) of a suffix.
fn interpret(suffix: &str) -> Option<(u32, i32, Format)> {
    let decimal = |e| Some((10, e, Format::DecimalSI));
    let binary = |e| Some((2, e, Format::BinarySI));
    match suffix {
        "" => decimal(0),
        "n" => decimal(-9),
        "u" => decimal(-6),
        "m" => decimal(-3),
        "k" => decimal(3),
        "M" => decimal(6),
        "G" => decimal(9),
        "T" => decimal(12),
        "P" => decimal(15),
        "E" => decimal(18),
        "Ki" => binary(10),
        "Mi" => binary(20),
        "Gi" => binary(30),
        "Ti" => binary(40),
        "Pi" => binary(50),
        "Ei" => binary(60),
        _ => {
            let rest = suffix.strip_prefix(['e', 'E'])?;
            if rest.is_empty() {
                return None;
            }
            // strconv.ParseInt(..., 10, 64), then int32(): an exponent outside i32 is absurd
            // and left uncanonicalized here.
            let e: i64 = rest.parse().ok()?;
            Some((10, i32::try_from(e).ok()?, Format::DecimalExponent))
        }
    }
}

/// `ParseQuantity` followed by `MarshalJSON`.
fn parse(s: &str) -> Option<String> {
    if s.is_empty() {
        return None;
    }
    if s == "0" {
        return Some("0".into());
    }
    let p = split(s)?;
    let (base, exponent, format) = interpret(p.suffix)?;

    // The int64 fast path, with its "keep the string if already canonical" rule.
    let precision: i32;
    let mut scale: i32;
    let mut multiplier: i64 = 1;
    match format {
        Format::DecimalExponent | Format::DecimalSI => {
            scale = exponent;
            precision = 18 - (p.num.len() + p.denom.len()) as i32;
        }
        Format::BinarySI => {
            scale = 0;
            if exponent >= 0 && p.denom.is_empty() {
                multiplier = 1i64 << exponent;
                // int32(float32(exponent)*3/10), exact for the six binary exponents.
                precision = 15 - p.num.len() as i32 - (exponent * 3 / 10) - 1;
            } else {
                precision = -1;
            }
        }
    }
    if precision >= 0 {
        scale -= p.denom.len() as i32;
        if scale >= -9 {
            let shifted = format!("{}{}", p.num, p.denom);
            let value: i64 = shifted.parse().ok()?;
            if let Some(result) = value.checked_mul(multiplier) {
                let keep = match format {
                    Format::BinarySI => exponent % 10 == 0 && (value & 0x07) != 0,
                    _ => scale % 3 == 0 && !shifted.ends_with("000") && !shifted.starts_with('0'),
                };
                if keep {
                    return Some(s.to_string());
                }
                let d = Decimal {
                    negative: !p.positive,
                    mantissa: result as u128,
                    exponent: scale,
                };
                return format_canonical(d, format);
            }
        }
    }

    // The inf.Dec path: exact value, rounded up to nano, binary capped at 2^63-1.
    let digits = format!("{}{}", p.num, p.denom);
    let mut d = Decimal {
        negative: !p.positive,
        mantissa: digits.parse::<u128>().ok()?,
        exponent: -(p.denom.len() as i32),
    };
    if base == 10 {
        d.exponent = d.exponent.checked_add(exponent)?;
    } else {
        d.mantissa = d.mantissa.checked_mul(1u128 << exponent)?;
    }
    let mut format = format;
    if d.mantissa != 0 && d.exponent < -9 {
        d.mantissa = div_pow10_ceil(d.mantissa, (-9 - d.exponent) as u32);
        d.exponent = -9;
    }
    if format == Format::BinarySI && greater_than(d, MAX_INT64) {
        d.mantissa = MAX_INT64;
        d.exponent = 0;
    }
    if format == Format::BinarySI && d.mantissa != 0 && below_one(d) {
        format = Format::DecimalSI;
    }
    format_canonical(d, format)
}

/// `ceil(m / 10^k)` for m > 0.
fn div_pow10_ceil(m: u128, k: u32) -> u128 {
    match 10u128.checked_pow(k) {
        Some(p) => m.div_ceil(p),
        None => 1,
    }
}

/// |d| > limit.
fn greater_than(d: Decimal, limit: u128) -> bool {
    if d.exponent >= 0 {
        match 10u128
            .checked_pow(d.exponent as u32)
            .and_then(|p| d.mantissa.checked_mul(p))
        {
            Some(v) => v > limit,
            None => d.mantissa != 0,
        }
    } else {
        match 10u128
            .checked_pow((-d.exponent) as u32)
            .and_then(|p| limit.checked_mul(p))
        {
            Some(l) => d.mantissa > l,
            None => false,
        }
    }
}

/// |d| < 1.
fn below_one(d: Decimal) -> bool {
    d.exponent < 0
        && match 10u128.checked_pow((-d.exponent) as u32) {
            Some(p) => d.mantissa < p,
            None => true,
        }
}

/// The integer value of |d| when it is a whole number that fits.
fn as_integer(d: Decimal) -> Option<u128> {
    if d.exponent >= 0 {
        10u128
            .checked_pow(d.exponent as u32)
            .and_then(|p| d.mantissa.checked_mul(p))
    } else {
        match 10u128.checked_pow((-d.exponent) as u32) {
            Some(p) if d.mantissa.is_multiple_of(p) => Some(d.mantissa / p),
            Some(_) => None,
            None if d.mantissa == 0 => Some(0),
            None => None,
        }
    }
}

/// `CanonicalizeBytes`: the number and suffix the API server writes for a value and format.
fn format_canonical(d: Decimal, format: Format) -> Option<String> {
    if d.mantissa == 0 {
        return Some("0".into());
    }
    let sign = if d.negative { "-" } else { "" };
    let mut format = format;
    let mut whole = None;
    if format == Format::BinarySI {
        // -1024 < value < 1024 is written in decimal SI, and so is a value with a fraction.
        if !greater_than(d, 1023) {
            format = Format::DecimalSI;
        } else {
            whole = as_integer(d);
            if whole.is_none() {
                format = Format::DecimalSI;
            }
        }
    }
    match (format, whole) {
        (Format::BinarySI, Some(mut n)) => {
            let mut times = 0;
            while n >= 1024 && n % 1024 == 0 {
                n /= 1024;
                times += 1;
            }
            let suffix = match times {
                1 => "Ki",
                2 => "Mi",
                3 => "Gi",
                4 => "Ti",
                5 => "Pi",
                6 => "Ei",
                _ => "",
            };
            Some(format!("{sign}{n}{suffix}"))
        }
        _ => {
            let mut m = d.mantissa;
            let mut e = d.exponent;
            while m >= 10 && m.is_multiple_of(10) {
                m /= 10;
                e = e.checked_add(1)?;
            }
            let r = e.rem_euclid(3);
            m = m.checked_mul(10u128.pow(r as u32))?;
            e -= r;
            let suffix = if format == Format::DecimalExponent {
                if e == 0 {
                    String::new()
                } else {
                    format!("e{e}")
                }
            } else {
                // apimachinery drops a decimal SI suffix it has no letter for.
                match e {
                    -9 => "n",
                    -6 => "u",
                    -3 => "m",
                    3 => "k",
                    6 => "M",
                    9 => "G",
                    12 => "T",
                    15 => "P",
                    18 => "E",
                    _ => "",
                }
                .to_string()
            };
            Some(format!("{sign}{m}{suffix}"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Found by `tests/fuzz.rs` (seed 335350 of `canonical_quantities_...`, minimized): a
    /// binary quantity that is a whole number but not a multiple of 1024 is written without a
    /// suffix, and that text read back is decimal SI with another canonical form.
    #[test]
    fn one_number_in_two_canonical_forms_is_the_same_quantity() {
        assert_eq!(c("1.953125Ki"), "2000");
        assert_eq!(c("2000"), "2k");
        for (a, b) in [
            ("1.953125Ki", "2000"),
            ("1.953125Ki", "2k"),
            ("17656.25Ki", "18080k"),
            ("1Ki", "1024"),
            ("0", "0m"),
            ("-1.953125Ki", "-2k"),
        ] {
            assert_eq!(same(&json!(a), &json!(b)), Some(true), "{a} {b}");
        }
        for (a, b) in [("1Ki", "1k"), ("2000", "2001"), ("-2k", "2k"), ("1n", "1u")] {
            assert_eq!(same(&json!(a), &json!(b)), Some(false), "{a} {b}");
        }
    }

    fn c(s: &str) -> String {
        canonical(s).unwrap_or_else(|| panic!("{s:?} should parse"))
    }

    fn n(v: Value) -> String {
        canonical_value(&v).unwrap_or_else(|| panic!("{v} should parse"))
    }

    #[test]
    fn canonical_forms_of_the_issue() {
        assert_eq!(c("0.5"), "500m");
        assert_eq!(n(json!(0.5)), "500m");
        assert_eq!(c("1.0"), "1");
        assert_eq!(n(json!(1.0)), "1");
        assert_eq!(c("1.5Gi"), "1536Mi");
        assert_eq!(c("1024Mi"), "1Gi");
        assert_eq!(c("100m"), "100m");
        assert_eq!(c("0.1"), "100m");
        assert_eq!(n(json!(0.1)), "100m");
        assert_eq!(c("1500m"), "1500m");
        assert_eq!(c("2000m"), "2");
        assert_eq!(c("128974848"), "128974848");
        assert_eq!(n(json!(128974848)), "128974848");
        assert_eq!(c("123Mi"), "123Mi");
        assert_eq!(c("1G"), "1G");
    }

    /// An unquoted `1e3` / `129e6` in YAML is a float: the API server receives `1000` /
    /// `129000000` and writes `1k` / `129M`. The *strings* `"1e3"` and `"129e6"` are decimal
    /// exponent quantities that are already canonical and stay as written (apimachinery's own
    /// test table: `decQuantity(1, 3, DecimalExponent)` prints `1e3`).
    #[test]
    fn exponents_as_numbers_and_as_strings() {
        let yaml: Value = serde_saphyr::from_str("a: 1e3\nb: 129e6\n").unwrap();
        assert_eq!(n(yaml["a"].clone()), "1k");
        assert_eq!(n(yaml["b"].clone()), "129M");
        assert_eq!(n(json!(1000.0)), "1k");
        assert_eq!(c("1e3"), "1e3");
        assert_eq!(c("1E3"), "1E3", "already canonical: kept as written");
        assert_eq!(c("129e6"), "129e6");
        assert_eq!(c("1e4"), "10e3");
        assert_eq!(c("1e2"), "100");
        assert_eq!(c("1e-3"), "1e-3");
        assert_eq!(c("0.001e0"), "1e-3");
        assert_eq!(c("1E"), "1E", "a bare E is exa");
        assert_eq!(
            c("1000E"),
            "1",
            "apimachinery drops a suffix it has no letter for"
        );
    }

    /// apimachinery's TestQuantityString alternates and TestQuantityParseEmit.
    #[test]
    fn apimachinery_tables() {
        for (input, want) in [
            ("1024Mi", "1Gi"),
            ("307200Ki", "300Mi"),
            ("1025024Mi", "1001Gi"),
            ("1024Gi", "1Ti"),
            ("5000m", "5"),
            ("0.5", "500m"),
            ("1000M", "1G"),
            ("0.001T", "1G"),
            ("1000u", "1m"),
            ("1.08", "1080m"),
            ("1080000000n", "1080m"),
            (".001e12", "1e9"),
            ("1000e-12", "1e-9"),
            ("00", "0"),
            ("1Ki", "1Ki"),
            ("1Mi", "1Mi"),
            ("1Gi", "1Gi"),
            (".001Ki", "1024m"),
            (".000001Ki", "1024u"),
            (".000000001Ki", "1024n"),
            (".000000000001Ki", "2n"),
            ("-.001Ki", "-1024m"),
            ("-1024Mi", "-1Gi"),
            ("6Ki", "6Ki"),
            ("1025", "1025"),
            ("300M", "300M"),
            ("1234567M", "1234567M"),
            ("3k", "3k"),
            ("80n", "80n"),
            ("1080u", "1080u"),
        ] {
            assert_eq!(c(input), want, "{input}");
        }
    }

    #[test]
    fn binary_edges() {
        assert_eq!(
            c("0.5Ki"),
            "512",
            "a binary value below 1024 is written in decimal"
        );
        assert_eq!(c("1.5Ki"), "1536");
        assert_eq!(c("1536Ki"), "1536Ki");
        assert_eq!(c("2048Ki"), "2Mi");
        assert_eq!(c("0.5Mi"), "512Ki");
        assert_eq!(c("1.0001Ki"), "1024102400u", "not whole: decimal SI");
        assert_eq!(c("8Ei"), "9223372036854775807", "capped at 2^63-1");
        assert_eq!(c("0Ki"), "0");
        assert_eq!(c("1073741824"), "1073741824", "plain numbers stay decimal");
    }

    #[test]
    fn rounding_and_reuse() {
        assert_eq!(c("0.9n"), "1n");
        assert_eq!(c("1.5n"), "2n");
        assert_eq!(c("0.0000000001"), "1n");
        assert_eq!(c("-0.9n"), "-1n");
        assert_eq!(c("1.5k"), "1500");
        assert_eq!(c("1.5M"), "1500k");
        // Kept as written because ParseQuantity judges them canonical.
        assert_eq!(c("+1"), "+1");
        assert_eq!(c("01"), "01");
        assert_eq!(c("-0"), "0");
        assert_eq!(c("0.0"), "0");
        assert_eq!(canonical(" 250m "), Some("250m".into()));
        assert_eq!(
            c("1.G"),
            "1.G",
            "ParseQuantity accepts and keeps a trailing dot"
        );
        assert_eq!(c("e3"), "0", "no digits parse as zero");
    }

    #[test]
    fn not_quantities() {
        for bad in ["", "abc", "1K", "1KB", "1.5.5", "1e", "1Gi2", "--1", "1 Gi"] {
            assert_eq!(canonical(bad), None, "{bad:?}");
        }
        assert_eq!(canonical_value(&json!(true)), None);
        assert_eq!(canonical_value(&json!(null)), None);
    }

    #[test]
    fn go_number_text() {
        assert_eq!(go_json_number(&Number::from_f64(0.5).unwrap()), "0.5");
        assert_eq!(go_json_number(&Number::from_f64(1000.0).unwrap()), "1000");
        assert_eq!(go_json_number(&Number::from_f64(1e-7).unwrap()), "1e-7");
        assert_eq!(go_json_number(&Number::from_f64(1.5e-7).unwrap()), "1.5e-7");
        assert_eq!(go_json_number(&Number::from_f64(1e21).unwrap()), "1e+21");
        assert_eq!(go_json_number(&Number::from(42u64)), "42");
        assert_eq!(n(json!(1e21)), "1e+21", "kept as Go sent it");
        assert_eq!(n(json!(1e-7)), "100e-9");
    }

    #[test]
    fn same_quantity() {
        assert_eq!(same(&json!(0.5), &json!("500m")), Some(true));
        assert_eq!(same(&json!("1.5Gi"), &json!("1536Mi")), Some(true));
        assert_eq!(same(&json!("1G"), &json!("1Gi")), Some(false));
        assert_eq!(same(&json!("1G"), &json!("x")), None);
    }
}
