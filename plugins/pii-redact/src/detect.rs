//! Hand-written scanners for the personal data this filter knows (credentials are in
//! `secrets`), and the redaction that replaces each find with a `[REDACTED:KIND]`
//! placeholder or a mask, as the rules say.
//!
//! Every pattern is ASCII, so the scanners work on bytes: a match starts and ends on an
//! ASCII byte, which is always a `char` boundary, and non-ASCII text simply never matches.
//! Checksums (Luhn for cards, mod-97 for IBANs) keep ordinary numbers from being eaten.

/// A kind of personal data, named in the plugin config by its lowercase name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Kind {
    Email,
    Card,
    Ssn,
    Iban,
    Phone,
    /// A provider API key (OpenAI, Anthropic, AWS, GitHub, Google, Stripe, Slack).
    ApiKey,
    /// A JSON web token.
    Jwt,
    /// A PEM private key block.
    PrivateKey,
}

impl Kind {
    pub(crate) const ALL: [Kind; 8] = [
        Kind::Email,
        Kind::Card,
        Kind::Ssn,
        Kind::Iban,
        Kind::Phone,
        Kind::ApiKey,
        Kind::Jwt,
        Kind::PrivateKey,
    ];

    /// The name the config uses.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Kind::Email => "email",
            Kind::Card => "card",
            Kind::Ssn => "ssn",
            Kind::Iban => "iban",
            Kind::Phone => "phone",
            Kind::ApiKey => "api_key",
            Kind::Jwt => "jwt",
            Kind::PrivateKey => "private_key",
        }
    }

    /// Words for a denial message.
    pub(crate) fn describe(self) -> &'static str {
        match self {
            Kind::Email => "email address",
            Kind::Card => "payment card number",
            Kind::Ssn => "US social security number",
            Kind::Iban => "IBAN",
            Kind::Phone => "phone number",
            Kind::ApiKey => "API key",
            Kind::Jwt => "JSON web token",
            Kind::PrivateKey => "private key",
        }
    }

    fn placeholder(self) -> &'static str {
        match self {
            Kind::Email => "[REDACTED:EMAIL]",
            Kind::Card => "[REDACTED:CARD]",
            Kind::Ssn => "[REDACTED:SSN]",
            Kind::Iban => "[REDACTED:IBAN]",
            Kind::Phone => "[REDACTED:PHONE]",
            Kind::ApiKey => "[REDACTED:API_KEY]",
            Kind::Jwt => "[REDACTED:JWT]",
            Kind::PrivateKey => "[REDACTED:PRIVATE_KEY]",
        }
    }

    fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

/// A set of kinds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Kinds(u8);

impl Kinds {
    pub(crate) fn all() -> Kinds {
        Kind::ALL.into_iter().fold(Kinds::default(), Kinds::with)
    }

    pub(crate) fn with(self, kind: Kind) -> Kinds {
        Kinds(self.0 | kind.bit())
    }

    #[cfg(test)]
    pub(crate) fn without(self, kind: Kind) -> Kinds {
        Kinds(self.0 & !kind.bit())
    }

    pub(crate) fn union(self, other: Kinds) -> Kinds {
        Kinds(self.0 | other.0)
    }

    pub(crate) fn contains(self, kind: Kind) -> bool {
        self.0 & kind.bit() != 0
    }

    pub(crate) fn is_empty(self) -> bool {
        self.0 == 0
    }

    pub(crate) fn iter(self) -> impl Iterator<Item = Kind> {
        Kind::ALL.into_iter().filter(move |k| self.contains(*k))
    }
}

/// What happens to a find.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Action {
    /// Replaced by `[REDACTED:KIND]`.
    #[default]
    Redact,
    /// Partly kept, so a person can still tell which one it was: `j***@example.com`,
    /// `**** **** **** 1111`, `sk-…wxyz`.
    Mask,
    /// A request carrying it is refused; in an answer it is redacted (the answer still
    /// arrives, the data does not).
    Deny,
}

