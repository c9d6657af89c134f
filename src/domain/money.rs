//! Money as integer minor units plus an ISO 4217 currency, so amounts are exact and comparable.

use serde::{Deserialize, Serialize};
use std::fmt;

/// ISO 4217 codes we accept, with their number of decimal places. Unknown codes are refused
/// rather than guessed, because a guessed exponent silently changes an amount by a factor of 100.
const CURRENCIES: &[(&str, u8)] = &[
    ("AED", 2),
    ("ARS", 2),
    ("AUD", 2),
    ("BHD", 3),
    ("BRL", 2),
    ("CAD", 2),
    ("CHF", 2),
    ("CLP", 0),
    ("CNY", 2),
    ("COP", 2),
    ("CZK", 2),
    ("DKK", 2),
    ("EGP", 2),
    ("EUR", 2),
    ("GBP", 2),
    ("HKD", 2),
    ("HUF", 2),
    ("IDR", 2),
    ("ILS", 2),
    ("INR", 2),
    ("ISK", 0),
    ("JOD", 3),
    ("JPY", 0),
    ("KRW", 0),
    ("KWD", 3),
    ("MXN", 2),
    ("MYR", 2),
    ("NGN", 2),
    ("NOK", 2),
    ("NZD", 2),
    ("OMR", 3),
    ("PEN", 2),
    ("PHP", 2),
    ("PKR", 2),
    ("PLN", 2),
    ("QAR", 2),
    ("RON", 2),
    ("SAR", 2),
    ("SEK", 2),
    ("SGD", 2),
    ("THB", 2),
    ("TND", 3),
    ("TRY", 2),
    ("TWD", 2),
    ("UAH", 2),
    ("USD", 2),
    ("VND", 0),
    ("ZAR", 2),
];

/// Every currency we accept, with its number of decimal places.
pub fn currencies() -> &'static [(&'static str, u8)] {
    CURRENCIES
}

/// The largest amount we accept in minor units: about 10^15, far beyond any real payment and
/// far inside `i64`, so arithmetic on sums of many amounts cannot overflow.
pub const MAX_MINOR_UNITS: i64 = 1_000_000_000_000_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Currency {
    code: [u8; 3],
    exponent: u8,
}

impl Currency {
    pub fn parse(code: &str) -> Result<Currency, MoneyError> {
        CURRENCIES
            .iter()
            .find(|(c, _)| *c == code)
            .map(|(c, e)| {
                let b = c.as_bytes();
                Currency {
                    code: [b[0], b[1], b[2]],
                    exponent: *e,
                }
            })
            .ok_or_else(|| MoneyError::UnknownCurrency(code.chars().take(16).collect()))
    }

    pub fn code(&self) -> &str {
        // Only built from the ASCII table above.
        std::str::from_utf8(&self.code).unwrap_or("???")
    }

