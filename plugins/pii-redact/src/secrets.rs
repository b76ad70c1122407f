//! Credentials pasted into prompts or repeated by a model: API keys of the common
//! providers, JSON web tokens and PEM private keys. Same contract as the scanners in
//! `detect`: ASCII bytes in, spans out.
//!
//! Keys are recognised by their documented prefixes, not by entropy: a prefix plus a
//! long enough body of the right alphabet is specific enough to leave ordinary words,
//! hashes and ids alone, and says which kind of key it was.

use crate::detect::{Kind, Span};

/// Bytes of a key or token. A match runs over all of them, so a key is never cut short
/// and never starts inside a longer token.
pub(crate) fn is_token(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c == b'-'
}

fn alnum(c: u8) -> bool {
    c.is_ascii_alphanumeric()
}

fn alnum_underscore(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}

fn alnum_dash(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'-'
}

fn upper_digit(c: u8) -> bool {
    c.is_ascii_uppercase() || c.is_ascii_digit()
}

/// A provider's key: its prefix, the alphabet of the rest, and how long the rest is.
struct Shape {
    prefix: &'static [u8],
    body: fn(u8) -> bool,
    min: usize,
    max: usize,
}

const ANY: usize = usize::MAX;

/// Sorted so that a longer prefix is tried before a shorter one it starts with.
#[rustfmt::skip]
const KEYS: &[Shape] = &[
    // Stripe secret and restricted keys (before OpenAI's `sk-`: `sk_` differs anyway).
    Shape { prefix: b"sk_live_", body: alnum, min: 16, max: ANY },
    Shape { prefix: b"sk_test_", body: alnum, min: 16, max: ANY },
    Shape { prefix: b"rk_live_", body: alnum, min: 16, max: ANY },
    Shape { prefix: b"rk_test_", body: alnum, min: 16, max: ANY },
    // OpenAI (`sk-`, `sk-proj-`, `sk-svcacct-`, `sk-admin-`) and Anthropic (`sk-ant-`):
    // the body's alphabet takes the inner dashes.
    Shape { prefix: b"sk-", body: is_token, min: 20, max: ANY },
    // AWS access key ids: exactly 16 upper-case letters or digits.
    Shape { prefix: b"AKIA", body: upper_digit, min: 16, max: 16 },
    Shape { prefix: b"ASIA", body: upper_digit, min: 16, max: 16 },
    // GitHub personal, OAuth, user-to-server, server-to-server and refresh tokens.
    Shape { prefix: b"github_pat_", body: alnum_underscore, min: 30, max: ANY },
    Shape { prefix: b"ghp_", body: alnum, min: 30, max: ANY },
    Shape { prefix: b"gho_", body: alnum, min: 30, max: ANY },
    Shape { prefix: b"ghu_", body: alnum, min: 30, max: ANY },
    Shape { prefix: b"ghs_", body: alnum, min: 30, max: ANY },
    Shape { prefix: b"ghr_", body: alnum, min: 30, max: ANY },
    // Google API keys: `AIza` and 35 more.
    Shape { prefix: b"AIza", body: is_token, min: 35, max: 35 },
    // Slack bot, user, app-level and legacy tokens.
    Shape { prefix: b"xoxb-", body: alnum_dash, min: 10, max: ANY },
    Shape { prefix: b"xoxp-", body: alnum_dash, min: 10, max: ANY },
    Shape { prefix: b"xoxa-", body: alnum_dash, min: 10, max: ANY },
    Shape { prefix: b"xoxr-", body: alnum_dash, min: 10, max: ANY },
    Shape { prefix: b"xoxs-", body: alnum_dash, min: 10, max: ANY },
    Shape { prefix: b"xapp-", body: alnum_dash, min: 10, max: ANY },
];

/// What one pass over a text found out: which scanners can have anything to find, and
/// where a key or token may start.
pub(crate) struct Survey {
    pub has_digit: bool,
    pub has_at: bool,
    pub has_dash: bool,
    /// Token starts whose first two bytes begin a known prefix (`sk`, `AK`, `ey`, ...).
    pub token_starts: Vec<usize>,
}

const DIGIT: u8 = 1;
const AT: u8 = 2;
const DASH: u8 = 4;
/// A byte of a token ([`is_token`]).
const TOKEN: u8 = 8;
/// A byte that continues a token without being one (`.` between a JWT's segments).
const DOT: u8 = 16;
/// A byte some prefix starts with.
const FIRST: u8 = 32;