/// Which kinds are looked for and what happens to each.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Rules {
    pub kinds: Kinds,
    actions: [Action; Kind::ALL.len()],
}

impl Rules {
    /// `kinds`, each with `action`.
    pub(crate) fn new(kinds: Kinds, action: Action) -> Rules {
        Rules {
            kinds,
            actions: [action; Kind::ALL.len()],
        }
    }

    /// Every kind, redacted.
    #[cfg(test)]
    pub(crate) fn all() -> Rules {
        Rules::new(Kinds::all(), Action::Redact)
    }

    pub(crate) fn set(&mut self, kind: Kind, action: Action) {
        self.actions[kind as usize] = action;
    }

    pub(crate) fn action(&self, kind: Kind) -> Action {
        self.actions[kind as usize]
    }

    /// Whether a request carrying `found` is refused.
    pub(crate) fn denies(&self, found: Kinds) -> bool {
        found.iter().any(|k| self.action(k) == Action::Deny)
    }
}

/// One find: `text[start..end]` is personal data of `kind`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Span {
    pub start: usize,
    pub end: usize,
    pub kind: Kind,
}

/// `text` with every find of the wanted kinds replaced, and the kinds found; `None` when
/// there was nothing to redact (so callers can tell "unchanged" without comparing).
pub(crate) fn redact(text: &str, rules: &Rules) -> Option<(String, Kinds)> {
    let spans = find(text, rules.kinds);
    (!spans.is_empty()).then(|| apply(text, &spans, rules))
}

/// `text` with `spans` (in order, not overlapping) replaced as the rules say.
pub(crate) fn apply(text: &str, spans: &[Span], rules: &Rules) -> (String, Kinds) {
    let mut out = String::with_capacity(text.len());
    let mut found = Kinds::default();
    let mut at = 0;
    for s in spans {
        out.push_str(&text[at..s.start]);
        match rules.action(s.kind) {
            Action::Mask => mask(s.kind, &text[s.start..s.end], &mut out),
            Action::Redact | Action::Deny => out.push_str(s.kind.placeholder()),
        }
        found = found.with(s.kind);
        at = s.end;
    }
    out.push_str(&text[at..]);
    (out, found)
}

/// Writes `value`, a find of `kind`, partly hidden: what is kept is what receipts and
/// dashboards customarily show (an address's domain, a card's or an account's last four,
/// a key's prefix and last four), never enough to use it. Works on characters, so a
/// full-width find is masked in its own characters.
fn mask(kind: Kind, value: &str, out: &mut String) {
    // Keep the last `keep` letters or digits (and the first `head` ones); star the other
    // letters and digits; keep separators, which carry no secret.
    let star = |out: &mut String, head: usize, keep: usize| {
        let total = value.chars().filter(|c| c.is_alphanumeric()).count();
        let mut seen = 0;
        for c in value.chars() {
            if c.is_alphanumeric() {
                seen += 1;
                out.push(if seen <= head || seen > total.saturating_sub(keep) {
                    c
                } else {
                    '*'
                });
            } else {
                out.push(c);
            }
        }
    };
    match kind {
        Kind::Email => match value.rfind(['@', '＠']) {
            Some(at) => {
                out.extend(value.chars().next());
                out.push_str("***");
                out.push_str(&value[at..]);
            }
            None => out.push_str(kind.placeholder()),
        },
        Kind::Card | Kind::Ssn => star(out, 0, 4),
        Kind::Iban => star(out, 2, 4),
        Kind::Phone => star(out, 0, 2),
        Kind::ApiKey | Kind::Jwt => {
            let chars: Vec<char> = value.chars().collect();
            if chars.len() < 16 {
                out.push_str(kind.placeholder());
            } else {
                out.extend(&chars[..3]);
                out.push('…');
                out.extend(&chars[chars.len() - 4..]);
            }
        }
        // Nothing of a key block is safe or useful to show.
        Kind::PrivateKey => out.push_str(kind.placeholder()),
    }
}

