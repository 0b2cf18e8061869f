//! Parsing of the unit-carrying values of a topology file: rates, times and loss.
//!
//! Rates are bits per second as in `tc`: `kbit`, `mbit`, `gbit` (and `kbps`, `mbps`,
//! `gbps` as the same bits per second), decimal multipliers. Times are `us`, `ms`, `s`
//! (and `m`/`min`, `h` for experiment durations).
//! Loss is a percentage (`0.5%`); a bare `0` is accepted for "no loss".
//! Every error is a `(message, fix)` pair that the validator places at a field.

/// What went wrong with a value, and what the user should write instead.
pub type UnitError = (String, String);

const RATE_UNITS: &[(&str, f64)] = &[
    ("bit", 1.0),
    ("kbit", 1e3),
    ("mbit", 1e6),
    ("gbit", 1e9),
    ("kbps", 1e3),
    ("mbps", 1e6),
    ("gbps", 1e9),
];

const TIME_UNITS: &[(&str, f64)] = &[
    ("us", 1.0),
    ("ms", 1e3),
    ("s", 1e6),
    ("m", 60e6),
    ("min", 60e6),
    ("h", 3600e6),
];

/// Splits `"2.5mbit"` into `(2.5, "mbit")`.
fn split_number(text: &str) -> Result<(f64, &str), UnitError> {
    let text = text.trim();
    let end = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '-'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(end);
    match number.parse::<f64>() {
        Ok(n) if n.is_finite() => Ok((n, unit.trim())),
        _ => Err((
            format!("`{text}` does not start with a number"),
            "write a number followed by its unit".into(),
        )),
    }
}

fn scaled(text: &str, units: &[(&str, f64)], kind: &str, example: &str) -> Result<f64, UnitError> {
    let (n, unit) = split_number(text)?;
    let names: Vec<&str> = units.iter().map(|(u, _)| *u).collect();
    if unit.is_empty() {
        return Err((
            format!("`{text}` has no unit"),
            format!("add a {kind} unit ({}), e.g. `{example}`", names.join(", ")),
        ));
    }
    match units.iter().find(|(u, _)| u.eq_ignore_ascii_case(unit)) {
        Some((_, factor)) => Ok(n * factor),
        None => Err((
            format!("unknown {kind} unit `{unit}` in `{text}`"),
            format!("use one of {}, e.g. `{example}`", names.join(", ")),
        )),
    }
}

/// A rate in bits per second, strictly positive.
pub fn parse_rate(text: &str) -> Result<u64, UnitError> {
    let bps = scaled(text, RATE_UNITS, "rate", "2mbit")?;
    if bps < 1.0 {
        return Err((
            format!("rate `{text}` must be greater than 0"),
            "give a positive rate such as `128kbit`".into(),
        ));
    }
    Ok(bps.round() as u64)
}

/// A one-way time in microseconds, zero or more.
pub fn parse_time_us(text: &str) -> Result<u64, UnitError> {
    let us = scaled(text, TIME_UNITS, "time", "30ms")?;
    if us < 0.0 {
        return Err((
            format!("time `{text}` is negative"),
            "delays are one-way times of 0 or more, e.g. `30ms`".into(),
        ));
    }
    Ok(us.round() as u64)
}

/// A loss percentage, returned as a fraction in `0.0..=1.0`.
pub fn parse_loss(text: &str) -> Result<f64, UnitError> {
    let text = text.trim();
    let Some(number) = text.strip_suffix('%') else {
        return match text.parse::<f64>() {
            Ok(0.0) => Ok(0.0),
            _ => Err((
                format!("loss `{text}` is not a percentage"),
                "write loss as a percentage between 0% and 100%, e.g. `0.5%`".into(),
            )),
        };
    };
    match number.trim().parse::<f64>() {
        Ok(p) if (0.0..=100.0).contains(&p) => Ok(p / 100.0),
        Ok(_) => Err((
            format!("loss `{text}` is outside 0..100%"),
            "give a percentage between 0% and 100%".into(),
        )),
        Err(_) => Err((
            format!("loss `{text}` does not start with a number"),
            "write loss as a percentage, e.g. `0.5%`".into(),
        )),
    }
}

/// Renders bits per second the way a topology file would write them, which is also how
/// `tc` writes them (`128kbit`, `2mbit`, `1500bit`): in the largest unit that divides the
/// rate exactly.
pub fn format_rate(bps: u64) -> String {
    for (unit, div) in [
        ("gbit", 1_000_000_000),
        ("mbit", 1_000_000),
        ("kbit", 1_000),
    ] {
        if bps >= div && bps.is_multiple_of(div) {
            return format!("{}{unit}", bps / div);
        }
    }
    format!("{bps}bit")
}