/// Each byte's classes, so the survey is one table lookup per byte.
const CLASS: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut c = 0;
    while c < 256 {
        let b = c as u8;
        let mut k = 0;
        if b.is_ascii_digit() {
            k |= DIGIT;
        }
        if b == b'@' {
            k |= AT;
        }
        if b == b'-' {
            k |= DASH;
        }
        if b.is_ascii_alphanumeric() || b == b'_' || b == b'-' {
            k |= TOKEN;
        }
        if b == b'.' {
            k |= DOT;
        }
        if matches!(b, b'e' | b's' | b'r' | b'A' | b'g' | b'x') {
            k |= FIRST;
        }
        t[c] = k;
        c += 1;
    }
    t
};

impl Survey {
    pub(crate) fn of(b: &[u8]) -> Survey {
        let mut seen = 0u8;
        let mut token_starts = Vec::new();
        for (i, &c) in b.iter().enumerate() {
            let class = CLASS[c as usize];
            seen |= class;
            // Rarely taken: a prefix's first letter, then its second, then not inside a
            // token (after a token byte or a JWT's dot no token starts).
            if class & FIRST != 0
                && prefix_pair(c, b.get(i + 1).copied())
                && (i == 0 || CLASS[b[i - 1] as usize] & (TOKEN | DOT) == 0)
            {
                token_starts.push(i);
            }
        }
        Survey {
            has_digit: seen & DIGIT != 0,
            has_at: seen & AT != 0,
            has_dash: seen & DASH != 0,
            token_starts,
        }
    }
}

/// Whether two bytes begin one of the known prefixes.
fn prefix_pair(a: u8, b: Option<u8>) -> bool {
    matches!(
        (a, b),
        (b'e', Some(b'y'))
            | (b's' | b'r', Some(b'k'))
            | (b'A', Some(b'K' | b'S' | b'I'))
            | (b'g', Some(b'h' | b'i'))
            | (b'x', Some(b'o' | b'a'))
    )
}

/// API keys and JSON web tokens starting at `starts` (from [`Survey`]).
pub(crate) fn tokens(b: &[u8], starts: &[usize], keys: bool, jwts: bool, out: &mut Vec<Span>) {
    for &i in starts {
        let found = if b[i] == b'e' {
            jwts.then(|| jwt_end(b, i).map(|end| (end, Kind::Jwt)))
                .flatten()
        } else {
            keys.then(|| key_end(b, i).map(|end| (end, Kind::ApiKey)))
                .flatten()
        };
        if let Some((end, kind)) = found {
            out.push(Span {
                start: i,
                end,
                kind,
            });
        }
    }
}

/// Where the key starting at `i` ends, if one does.
fn key_end(b: &[u8], i: usize) -> Option<usize> {
    let rest = &b[i..];
    KEYS.iter().find_map(|k| {
        let body = rest.strip_prefix(k.prefix)?;
        let n = body.iter().take_while(|c| (k.body)(**c)).count();
        let end = i + k.prefix.len() + n;
        // The token must end where the key does: `AKIA` + 17 characters is something else.
        let clean_end = !b.get(end).is_some_and(|c| is_token(*c));
        (n >= k.min && n <= k.max && clean_end).then_some(end)
    })
}

/// A JSON web token (or JWE): base64url segments joined by dots, the first a JSON
/// header (`eyJ` is `{"`), at least three of at least 8 characters each.
fn jwt_end(b: &[u8], i: usize) -> Option<usize> {
    if !b[i..].starts_with(b"eyJ") {
        return None;
    }
    let segment = |from: usize| b[from..].iter().take_while(|c| is_token(**c)).count();
    let mut end = i;
    let mut segments = 0;
    loop {
        let n = segment(end);
        if n < 8 {
            break;
        }
        end += n;
        segments += 1;
        // Another segment follows only if a token byte comes right after the dot; a
        // dot before a space ends the sentence.
        if b.get(end) == Some(&b'.') && b.get(end + 1).is_some_and(|c| is_token(*c)) {
            end += 1;
        } else {
            break;
        }
    }
    if segments < 3 {
        return None;
    }
    // A short last segment after a dot is not part of the token: step back over the dot.
    if b.get(end.wrapping_sub(1)) == Some(&b'.') {
        end -= 1;
    }
    Some(end)
}

const BEGIN: &[u8] = b"-----BEGIN ";
const END: &[u8] = b"-----END ";
const DASHES: &[u8] = b"-----";