/// A scanner appends the finds of its kind in a text to a list.
type Scanner = fn(&[u8], &mut Vec<Span>);

/// Every find of the wanted kinds, in order and not overlapping: where two scanners claim
/// the same text (an IBAN's digits can pass Luhn too), the earlier start wins, then the
/// longer match.
pub(crate) fn find(text: &str, kinds: Kinds) -> Vec<Span> {
    if text.is_ascii() {
        return find_ascii(text, kinds);
    }
    // Scan the folded text; report spans of the original, each from the start of its
    // first character to the end of its last.
    let folded = Folded::new(text);
    let mut kept: Vec<Span> = Vec::new();
    for s in find_ascii(&folded.text, kinds) {
        let span = Span {
            start: folded.from[s.start].0,
            end: folded.from[s.end - 1].1,
            kind: s.kind,
        };
        // Finds apart in the folded text can share a character of the original (`℅`
        // folds to `c/o`): such neighbours become one span, so spans never overlap and
        // neither is left half visible.
        match kept.last_mut() {
            Some(k) if span.start < k.end => k.end = k.end.max(span.end),
            _ => kept.push(span),
        }
    }
    kept
}

/// Characters that draw nothing but would split a number or an address for a scanner:
/// zero-width space, non-joiner and joiner, word joiner, byte-order mark, soft hyphen,
/// Mongolian vowel separator.
const INVISIBLE: [char; 7] = [
    '\u{200B}', '\u{200C}', '\u{200D}', '\u{2060}', '\u{FEFF}', '\u{00AD}', '\u{180E}',
];

/// `text` as the scanners read it: compatibility-normalised character by character (NFKC:
/// full-width `４` is `4`, `＠` is `@`) with invisible characters removed; and, for every
/// byte of it, the start and end in `text` of the character it came from.
struct Folded {
    text: String,
    from: Vec<(usize, usize)>,
}

impl Folded {
    fn new(text: &str) -> Folded {
        use unicode_normalization::UnicodeNormalization;
        let mut folded = Folded {
            text: String::with_capacity(text.len()),
            from: Vec::with_capacity(text.len()),
        };
        for (at, c) in text.char_indices() {
            if INVISIBLE.contains(&c) {
                continue;
            }
            let end = at + c.len_utf8();
            let before = folded.text.len();
            if c.is_ascii() {
                folded.text.push(c);
            } else {
                folded.text.extend(std::iter::once(c).nfkc());
            }
            let added = folded.text.len() - before;
            folded.from.extend(std::iter::repeat_n((at, end), added));
        }
        folded
    }
}

fn find_ascii(text: &str, kinds: Kinds) -> Vec<Span> {
    let b = text.as_bytes();
    let mut spans = Vec::new();
    let scanners: [(Kind, Scanner); 6] = [
        (Kind::Email, emails),
        (Kind::Card, cards),
        (Kind::Ssn, ssns),
        (Kind::Iban, ibans),
        (Kind::Phone, phones),
        (Kind::PrivateKey, crate::secrets::private_keys),
    ];
    // Every number kind needs a digit, e-mail needs an `@`, a key block a `-`, and a key
    // or token starts with one of a few two-letter prefixes: one pass over the text finds
    // out, and spares the scanners on ordinary prose, which is most of what filters see.
    let survey = crate::secrets::Survey::of(b);
    for (kind, scan) in scanners {
        let possible = match kind {
            Kind::Email => survey.has_at,
            Kind::PrivateKey => survey.has_dash,
            _ => survey.has_digit,
        };
        if possible && kinds.contains(kind) {
            scan(b, &mut spans);
        }
    }
    let (keys, jwts) = (kinds.contains(Kind::ApiKey), kinds.contains(Kind::Jwt));
    if keys || jwts {
        crate::secrets::tokens(b, &survey.token_starts, keys, jwts, &mut spans);
    }
    spans.sort_by(|x, y| x.start.cmp(&y.start).then(y.end.cmp(&x.end)));
    let mut kept: Vec<Span> = Vec::with_capacity(spans.len());
    for s in spans {
        if kept.last().is_none_or(|k| s.start >= k.end) {
            kept.push(s);
        }
    }
    kept
}