    pub fn exponent(&self) -> u8 {
        self.exponent
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    #[error("unknown currency {0:?}; use an ISO 4217 code such as EUR or USD")]
    UnknownCurrency(String),
    #[error("{0:?} is not a decimal amount such as 1200.50")]
    NotANumber(String),
    #[error("amount must not be negative")]
    Negative,
    #[error("{currency} has {exponent} decimal places; {given:?} has more")]
    TooPrecise {
        currency: String,
        exponent: u8,
        given: String,
    },
    #[error("amount is too large")]
    TooLarge,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Money {
    pub minor: i64,
    pub currency: Currency,
}

impl Money {
    /// Parses a non-negative decimal string ("4200", "4200.5", "4200.50") in `currency`.
    pub fn parse(amount: &str, currency: &str) -> Result<Money, MoneyError> {
        let currency = Currency::parse(currency)?;
        let minor = parse_minor(amount, currency)?;
        Ok(Money { minor, currency })
    }

    pub fn from_minor(minor: i64, currency: Currency) -> Money {
        Money { minor, currency }
    }

    /// The amount as a plain decimal string without grouping, e.g. "4200.00".
    pub fn to_decimal_string(&self) -> String {
        let exp = self.currency.exponent as u32;
        if exp == 0 {
            return self.minor.to_string();
        }
        let scale = 10i64.pow(exp);
        let sign = if self.minor < 0 { "-" } else { "" };
        let abs = self.minor.unsigned_abs();
        format!(
            "{sign}{}.{:0width$}",
            abs / scale as u64,
            abs % scale as u64,
            width = exp as usize
        )
    }
}

impl fmt::Display for Money {
    /// "4,200.00 EUR": grouped for people, with the code so no symbol is ambiguous.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let plain = self.to_decimal_string();
        let (sign, digits) = match plain.strip_prefix('-') {
            Some(rest) => ("-", rest),
            None => ("", plain.as_str()),
        };
        let (int, frac) = match digits.split_once('.') {
            Some((i, fr)) => (i, Some(fr)),
            None => (digits, None),
        };
        let mut grouped = String::with_capacity(int.len() + int.len() / 3);
        for (i, ch) in int.chars().enumerate() {
            if i > 0 && (int.len() - i) % 3 == 0 {
                grouped.push(',');
            }
            grouped.push(ch);
        }
        match frac {
            Some(fr) => write!(f, "{sign}{grouped}.{fr} {}", self.currency.code()),
            None => write!(f, "{sign}{grouped} {}", self.currency.code()),
        }
    }
}

fn parse_minor(amount: &str, currency: Currency) -> Result<i64, MoneyError> {
    let text = amount.trim();
    let shown: String = text.chars().take(32).collect();
    if text.starts_with('-') {
        return Err(MoneyError::Negative);
    }
    let (int, frac) = match text.split_once('.') {
        Some((i, f)) => (i, f),
        None => (text, ""),
    };
    let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if int.is_empty()
        || !all_digits(int)
        || !all_digits(frac)
        || (text.contains('.') && frac.is_empty())
    {
        return Err(MoneyError::NotANumber(shown));
    }
    let exp = currency.exponent as usize;
    let significant_frac = frac.trim_end_matches('0');
    if significant_frac.len() > exp {
        return Err(MoneyError::TooPrecise {
            currency: currency.code().to_owned(),
            exponent: currency.exponent,
            given: shown,
        });
    }
    let int = int.trim_start_matches('0');
    if int.len() > 16 {
        return Err(MoneyError::TooLarge);
    }
    let int_value: i64 = if int.is_empty() {
        0
    } else {
        int.parse().map_err(|_| MoneyError::TooLarge)?
    };
    let mut frac_value: i64 = 0;
    for i in 0..exp {
        let digit = significant_frac
            .as_bytes()
            .get(i)
            .map(|b| (b - b'0') as i64)
            .unwrap_or(0);
        frac_value = frac_value * 10 + digit;
    }
    let minor = int_value
        .checked_mul(10i64.pow(exp as u32))
        .and_then(|v| v.checked_add(frac_value))
        .ok_or(MoneyError::TooLarge)?;
    if minor > MAX_MINOR_UNITS {
        return Err(MoneyError::TooLarge);
    }
    Ok(minor)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eur(s: &str) -> Result<i64, MoneyError> {
        Money::parse(s, "EUR").map(|m| m.minor)
    }

    #[test]
    fn parses_decimal_strings_exactly() {
        assert_eq!(eur("4200"), Ok(420_000));
        assert_eq!(eur("4200.5"), Ok(420_050));
        assert_eq!(eur("4200.50"), Ok(420_050));
        assert_eq!(eur("0.01"), Ok(1));
        assert_eq!(eur("0007.10"), Ok(710));
        assert_eq!(
            eur("12.3400"),
            Ok(1234),
            "trailing zeros are not extra precision"
        );
    }

    #[test]
    fn respects_each_currencys_exponent() {
        assert_eq!(Money::parse("1500", "JPY").map(|m| m.minor), Ok(1500));
        assert!(matches!(
            Money::parse("1500.5", "JPY"),
            Err(MoneyError::TooPrecise { .. })
        ));
        assert_eq!(Money::parse("1.234", "BHD").map(|m| m.minor), Ok(1234));
    }

    #[test]
    fn refuses_bad_input_with_a_reason() {
        assert_eq!(eur("-5"), Err(MoneyError::Negative));
        assert!(matches!(eur("1e9"), Err(MoneyError::NotANumber(_))));
        assert!(matches!(eur(""), Err(MoneyError::NotANumber(_))));
        assert!(matches!(eur("."), Err(MoneyError::NotANumber(_))));
        assert!(matches!(eur("5."), Err(MoneyError::NotANumber(_))));
        assert!(matches!(eur("1,000"), Err(MoneyError::NotANumber(_))));
        assert!(matches!(eur("NaN"), Err(MoneyError::NotANumber(_))));
        assert_eq!(eur("99999999999999999999"), Err(MoneyError::TooLarge));
        assert_eq!(eur("10000000000000.01"), Err(MoneyError::TooLarge));
        assert_eq!(
            Money::parse("5", "XXX"),
            Err(MoneyError::UnknownCurrency("XXX".into()))
        );
        assert!(Money::parse("5", "eur").is_err(), "codes are upper case");
    }

    #[test]
    fn displays_grouped_with_code() {
        let eur = Currency::parse("EUR").unwrap();
        assert_eq!(Money::from_minor(420_000, eur).to_string(), "4,200.00 EUR");
        assert_eq!(Money::from_minor(5, eur).to_string(), "0.05 EUR");
        assert_eq!(
            Money::from_minor(12_345_678_900, eur).to_string(),
            "123,456,789.00 EUR"
        );
        let jpy = Currency::parse("JPY").unwrap();
        assert_eq!(
            Money::from_minor(1_500_000, jpy).to_string(),
            "1,500,000 JPY"
        );
    }

    #[test]
    fn decimal_string_round_trips() {
        for s in ["0.00", "1.05", "4200.50", "999999.99"] {
            let m = Money::parse(s, "USD").unwrap();
            assert_eq!(m.to_decimal_string(), s);
        }
    }
}
