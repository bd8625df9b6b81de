//! Subscribe-message keyword values, checked against their type before sending (wechat-api.md
//! section 4.1), so a value WeChat would reject with 47003 never leaves the building. The same
//! check backs the sandbox, which answers 47003 naming the field as WeChat does.

/// Why a value breaks its keyword's rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key}: {reason}")]
pub struct KeywordError {
    pub key: String,
    pub reason: &'static str,
}

/// The type of a keyword is the alphabetic prefix of its id (`thing1` -> `thing`).
pub fn keyword_type(key: &str) -> &str {
    key.trim_end_matches(|c: char| c.is_ascii_digit())
}

/// A Chinese (CJK ideograph) character: what `character_string` refuses and `phrase` requires.
pub fn is_cjk(c: char) -> bool {
    matches!(c, '\u{3400}'..='\u{4DBF}' | '\u{4E00}'..='\u{9FFF}' | '\u{F900}'..='\u{FAFF}' | '\u{20000}'..='\u{2FA1F}')
}

fn is_symbol(c: char) -> bool {
    c.is_ascii_punctuation() || c == ' '
}

fn is_date(s: &str) -> bool {
    // 2019年10月1日, optionally followed by a time.
    let (date, rest) = match s.split_once('日') {
        Some((d, r)) => (d, r.trim()),
        None => return false,
    };
    let Some((year, md)) = date.split_once('年') else {
        return false;
    };
    let Some((month, day)) = md.split_once('月') else {
        return false;
    };
    let in_range =
        |v: &str, lo: u32, hi: u32| v.parse::<u32>().is_ok_and(|n| (lo..=hi).contains(&n));
    year.len() == 4
        && in_range(year, 1970, 2999)
        && in_range(month, 1, 12)
        && in_range(day, 1, 31)
        && (rest.is_empty() || is_clock(rest))
}

fn is_clock(s: &str) -> bool {
    let parts: Vec<&str> = s.split(':').collect();
    let ok = |v: &str, hi: u32| v.len() == 2 && v.parse::<u32>().is_ok_and(|n| n <= hi);
    match parts.as_slice() {
        [h, m] => ok(h, 23) && ok(m, 59),
        [h, m, sec] => ok(h, 23) && ok(m, 59) && ok(sec, 59),
        _ => false,
    }
}

fn is_time(s: &str) -> bool {
    is_clock(s) || is_date(s)
}

/// Allows a `~` range of two values of the same kind.
fn single_or_range(s: &str, one: fn(&str) -> bool) -> bool {
    match s.split_once('~') {
        Some((a, b)) => one(a.trim()) && one(b.trim()),
        None => one(s),
    }
}

/// Checks one value against its keyword's type. Unknown types pass: WeChat adds types, and
/// refusing them here would block sends WeChat accepts.
pub fn check(key: &str, value: &str) -> Result<(), KeywordError> {
    let fail = |reason| {
        Err(KeywordError {
            key: key.to_string(),
            reason,
        })
    };
    let chars = value.chars().count();
    if value.is_empty() {
        return fail("must not be empty");
    }
    match keyword_type(key) {
        "thing" if chars > 20 => fail("thing allows at most 20 characters"),
        "number" if chars > 32 || !value.chars().all(|c| c.is_ascii_digit() || c == '.') => {
            fail("number allows at most 32 digits")
        }
        "letter" if chars > 32 || !value.chars().all(|c| c.is_ascii_alphabetic()) => {
            fail("letter allows at most 32 letters")
        }
        "symbol" if chars > 5 || !value.chars().all(is_symbol) => {
            fail("symbol allows at most 5 symbols")
        }
        "character_string"
            if chars > 32
                || !value
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || is_symbol(c)) =>
        {
            fail("character_string allows at most 32 letters, digits or symbols, no Chinese")
        }
        "time" if !single_or_range(value, is_time) => {
            fail("time must look like 15:01 or 2019年10月1日 15:01")
        }
        "date" if !single_or_range(value, is_date) => {
            fail("date must look like 2019年10月1日 or 2019年10月1日 15:01")
        }
        "amount" => {
            let digits = value.trim_end_matches('元');
            let digits = digits
                .strip_prefix(|c: char| !c.is_ascii_digit())
                .unwrap_or(digits);
            let ok = !digits.is_empty()
                && digits.chars().filter(|c| c.is_ascii_digit()).count() <= 10
                && digits.chars().all(|c| c.is_ascii_digit() || c == '.');
            if ok {
                Ok(())
            } else {
                fail("amount is a currency symbol and at most 10 digits")
            }
        }
        "phone_number"
            if chars > 17 || !value.chars().all(|c| c.is_ascii_digit() || is_symbol(c)) =>
        {
            fail("phone_number allows at most 17 digits or symbols")
        }
        "car_number" if chars > 8 => fail("car_number allows at most 8 characters"),
        "name" => {
            let has_cjk = value.chars().any(is_cjk);
            if (has_cjk && chars > 10) || (!has_cjk && chars > 20) {
                fail("name allows at most 10 Chinese characters or 20 letters")
            } else {
                Ok(())
            }
        }
        "phrase" if chars > 5 || !value.chars().all(is_cjk) => {
            fail("phrase allows at most 5 Chinese characters")
        }
        _ => Ok(()),
    }
}