fn is_word(c: u8) -> bool {
    c.is_ascii_alphanumeric()
}

/// Whether the byte before `i` is a letter or digit, i.e. `i` is inside a word.
fn in_word(b: &[u8], i: usize) -> bool {
    i > 0 && is_word(b[i - 1])
}

// ---- email -------------------------------------------------------------------------

fn emails(b: &[u8], out: &mut Vec<Span>) {
    let is_local = |c: u8| is_word(c) || b"._%+-".contains(&c);
    for at in (0..b.len()).filter(|&i| b[i] == b'@') {
        let mut start = at;
        while start > 0 && is_local(b[start - 1]) {
            start -= 1;
        }
        // A sentence's full stop before the address is not part of it.
        while start < at && b[start] == b'.' {
            start += 1;
        }
        if start == at {
            continue;
        }
        if let Some(len) = domain_len(&b[at + 1..]) {
            out.push(Span {
                start,
                end: at + 1 + len,
                kind: Kind::Email,
            });
        }
    }
}

/// The length of the longest valid domain at the start of `d`: two or more labels of
/// letters, digits and inner hyphens, the last one alphabetic (a TLD). A trailing full
/// stop or a broken label ends the domain early rather than voiding it.
fn domain_len(d: &[u8]) -> Option<usize> {
    let mut best = None;
    let mut label_start = 0;
    let mut labels = 0;
    let mut i = 0;
    loop {
        let end_of_label = i == d.len() || !(is_word(d[i]) || d[i] == b'-');
        if !end_of_label {
            i += 1;
            continue;
        }
        let label = &d[label_start..i];
        let valid = !label.is_empty()
            && label.len() <= 63
            && label.first() != Some(&b'-')
            && label.last() != Some(&b'-');
        if !valid {
            break;
        }
        labels += 1;
        if labels >= 2 && label.len() >= 2 && label.iter().all(u8::is_ascii_alphabetic) {
            best = Some(i);
        }
        if i < d.len() && d[i] == b'.' {
            i += 1;
            label_start = i;
        } else {
            break;
        }
    }
    best
}

// ---- runs of grouped characters (cards, IBANs, phones) -----------------------------

/// The groups of a run that starts at `start`: maximal stretches of `member` bytes, joined
/// by separators that `sep` measures (it returns how many separator bytes start at a
/// position, 0 for none). A group glued to a following letter belongs to a longer word,
/// so it ends the run without being part of it. The run is followed only until it holds
/// more than `limit` member bytes, the most any match can have: that keeps a long run of
/// number-like groups from making the scan quadratic. Returns the groups and where the
/// run ends.
fn groups(
    b: &[u8],
    start: usize,
    limit: usize,
    member: impl Fn(u8) -> bool,
    sep: impl Fn(&[u8]) -> usize,
) -> (Vec<(usize, usize)>, usize) {
    let mut out = Vec::new();
    let mut members = 0;
    let mut j = start;
    loop {
        let s = j;
        while j < b.len() && member(b[j]) {
            j += 1;
        }
        if j == s || (j < b.len() && is_word(b[j])) {
            return (out, j.max(start + 1));
        }
        out.push((s, j));
        members += j - s;
        if members > limit {
            return (out, j);
        }
        let n = sep(&b[j..]);
        if n > 0 && b.get(j + n).is_some_and(|c| member(*c)) {
            j += n;
        } else {
            return (out, j);
        }
    }
}

/// Number of digits in `b`.
fn digits(b: &[u8]) -> usize {
    b.iter().filter(|c| c.is_ascii_digit()).count()
}

// ---- payment cards -----------------------------------------------------------------

