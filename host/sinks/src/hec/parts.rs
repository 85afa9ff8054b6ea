//! A request's events as a list of index ranges into its batch ("parts"): how a batch is cut
//! into requests, and how a request is cut again when HEC refuses it as too large (413) or
//! names one bad event (docs/rendering.md §3.9 "HEC response classes").

use std::ops::Range;

use crate::util::batch::{EventBatch, Lane};

/// Cuts a batch into requests: runs of consecutive events of one HEC path, at most
/// `max_bytes` each (a larger single event goes alone).
pub(super) fn plan_requests(batch: &EventBatch, max_bytes: usize) -> Vec<(Lane, Range<usize>)> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut bytes = 0;
    for i in 0..batch.len() {
        let len = batch.range(i).len();
        if i > start && (batch.lane(i) != batch.lane(start) || bytes + len > max_bytes) {
            out.push((batch.lane(start), start..i));
            start = i;
            bytes = 0;
        }
        bytes += len;
    }
    if start < batch.len() {
        out.push((batch.lane(start), start..batch.len()));
    }
    out
}

pub(super) fn count(parts: &[Range<usize>]) -> usize {
    parts.iter().map(|p| p.len()).sum()
}

/// The batch index of the `n`-th event of a request.
pub(super) fn nth(parts: &[Range<usize>], mut n: usize) -> usize {
    for p in parts {
        if n < p.len() {
            return p.start + n;
        }
        n -= p.len();
    }
    unreachable!("n < count(parts) is checked by the caller")
}

/// The request's events without batch index `index`.
pub(super) fn without(parts: &[Range<usize>], index: usize) -> Vec<Range<usize>> {
    let mut out = Vec::with_capacity(parts.len() + 1);
    for p in parts {
        if p.contains(&index) {
            out.extend(
                [p.start..index, index + 1..p.end]
                    .into_iter()
                    .filter(|r| !r.is_empty()),
            );
        } else {
            out.push(p.clone());
        }
    }
    out
}

/// Uncompressed bytes of the request's events.
pub(super) fn raw_len(batch: &EventBatch, parts: &[Range<usize>]) -> usize {
    parts
        .iter()
        .map(|p| batch.byte_range(p.clone()).len())
        .sum()
}

/// The request's events cut into consecutive pieces of at most `max_bytes` each (an event
/// larger than that goes alone).
pub(super) fn fit(
    batch: &EventBatch,
    parts: &[Range<usize>],
    max_bytes: usize,
) -> Vec<Vec<Range<usize>>> {
    let mut out = Vec::new();
    let mut piece: Vec<Range<usize>> = Vec::new();
    let mut bytes = 0;
    for p in parts {
        for i in p.clone() {
            let len = batch.range(i).len();
            if bytes > 0 && bytes + len > max_bytes {
                out.push(std::mem::take(&mut piece));
                bytes = 0;
            }
            match piece.last_mut() {
                Some(r) if r.end == i => r.end = i + 1,
                _ => piece.push(i..i + 1),
            }
            bytes += len;
        }
    }
    if !piece.is_empty() {
        out.push(piece);
    }
    out
}

/// The request's events in two halves (by event count).
pub(super) fn halves(parts: &[Range<usize>]) -> (Vec<Range<usize>>, Vec<Range<usize>>) {
    let mid = nth(parts, count(parts) / 2);
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for p in parts {
        if p.end <= mid {
            a.push(p.clone());
        } else if p.start >= mid {
            b.push(p.clone());
        } else {
            a.push(p.start..mid);
            b.push(mid..p.end);
        }
    }
    (a, b)
}
#[cfg(test)]
#[expect(
    clippy::single_range_in_vec_init,
    reason = "request parts are lists of event index ranges"
)]
mod tests {
    use super::*;

    fn batch(sizes: &[(usize, Lane)]) -> EventBatch {
        let mut b = EventBatch::new();
        for &(n, lane) in sizes {
            b.buf_mut().extend(std::iter::repeat_n(b'x', n));
            b.commit(lane);
        }
        b
    }

    #[test]
    fn plan_respects_size_and_lanes() {
        let d = Lane::Default;
        let b = batch(&[
            (4, d),
            (4, d),
            (4, d),
            (20, d),
            (1, Lane::Raw),
            (1, Lane::Raw),
            (1, d),
        ]);
        let plan = plan_requests(&b, 8);
        assert_eq!(
            plan,
            vec![
                (d, 0..2),
                (d, 2..3),
                (d, 3..4),
                (Lane::Raw, 4..6),
                (d, 6..7)
            ]
        );
    }

    #[test]
    fn fit_cuts_to_a_byte_limit() {
        let d = Lane::Default;
        let b = batch(&[(4, d), (4, d), (4, d), (20, d), (1, d), (1, d)]);
        assert_eq!(
            fit(&b, &[0..6], 8),
            vec![vec![0..2], vec![2..3], vec![3..4], vec![4..6]]
        );
        assert_eq!(
            fit(&b, &[0..1, 4..6], 5),
            vec![vec![0..1, 4..5], vec![5..6]]
        );
        assert_eq!(raw_len(&b, &[0..2, 4..5]), 9);
    }

    #[test]
    fn split_helpers() {
        let parts = vec![0..3, 5..8];
        assert_eq!(count(&parts), 6);
        assert_eq!(nth(&parts, 4), 6);
        assert_eq!(without(&parts, 6), vec![0..3, 5..6, 7..8]);
        assert_eq!(without(&parts, 0), vec![1..3, 5..8]);
        assert_eq!(halves(&parts), (vec![0..3], vec![5..8]));
        assert_eq!(halves(&[0..5]), (vec![0..2], vec![2..5]));
        assert_eq!(halves(&[0..2]), (vec![0..1], vec![1..2]));
    }
}
