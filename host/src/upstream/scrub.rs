//! Removes exact copies of secrets from what an upstream sends back.
//!
//! Only the host knows the credentials, so only the host can find them: a provider that
//! echoes the key in an error ("Incorrect API key provided: sk-...abcd") or a model that
//! repeats it must not carry it to a client, a plugin or a log. Guessing by prefix (`sk-`)
//! misses keys without one, such as Azure's.

use std::sync::Arc;

use memchr::memmem;

/// What replaces a secret.
pub const REDACTED: &str = "[redacted]";

/// Secrets shorter than this are not scrubbed: replacing every `abc` would mangle text
/// and a key that short is no secret anyway.
const MIN_SECRET: usize = 8;

/// The secrets of one request: the deployment's credential and the client's key.
#[derive(Clone, Default)]
pub struct Scrub {
    secrets: Vec<Arc<str>>,
}

impl Scrub {
    pub fn new(secrets: impl IntoIterator<Item = Arc<str>>) -> Scrub {
        Scrub {
            secrets: secrets
                .into_iter()
                .filter(|s| s.len() >= MIN_SECRET)
                .collect(),
        }
    }

    /// The same secrets plus `more`.
    pub fn with(&self, more: Option<Arc<str>>) -> Scrub {
        let mut s = self.clone();
        s.secrets
            .extend(more.into_iter().filter(|m| m.len() >= MIN_SECRET));
        s
    }

    fn found(&self, hay: &[u8]) -> bool {
        self.secrets
            .iter()
            .any(|s| memmem::find(hay, s.as_bytes()).is_some())
    }

    fn replace(&self, hay: &[u8]) -> Vec<u8> {
        let mut out = hay.to_vec();
        for s in &self.secrets {
            let needle = s.as_bytes();
            if memmem::find(&out, needle).is_none() {
                continue;
            }
            let mut next = Vec::with_capacity(out.len());
            let mut last = 0;
            for at in memmem::find_iter(&out, needle) {
                if at < last {
                    continue;
                }
                next.extend_from_slice(&out[last..at]);
                next.extend_from_slice(REDACTED.as_bytes());
                last = at + needle.len();
            }
            next.extend_from_slice(&out[last..]);
            out = next;
        }
        out
    }

    /// `data` with every secret replaced.
    pub fn vec(&self, data: Vec<u8>) -> Vec<u8> {
        if self.secrets.is_empty() || !self.found(&data) {
            return data;
        }
        self.replace(&data)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn removes_every_exact_copy_and_nothing_else() {
        let s = Scrub::new([Arc::from("0123456789abcdef"), Arc::from("short")]);
        assert_eq!(
            s.vec(b"key 0123456789abcdef, again 0123456789abcdef; short stays".to_vec()),
            b"key [redacted], again [redacted]; short stays"
        );
        let b = b"{\"error\":\"bad key 0123456789abcdef\"}".to_vec();
        assert_eq!(s.vec(b), b"{\"error\":\"bad key [redacted]\"}");
        let clean = b"nothing here".to_vec();
        let ptr = clean.as_ptr();
        let same = s.vec(clean);
        assert_eq!(same.as_ptr(), ptr, "no copy");
    }

    #[test]
    fn adds_the_client_key() {
        let s = Scrub::new([Arc::from("deployment-key-1")]).with(Some(Arc::from("client-key-22")));
        assert_eq!(
            s.vec(b"deployment-key-1 client-key-22".to_vec()),
            b"[redacted] [redacted]"
        );
    }
}