/// Renders microseconds as milliseconds with up to three decimals.
pub fn format_time_us(us: u64) -> String {
    if us.is_multiple_of(1000) {
        format!("{}ms", us / 1000)
    } else {
        format!("{}ms", us as f64 / 1000.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_are_bits_per_second() {
        assert_eq!(parse_rate("2mbit"), Ok(2_000_000));
        assert_eq!(parse_rate("128kbit"), Ok(128_000));
        assert_eq!(parse_rate("128 kbps"), Ok(128_000));
        assert_eq!(parse_rate("1.5gbit"), Ok(1_500_000_000));
        assert_eq!(parse_rate("10MBit"), Ok(10_000_000));
        assert_eq!(parse_rate("1bit"), Ok(1));
    }

    #[test]
    fn rates_and_times_round_to_the_nearest_unit() {
        // Each float product lies just below the integer (2.01 * 1e3 = 2009.9999999999998),
        // so rounding down instead of to nearest gives one less.
        for (text, bps) in [
            ("2.3kbit", 2_300),
            ("2.01kbit", 2_010),
            ("1.005mbit", 1_005_000),
            ("8.2mbit", 8_200_000),
            ("2.01gbit", 2_010_000_000),
            ("1.5bit", 2),
        ] {
            assert_eq!(parse_rate(text), Ok(bps), "{text}");
        }
        for (text, us) in [
            ("2.01ms", 2_010),
            ("8.2s", 8_200_000),
            ("0.4us", 0),
            ("0.6us", 1),
        ] {
            assert_eq!(parse_time_us(text), Ok(us), "{text}");
        }
    }

    #[test]
    fn a_rate_below_one_bit_per_second_is_refused() {
        assert_eq!(
            parse_rate("0.4bit").unwrap_err().0,
            "rate `0.4bit` must be greater than 0"
        );
        assert_eq!(parse_rate("0.001kbit"), Ok(1));
    }

    #[test]
    fn long_time_units_scale_to_microseconds() {
        assert_eq!(parse_time_us("2m"), Ok(120_000_000));
        assert_eq!(parse_time_us("2min"), Ok(120_000_000));
        assert_eq!(parse_time_us("1h"), Ok(3_600_000_000));
    }

    #[test]
    fn bad_rates_say_what_to_write() {
        let (msg, fix) = parse_rate("2mb").unwrap_err();
        assert_eq!(msg, "unknown rate unit `mb` in `2mb`");
        assert!(fix.contains("mbit"));
        assert_eq!(
            parse_rate("fast").unwrap_err().0,
            "`fast` does not start with a number"
        );
        assert_eq!(
            parse_rate("0mbit").unwrap_err().0,
            "rate `0mbit` must be greater than 0"
        );
        assert_eq!(
            parse_rate("-1mbit").unwrap_err().0,
            "rate `-1mbit` must be greater than 0"
        );
        assert_eq!(parse_rate("100").unwrap_err().0, "`100` has no unit");
    }

    #[test]
    fn times_are_microseconds() {
        assert_eq!(parse_time_us("30ms"), Ok(30_000));
        assert_eq!(parse_time_us("250us"), Ok(250));
        assert_eq!(parse_time_us("1.5s"), Ok(1_500_000));
        assert_eq!(parse_time_us("0ms"), Ok(0));
        assert_eq!(
            parse_time_us("-5ms").unwrap_err().0,
            "time `-5ms` is negative"
        );
        assert_eq!(
            parse_time_us("5d").unwrap_err().0,
            "unknown time unit `d` in `5d`"
        );
    }

    #[test]
    fn loss_is_a_percentage() {
        assert_eq!(parse_loss("0.5%"), Ok(0.005));
        assert_eq!(parse_loss("100%"), Ok(1.0));
        assert_eq!(parse_loss("0"), Ok(0.0));
        assert_eq!(
            parse_loss("120%").unwrap_err().0,
            "loss `120%` is outside 0..100%"
        );
        assert_eq!(
            parse_loss("-1%").unwrap_err().0,
            "loss `-1%` is outside 0..100%"
        );
        assert_eq!(
            parse_loss("0.1").unwrap_err().0,
            "loss `0.1` is not a percentage"
        );
    }

    #[test]
    fn formatting_round_trips() {
        for text in ["2mbit", "128kbit", "1gbit", "1500bit"] {
            assert_eq!(format_rate(parse_rate(text).unwrap()), text);
        }
        assert_eq!(format_time_us(30_000), "30ms");
        assert_eq!(format_time_us(1_500), "1.5ms");
    }

    #[test]
    fn rates_take_the_largest_unit_that_divides_them() {
        for (bps, text) in [
            (0, "0bit"),
            (999, "999bit"),
            (1_000, "1kbit"),
            (1_001, "1001bit"),
            (1_000_000, "1mbit"),
            (1_500_000, "1500kbit"),
            (999_000_000, "999mbit"),
            (1_000_000_000, "1gbit"),
            (2_500_000_000, "2500mbit"),
        ] {
            assert_eq!(format_rate(bps), text);
        }
        for (us, text) in [
            (0, "0ms"),
            (1_234, "1.234ms"),
            (2_000_000, "2000ms"),
            (7, "0.007ms"),
        ] {
            assert_eq!(format_time_us(us), text);
        }
    }

    #[test]
    fn a_number_too_large_for_a_float_is_refused() {
        let huge = format!("1{}kbit", "0".repeat(400));
        assert_eq!(
            parse_rate(&huge).unwrap_err().0,
            format!("`{huge}` does not start with a number")
        );
    }
}
