//! Opaque `$skiptoken` and `$deltatoken` values. Graph's tokens are opaque and clients must
//! follow the links as given; these carry a position plus a nonce and a keyed checksum, so a
//! client that builds or edits them gets 400 instead of a silently wrong page.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::rng::keyed_checksum;

/// What kind of position a token holds; a token of one kind is refused as another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TokenKind {
    /// A list page: [path hash, offset, flags, nonce].
    Page = 1,
    /// A delta round page: [path hash, since, upto, offset, epoch, flags, nonce].
    DeltaPage = 2,
    /// A delta link: [path hash, seq, epoch, nonce].
    DeltaLink = 3,
}

pub(crate) fn seal(key: u64, kind: TokenKind, fields: &[u64]) -> String {
    let mut bytes = Vec::with_capacity(1 + fields.len() * 8 + 8);
    bytes.push(kind as u8);
    for field in fields {
        bytes.extend_from_slice(&field.to_le_bytes());
    }
    let sum = keyed_checksum(key, &bytes);
    bytes.extend_from_slice(&sum.to_le_bytes());
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The fields of a token this simulator sealed with `key`, or `None` for anything else.
pub(crate) fn open(key: u64, kind: TokenKind, token: &str, n_fields: usize) -> Option<Vec<u64>> {
    let bytes = URL_SAFE_NO_PAD.decode(token.trim()).ok()?;
    if bytes.len() != 1 + n_fields * 8 + 8 || bytes.first() != Some(&(kind as u8)) {
        return None;
    }
    let (body, sum) = bytes.split_at(bytes.len() - 8);
    let sum = u64::from_le_bytes(sum.try_into().ok()?);
    if keyed_checksum(key, body) != sum {
        return None;
    }
    body.get(1..)?
        .chunks_exact(8)
        .map(|chunk| chunk.try_into().ok().map(u64::from_le_bytes))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses_tampering() {
        let token = seal(9, TokenKind::Page, &[1, 200, 0, 77]);
        assert_eq!(
            open(9, TokenKind::Page, &token, 4),
            Some(vec![1, 200, 0, 77])
        );
        assert_eq!(open(8, TokenKind::Page, &token, 4), None);
        assert_eq!(open(9, TokenKind::DeltaLink, &token, 4), None);
        let mut bytes = URL_SAFE_NO_PAD.decode(&token).unwrap_or_default();
        bytes[9] ^= 1;
        assert_eq!(
            open(9, TokenKind::Page, &URL_SAFE_NO_PAD.encode(bytes), 4),
            None
        );
        assert_eq!(open(9, TokenKind::Page, "200", 4), None);
    }
}