fn cards(b: &[u8], out: &mut Vec<Span>) {
    let single = |rest: &[u8]| usize::from(matches!(rest.first(), Some(b' ' | b'-')));
    let mut i = 0;
    while i < b.len() {
        if !b[i].is_ascii_digit() || in_word(b, i) {
            i += 1;
            continue;
        }
        let (run, end) = groups(b, i, 19, |c| c.is_ascii_digit(), single);
        // The longest Luhn-valid stretch of 13 to 19 digits from the run's first group.
        // Without one, the next group starts a run of its own ("ref 12 4111 1111 ...").
        let found = run
            .iter()
            .scan(0, |count, g| {
                *count += g.1 - g.0;
                Some((*count, g.1))
            })
            .take_while(|&(count, _)| count <= 19)
            .filter(|&(count, to)| count >= 13 && luhn(&b[i..to]))
            .last()
            .map(|(_, to)| to);
        match found {
            Some(to) => {
                out.push(Span {
                    start: i,
                    end: to,
                    kind: Kind::Card,
                });
                i = to;
            }
            None => i = run.get(1).map_or(end, |g| g.0),
        }
    }
}

/// The Luhn checksum over the digits of `b` (separators skipped).
fn luhn(b: &[u8]) -> bool {
    let mut sum = 0u32;
    for (n, c) in b.iter().rev().filter(|c| c.is_ascii_digit()).enumerate() {
        let mut d = u32::from(c - b'0');
        if n % 2 == 1 {
            d *= 2;
            if d > 9 {
                d -= 9;
            }
        }
        sum += d;
    }
    sum.is_multiple_of(10)
}

// ---- US social security numbers ----------------------------------------------------

fn ssns(b: &[u8], out: &mut Vec<Span>) {
    const SHAPE: &[u8; 11] = b"ddd-dd-dddd";
    if b.len() < SHAPE.len() {
        return;
    }
    for i in 0..=b.len() - SHAPE.len() {
        let fits = SHAPE.iter().zip(&b[i..]).all(|(s, c)| match s {
            b'd' => c.is_ascii_digit(),
            _ => *c == b'-',
        });
        let end = i + SHAPE.len();
        // Not a piece of a longer dashed number or a word.
        let before_ok = i == 0 || !(is_word(b[i - 1]) || b[i - 1] == b'-');
        let after_ok = match b.get(end) {
            None => true,
            Some(c) if is_word(*c) => false,
            Some(b'-') => !b.get(end + 1).is_some_and(u8::is_ascii_digit),
            Some(_) => true,
        };
        if fits && before_ok && after_ok {
            out.push(Span {
                start: i,
                end,
                kind: Kind::Ssn,
            });
        }
    }
}

// ---- IBANs -------------------------------------------------------------------------

fn ibans(b: &[u8], out: &mut Vec<Span>) {
    // Any case: `de89 3704 …` is as much an IBAN as `DE89 3704 …` (mod-97 keeps words out).
    let member = |c: u8| c.is_ascii_alphanumeric();
    let single = |rest: &[u8]| usize::from(rest.first() == Some(&b' '));
    let mut i = 0;
    while i + 4 <= b.len() {
        let head = &b[i..i + 4];
        let starts = head[0].is_ascii_alphabetic()
            && head[1].is_ascii_alphabetic()
            && head[2].is_ascii_digit()
            && head[3].is_ascii_digit()
            && !in_word(b, i);
        if !starts {
            i += 1;
            continue;
        }
        let (run, end) = groups(b, i, 34, member, single);
        match iban_end(b, &run) {
            Some(to) => {
                out.push(Span {
                    start: i,
                    end: to,
                    kind: Kind::Iban,
                });
                i = to;
            }
            // Nothing inside the first group can start an IBAN (it is mid-word).
            None => i = run.first().map_or(end, |g| g.1),
        }
    }
}