/// Cuts a value to what its type allows, as WeChat's own SDKs do for official-account templates
/// (`thing` over 20 -> 17 characters and "..."), for types where a cut value still reads well.
pub fn truncate(key: &str, value: &str) -> String {
    let limit = match keyword_type(key) {
        "thing" => 20,
        "character_string" | "number" | "letter" => 32,
        "phone_number" => 17,
        "car_number" => 8,
        _ => return value.to_string(),
    };
    if value.chars().count() <= limit {
        return value.to_string();
    }
    let kept: String = value.chars().take(limit - 3).collect();
    format!("{kept}...")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thing_allows_twenty_characters_counted_not_bytes() {
        assert!(check("thing1", &"会".repeat(20)).is_ok());
        let err = check("thing1", &"会".repeat(21)).unwrap_err();
        assert_eq!(err.key, "thing1");
    }

    #[test]
    fn character_string_refuses_chinese() {
        assert!(check("character_string3", "BK20241001001").is_ok());
        assert!(check("character_string3", "测试订阅消息1").is_err());
    }

    #[test]
    fn phrase_is_five_chinese_characters() {
        assert!(check("phrase4", "预约成功").is_ok());
        assert!(check("phrase4", "预约已经成功了").is_err());
        assert!(check("phrase4", "OK").is_err());
    }

    #[test]
    fn dates_and_times_use_the_documented_format() {
        assert!(check("time2", "15:01").is_ok());
        assert!(check("time2", "2024年10月1日 15:01").is_ok());
        assert!(check("time2", "2024年10月1日 15:01 ~ 2024年10月1日 16:00").is_ok());
        assert!(check("date5", "2024年10月1日").is_ok());
        assert!(check("date5", "2024-10-01").is_err());
        assert!(check("time2", "25:00").is_err());
    }

    #[test]
    fn amounts_numbers_and_names() {
        assert!(check("amount6", "¥200.00").is_ok());
        assert!(check("amount6", "200元").is_ok());
        assert!(check("amount6", "两百").is_err());
        assert!(check("number7", "1200").is_ok());
        assert!(check("number7", "12a").is_err());
        assert!(check("name8", "王小美").is_ok());
        assert!(check("name8", "王小美王小美王小美王小").is_err());
        assert!(check("thing9", "").is_err());
    }

    #[test]
    fn truncation_keeps_values_within_their_limit() {
        let long = "这是一条超过二十个字符的会员日专场预约提醒消息内容";
        let cut = truncate("thing1", long);
        assert_eq!(cut.chars().count(), 20);
        assert!(check("thing1", &cut).is_ok());
        assert_eq!(truncate("thing1", "短"), "短");
    }
}