/// PEM private keys: from the `-----BEGIN ... PRIVATE KEY-----` line through the
/// matching `-----END ... PRIVATE KEY-----`, or to the end of the text when the END line
/// is missing (a key pasted in part is still a key).
pub(crate) fn private_keys(b: &[u8], out: &mut Vec<Span>) {
    let mut i = 0;
    while let Some(at) = find(b, BEGIN, i) {
        let Some(header_end) = header_end(b, at) else {
            i = at + BEGIN.len();
            continue;
        };
        let end = pem_end(b, header_end).unwrap_or(b.len());
        out.push(Span {
            start: at,
            end,
            kind: Kind::PrivateKey,
        });
        i = end;
    }
}

/// Where the private-key header line that starts at `at` ends, if it is one:
/// `-----BEGIN ` then words of upper-case letters and digits ending in `PRIVATE KEY`,
/// then `-----`.
pub(crate) fn header_end(b: &[u8], at: usize) -> Option<usize> {
    let from = at + BEGIN.len();
    let n = b[from..]
        .iter()
        .take(64)
        .take_while(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || **c == b' ')
        .count();
    let words = &b[from..from + n];
    (words.ends_with(b"PRIVATE KEY") && b[from + n..].starts_with(DASHES))
        .then_some(from + n + DASHES.len())
}

/// The end of the `-----END ...-----` line at or after `from`.
pub(crate) fn pem_end(b: &[u8], from: usize) -> Option<usize> {
    let at = find(b, END, from)?;
    let close = find(b, DASHES, at + END.len())?;
    Some(close + DASHES.len())
}

/// The first position of `pat` in `b` at or after `from`.
pub(crate) fn find(b: &[u8], pat: &[u8], from: usize) -> Option<usize> {
    let first = *pat.first()?;
    let mut i = from;
    while i + pat.len() <= b.len() {
        let j = i + b[i..].iter().position(|c| *c == first)?;
        if b[j..].starts_with(pat) {
            return Some(j);
        }
        i = j + 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(text: &str) -> Vec<(Kind, &str)> {
        let b = text.as_bytes();
        let mut out = Vec::new();
        tokens(b, &Survey::of(b).token_starts, true, true, &mut out);
        private_keys(b, &mut out);
        out.iter()
            .map(|s| (s.kind, &text[s.start..s.end]))
            .collect()
    }

    #[test]
    fn provider_keys_tokens_and_private_keys_are_found_whole() {
        for key in [
            "sk-proj-AbCdEf0123456789_AbCdEf0123456789xyz",
            "sk-ant-api03-AbCdEf0123456789AbCdEf0123456789-xyzAA",
            "sk-AbCdEfGhIjKlMnOpQrStUvWx",
            "sk_live_4eC39HqLyjWDarjtT1zdp7dc",
            "AKIAIOSFODNN7EXAMPLE",
            "ghp_0123456789abcdefghijABCDEFGHIJ012345",
            "github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz",
            "AIzaSyA-1234567890abcdefghijklmnopqrstu",
            "xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOp",
        ] {
            let text = format!("use {key}, thanks");
            assert_eq!(kinds(&text), [(Kind::ApiKey, key)], "{key}");
        }
        let jwt = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U";
        assert_eq!(kinds(&format!("token {jwt}. Next")), [(Kind::Jwt, jwt)]);
        let pem = "-----BEGIN RSA PRIVATE KEY-----\nMIIBOgIBAAJBAKj34GkxFhD90vcNLYLInFEX6Ppy1tPf9Cnzj4p4WGeKLs1Pt8Qu\n-----END RSA PRIVATE KEY-----";
        assert_eq!(
            kinds(&format!("key:\n{pem}\nend")),
            [(Kind::PrivateKey, pem)]
        );
        let cut = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC";
        assert_eq!(kinds(&format!("half {cut}")), [(Kind::PrivateKey, cut)]);
    }

    #[test]
    fn look_alikes_are_left_alone() {
        for text in [
            "the task-force met; risk-free returns",
            "sk-short",
            "AKIAIOSFODNN7EXAMPLEX is one character too long",
            "xAKIAIOSFODNN7EXAMPLE is inside a word",
            "ghp_tooShort",
            "eyJhbGciOi.eyJzdWIi is two segments",
            "-----BEGIN PUBLIC KEY-----\nMIIBIjANBgkq\n-----END PUBLIC KEY-----",
            "-----BEGIN CERTIFICATE-----",
        ] {
            assert_eq!(kinds(text), [], "{text}");
        }
    }
}
