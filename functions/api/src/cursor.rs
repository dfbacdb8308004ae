//! The leaderboard's page cursor: opaque to clients, validated on the way back in.
//!
//! A cursor names the last row of the page before (its full place in
//! [`LeaderboardEntry::rank_cmp`] order: best, race, final time, name, racer) and how many rows
//! came before, so every store resumes exactly after it and places continue across pages. It is
//! URL-safe base64 of a JSON array `[1, classId, best, raceId, updatedAt, racerId, name, rows,
//! place]` (best in ten-thousandths); nothing in it is secret, and a cursor edited by hand can
//! only move where a page starts, so it is checked for shape and class rather than signed.

use alleycat_domain::message::MAX_NAME_CHARS;
use alleycat_domain::{LeaderboardEntry, Output};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::Error;

const VERSION: u8 = 1;

/// Where the next page starts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Cursor {
    /// The last row of the previous page.
    pub(crate) after: LeaderboardEntry,
    /// Rows on the previous pages.
    pub(crate) rows: u64,
    /// The place of the last row of the previous page.
    pub(crate) place: u64,
}

type Wire = (u8, u8, u32, u64, u64, u32, String, u64, u64);

impl Cursor {
    /// The cursor of `class_id` after `after`.
    pub(crate) fn encode(&self, class_id: u8) -> String {
        let a = &self.after;
        let wire: Wire = (
            VERSION,
            class_id,
            a.best.ten_thousandths(),
            a.race_id,
            a.updated_at,
            a.racer_id,
            a.name.clone(),
            self.rows,
            self.place,
        );
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(&wire).expect("a cursor always serializes"))
    }

    /// Reads a cursor given for `class_id`.
    pub(crate) fn decode(text: &str, class_id: u8) -> Result<Self, Error> {
        let invalid = || {
            Error::BadRequest(format!(
                "cursor is not a cursor of the class {class_id} leaderboard: pass the `next` of \
                 the previous page unchanged"
            ))
        };
        let bytes = URL_SAFE_NO_PAD.decode(text).map_err(|_| invalid())?;
        let (version, class, best, race_id, updated_at, racer_id, name, rows, place): Wire =
            serde_json::from_slice(&bytes).map_err(|_| invalid())?;
        let valid = version == VERSION
            && class == class_id
            && name.chars().count() <= MAX_NAME_CHARS
            && (1..=rows).contains(&place);
        if !valid {
            return Err(invalid());
        }
        Ok(Self {
            after: LeaderboardEntry {
                racer_id,
                name,
                best: Output::from_ten_thousandths(best),
                race_id,
                updated_at,
            },
            rows,
            place,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cursor() -> Cursor {
        Cursor {
            after: LeaderboardEntry {
                racer_id: 42,
                name: "Ädell \"the\" fast".to_owned(),
                best: Output::from_ten_thousandths(1_517_880),
                race_id: 5_400_172,
                updated_at: 1_620_051_628_707,
            },
            rows: 100,
            place: 99,
        }
    }

    #[test]
    fn a_cursor_round_trips_and_is_url_safe() {
        let text = cursor().encode(3);
        assert!(
            text.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        );
        assert_eq!(Cursor::decode(&text, 3).unwrap(), cursor());
    }

    #[test]
    fn forged_or_foreign_cursors_are_refused() {
        let refused = |text: &str| matches!(Cursor::decode(text, 3), Err(Error::BadRequest(_)));
        assert!(refused(&cursor().encode(4)), "another class's cursor");
        assert!(refused("not base64!"));
        assert!(refused(&URL_SAFE_NO_PAD.encode(b"[1,3]")));
        assert!(refused(
            &URL_SAFE_NO_PAD.encode(br#"[2,3,1,1,1,1,"a",1,1]"#)
        ));
        assert!(
            refused(&URL_SAFE_NO_PAD.encode(br#"[1,3,1,1,1,1,"a",1,2]"#)),
            "a place after the rows before it"
        );
        assert!(refused(
            &URL_SAFE_NO_PAD.encode(br#"[1,3,-1,1,1,1,"a",1,1]"#)
        ));
        let long = format!(r#"[1,3,1,1,1,1,"{}",1,1]"#, "x".repeat(65));
        assert!(refused(&URL_SAFE_NO_PAD.encode(long)));
    }
}