/// Where the IBAN that opens `run` ends, if it is one: either written solid (one group),
/// or printed in groups of four with a shorter last group; 15 to 34 characters, mod-97
/// valid. The longest such reading wins.
fn iban_end(b: &[u8], run: &[(usize, usize)]) -> Option<usize> {
    let len = |g: &(usize, usize)| g.1 - g.0;
    let first = run.first()?;
    let mut best = None;
    for (e, last) in run.iter().enumerate() {
        // Characters without the single spaces between groups.
        let chars = last.1 - first.0 - e;
        if chars > 34 {
            break;
        }
        let shaped =
            e == 0 || (len(first) == 4 && run[1..e].iter().all(|g| len(g) == 4) && len(last) <= 4);
        if shaped && chars >= 15 && mod97(&b[first.0..last.1]) == 1 {
            best = Some(last.1);
        }
    }
    best
}

/// ISO 13616: move the first four characters to the end, read letters as 10..35, and
/// take the number mod 97. Spaces (printed groups) are skipped.
fn mod97(text: &[u8]) -> u32 {
    let step = |acc: u32, c: u8| {
        if c.is_ascii_digit() {
            (acc * 10 + u32::from(c - b'0')) % 97
        } else {
            (acc * 100 + u32::from(c.to_ascii_uppercase().saturating_sub(b'A')) + 10) % 97
        }
    };
    let mut chars = text.iter().copied().filter(|c| *c != b' ');
    let mut head = [0u8; 4];
    let mut n = 0;
    for c in chars.by_ref().take(4) {
        head[n] = c;
        n += 1;
    }
    let acc = chars.fold(0, step);
    head[..n].iter().fold(acc, |acc, c| step(acc, *c))
}

// ---- international phone numbers ---------------------------------------------------

