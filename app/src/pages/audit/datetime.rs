//! The time-range inputs: `datetime-local` values read as UTC, to and from Unix ms.
//!
//! Pure arithmetic, identical on the server and in the browser, so that the filter form
//! renders the same on both sides and a shared link means the same instant everywhere.

use crate::wire::format_timestamp_utc;

/// A time-range input that is not `YYYY-MM-DDTHH:MM` (optionally `:SS`) or names no real
/// calendar time.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a time: expected YYYY-MM-DDTHH:MM (UTC)")]
pub struct InvalidDateTime(pub String);

/// Reads a `datetime-local` value (`YYYY-MM-DDTHH:MM`, seconds optional) as a UTC time in
/// Unix ms.
pub fn parse_datetime_local(value: &str) -> Result<i64, InvalidDateTime> {
    let invalid = || InvalidDateTime(value.to_string());
    let (date, time) = value.split_once('T').ok_or_else(invalid)?;
    let [year, month, day] = fixed_fields(date, '-', [4, 2, 2]).ok_or_else(invalid)?;
    let (hour, minute, second) = match time.len() {
        5 => {
            let [h, m] = fixed_fields(time, ':', [2, 2]).ok_or_else(invalid)?;
            (h, m, 0)
        }
        _ => {
            let [h, m, s] = fixed_fields(time, ':', [2, 2, 2]).ok_or_else(invalid)?;
            (h, m, s)
        }
    };
    let valid = (1..=12).contains(&month)
        && (1..=days_in_month(year, month)).contains(&day)
        && hour < 24
        && minute < 60
        && second < 60;
    if !valid {
        return Err(invalid());
    }
    let days = days_from_civil(year, month, day);
    Ok(((days * 24 + hour) * 60 + minute) * 60_000 + second * 1000)
}

/// Formats Unix ms as a `datetime-local` value in UTC, to the minute (the inputs' precision).
pub fn format_datetime_local(ms: i64) -> String {
    // `YYYY-MM-DD HH:MM:SS` without the seconds, and with the `T` the input expects.
    let stamp = format_timestamp_utc(ms);
    let minutes = &stamp[..stamp.len() - 3];
    minutes.replacen(' ', "T", 1)
}

/// Splits `text` at `separator` into fields of exactly the given digit counts.
fn fixed_fields<const N: usize>(
    text: &str,
    separator: char,
    widths: [usize; N],
) -> Option<[i64; N]> {
    let mut fields = text.split(separator);
    let mut out = [0; N];
    for (slot, width) in out.iter_mut().zip(widths) {
        let field = fields.next()?;
        if field.len() != width || !field.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        *slot = field.parse().ok()?;
    }
    fields.next().is_none().then_some(out)
}

/// Days in a month of the proleptic Gregorian calendar.
fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a civil date (H. Hinnant's algorithm, the inverse of the one
/// behind [`format_timestamp_utc`]).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let yoe = year.rem_euclid(400);
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_datetime_local_values_as_utc() {
        assert_eq!(parse_datetime_local("1970-01-01T00:00"), Ok(0));
        assert_eq!(
            parse_datetime_local("2026-11-22T13:04"),
            Ok(1_795_352_640_000)
        );
        assert_eq!(
            parse_datetime_local("2026-11-22T13:04:05"),
            Ok(1_795_352_645_000)
        );
        assert_eq!(
            parse_datetime_local("2000-02-29T00:00"),
            Ok(951_782_400_000)
        );
        assert_eq!(parse_datetime_local("1969-12-31T23:59"), Ok(-60_000));
    }

    #[test]
    fn formats_to_the_minute_and_round_trips() {
        assert_eq!(format_datetime_local(0), "1970-01-01T00:00");
        assert_eq!(format_datetime_local(1_795_352_645_678), "2026-11-22T13:04");
        for value in [
            "1970-01-01T00:00",
            "2000-02-29T23:59",
            "2024-12-31T12:30",
            "2026-03-01T00:01",
            "1969-07-20T20:17",
        ] {
            let ms = parse_datetime_local(value).unwrap();
            assert_eq!(format_datetime_local(ms), value);
        }
        // Every minute-aligned instant of a leap year comes back unchanged (sampled hourly).
        let start = parse_datetime_local("2028-01-01T00:00").unwrap();
        for hour in 0..366 * 24 {
            let ms = start + hour * 3_600_000 + 17 * 60_000;
            assert_eq!(parse_datetime_local(&format_datetime_local(ms)), Ok(ms));
        }
    }

    #[test]
    fn refuses_what_is_not_a_calendar_time() {
        for bad in [
            "",
            "2026-11-22",
            "2026-11-22 13:04",
            "2026-11-22T13",
            "2026-11-22T13:04:05:06",
            "2026-11-22T13:4",
            "26-11-22T13:04",
            "2026-13-01T00:00",
            "2026-00-01T00:00",
            "2026-02-29T00:00",
            "2026-04-31T00:00",
            "2026-11-22T24:00",
            "2026-11-22T23:60",
            "2026-11-22T23:59:60",
            "2026-11-22T+1:04",
            "2026-1a-22T13:04",
            "２026-11-22T13:04",
        ] {
            assert_eq!(
                parse_datetime_local(bad),
                Err(InvalidDateTime(bad.to_string())),
                "{bad:?}"
            );
        }
        assert_eq!(
            parse_datetime_local("yesterday").unwrap_err().to_string(),
            "\"yesterday\" is not a time: expected YYYY-MM-DDTHH:MM (UTC)"
        );
    }
}
