//! Requests and tokens per minute: a token bucket per limit, refilled continuously.
//!
//! Written here rather than taken from `governor` because tokens are reserved from an
//! estimate before the call and settled to the real count after it: the bucket must
//! take a refund or go into debt, which GCRA cells cannot express.

/// One per-minute limit: `capacity` units, refilled at `capacity` per minute.
#[derive(Debug, Clone)]
pub struct Bucket {
    capacity: f64,
    level: f64,
    per_ms: f64,
    last_ms: i64,
}

/// What a client is told about one limit (OpenAI's `x-ratelimit-*` trio).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Headroom {
    pub limit: u64,
    pub remaining: u64,
    /// Until the bucket is full again, in milliseconds.
    pub reset_ms: u64,
}

impl Bucket {
    pub fn per_minute(limit: u32, now_ms: i64) -> Bucket {
        let capacity = f64::from(limit);
        Bucket {
            capacity,
            level: capacity,
            per_ms: capacity / 60_000.0,
            last_ms: now_ms,
        }
    }

    pub fn limit(&self) -> u32 {
        self.capacity as u32
    }

    fn refill(&mut self, now_ms: i64) {
        let elapsed = (now_ms - self.last_ms).max(0) as f64;
        self.level = (self.level + elapsed * self.per_ms).min(self.capacity);
        self.last_ms = self.last_ms.max(now_ms);
    }

    /// Milliseconds until `n` units are available, 0 if they are now; `None` if they
    /// never will be (more than the whole limit).
    pub fn wait_for(&mut self, n: f64, now_ms: i64) -> Option<u64> {
        self.refill(now_ms);
        if n > self.capacity {
            return None;
        }
        let missing = n - self.level;
        Some(if missing <= 0.0 {
            0
        } else {
            (missing / self.per_ms).ceil() as u64
        })
    }

    /// Takes `n` units; call after `wait_for` said 0.
    pub fn take(&mut self, n: f64) {
        self.level -= n;
    }

    /// Gives back (positive) or charges more (negative) after the real count is known.
    /// A charge may leave the bucket in debt, which later requests wait out.
    pub fn adjust(&mut self, delta: f64, now_ms: i64) {
        self.refill(now_ms);
        self.level = (self.level + delta).min(self.capacity);
    }

    pub fn headroom(&mut self, now_ms: i64) -> Headroom {
        self.refill(now_ms);
        let remaining = self.level.max(0.0).floor();
        Headroom {
            limit: self.capacity as u64,
            remaining: remaining as u64,
            reset_ms: ((self.capacity - self.level) / self.per_ms).ceil().max(0.0) as u64,
        }
    }
}

/// OpenAI's reset format: `12ms`, `1s`, `6m0s`.
pub fn reset_text(ms: u64) -> String {
    if ms < 1000 {
        return format!("{ms}ms");
    }
    let s = ms.div_ceil(1000);
    if s < 60 {
        format!("{s}s")
    } else {
        format!("{}m{}s", s / 60, s % 60)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_refills_continuously_and_can_owe() {
        let mut b = Bucket::per_minute(60, 0);
        assert_eq!(b.wait_for(60.0, 0), Some(0));
        b.take(60.0);
        assert_eq!(b.wait_for(1.0, 0), Some(1000));
        assert_eq!(b.wait_for(1.0, 1000), Some(0));
        assert_eq!(b.wait_for(61.0, 1000), None);
        // Settled to more than was reserved: in debt.
        b.adjust(-30.0, 1000);
        let h = b.headroom(1000);
        assert_eq!(h.remaining, 0);
        assert_eq!(h.limit, 60);
        assert!(h.reset_ms > 60_000, "{h:?}");
        // A refund never overfills.
        b.adjust(1000.0, 1000);
        assert_eq!(b.headroom(1000).remaining, 60);
        assert_eq!(b.headroom(1000).reset_ms, 0);
    }

    #[test]
    fn reset_reads_like_openais() {
        assert_eq!(reset_text(12), "12ms");
        assert_eq!(reset_text(1000), "1s");
        assert_eq!(reset_text(1001), "2s");
        assert_eq!(reset_text(360_000), "6m0s");
    }
}