fn phones(b: &[u8], out: &mut Vec<Span>) {
    // One or two of ` -.()` between digit groups covers `+1 (415) 555-2671`,
    // `+44 (0)20 7946 0958` and `+33.1.23.45.67.89`.
    let sep = |rest: &[u8]| {
        rest.iter()
            .take(2)
            .take_while(|c| b" -.()".contains(c))
            .count()
    };
    let mut i = 0;
    while i + 1 < b.len() {
        let starts = b[i] == b'+'
            && b[i + 1].is_ascii_digit()
            && !(in_word(b, i) || (i > 0 && b[i - 1] == b'+'));
        if !starts {
            i += 1;
            continue;
        }
        let (run, end) = groups(b, i + 1, 15, |c| c.is_ascii_digit(), sep);
        // The longest stretch of at most 15 digits (E.164's limit), and at least 8.
        let found = run
            .iter()
            .map(|g| g.1)
            .take_while(|&to| digits(&b[i..to]) <= 15)
            .last()
            .filter(|&to| digits(&b[i..to]) >= 8);
        match found {
            Some(to) => {
                out.push(Span {
                    start: i,
                    end: to,
                    kind: Kind::Phone,
                });
                i = to;
            }
            None => i = end.max(i + 1),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn redacted(text: &str) -> String {
        redact(text, &Rules::all()).map_or_else(|| text.to_owned(), |(t, _)| t)
    }

    #[test]
    fn each_kind_is_found_and_replaced_by_its_placeholder() {
        let cases = [
            (
                "mail jane.doe@example.com today",
                "mail [REDACTED:EMAIL] today",
            ),
            ("card 4111 1111 1111 1111 ok", "card [REDACTED:CARD] ok"),
            ("card 4111-1111-1111-1111.", "card [REDACTED:CARD]."),
            ("ssn 123-45-6789 here", "ssn [REDACTED:SSN] here"),
            (
                "iban GB82 WEST 1234 5698 7654 32 end",
                "iban [REDACTED:IBAN] end",
            ),
            ("call +1 (415) 555-2671 now", "call [REDACTED:PHONE] now"),
            ("call +44 (0)20 7946 0958", "call [REDACTED:PHONE]"),
        ];
        for (text, want) in cases {
            assert_eq!(redacted(text), want, "{text}");
        }
    }

    #[test]
    fn full_width_digits_invisible_characters_and_lower_case_ibans_do_not_evade() {
        let cases = [
            (
                "card ４１１１ １１１１ １１１１ １１１１ ok",
                "card [REDACTED:CARD] ok",
            ),
            (
                "mail jo\u{200B}.doe@exam\u{200D}ple.com now",
                "mail [REDACTED:EMAIL] now",
            ),
            ("mail jo.doe＠example.com", "mail [REDACTED:EMAIL]"),
            ("ssn 123\u{00AD}-45-6789 here", "ssn [REDACTED:SSN] here"),
            (
                "iban gb82 west 1234 5698 7654 32 end",
                "iban [REDACTED:IBAN] end",
            ),
            ("iban de89370400440532013000.", "iban [REDACTED:IBAN]."),
        ];
        for (text, want) in cases {
            assert_eq!(redacted(text), want, "{text}");
        }
        // Two addresses folded out of one character (`℅` is `c/o`) do not overlap.
        assert_eq!(redacted("jo@ex.e℅a@ex.com!"), "[REDACTED:EMAIL]!");
        // What is not personal data keeps its own characters.
        assert_eq!(redacted("ｆｕｌｌ width, ok"), "ｆｕｌｌ width, ok");
        assert_eq!(
            redacted("café ４１１１ ４"),
            "café ４１１１ ４",
            "a short number is no card"
        );
    }

    #[test]
    fn look_alikes_are_left_alone() {
        for text in [
            "no pii in this sentence at all",
            "card 4111 1111 1111 1112 fails Luhn",
            "iban GB83 WEST 1234 5698 7654 32 fails mod 97",
            "version 123-45-67890 is longer than an SSN",
            "order A123-45-6789 is part of a word",
            "+1 555 is too short for a phone number",
            "user@ alone is not an address",
        ] {
            assert_eq!(redact(text, &Rules::all()), None, "{text}");
        }
    }

    #[test]
    fn only_the_wanted_kinds_are_redacted_and_the_found_ones_reported() {
        let text = "jo@example.com paid with 4111 1111 1111 1111";
        let email_only = Rules::new(Kinds::default().with(Kind::Email), Action::Redact);
        let (out, found) = redact(text, &email_only).expect("an e-mail");
        assert_eq!(out, "[REDACTED:EMAIL] paid with 4111 1111 1111 1111");
        assert!(found.contains(Kind::Email) && !found.contains(Kind::Card));
        let (_, found) = redact(text, &Rules::all()).expect("both");
        assert!(found.contains(Kind::Email) && found.contains(Kind::Card));
    }

    #[test]
    fn mask_keeps_what_receipts_show_and_deny_kinds_are_reported() {
        let mut rules = Rules::new(Kinds::all(), Action::Mask);
        rules.set(Kind::PrivateKey, Action::Deny);
        let text = "jane.doe@example.com, 4111 1111 1111 1111, 123-45-6789, \
                    GB82 WEST 1234 5698 7654 32, +1 (415) 555-2671, \
                    sk-proj-AbCdEf0123456789_AbCdEf0123456789wxyz, ４１１１ １１１１ １１１１ １１１１ \
                    -----BEGIN PRIVATE KEY-----\nMIIEvQ\n-----END PRIVATE KEY-----";
        let (out, found) = redact(text, &rules).expect("finds");
        assert_eq!(
            out,
            "j***@example.com, **** **** **** 1111, ***-**-6789, \
             GB** **** **** **** **54 32, +* (***) ***-**71, sk-…wxyz, \
             **** **** **** １１１１ [REDACTED:PRIVATE_KEY]"
        );
        assert!(rules.denies(found));
        assert!(!rules.denies(found.without(Kind::PrivateKey)));
    }

    #[test]
    fn overlapping_finds_keep_the_earlier_longer_one() {
        let spans = find("x 4111111111111111 y", Kinds::all());
        assert_eq!(spans.len(), 1);
        assert_eq!(spans[0].kind, Kind::Card);
        assert_eq!((spans[0].start, spans[0].end), (2, 18));
    }
}
