//! Request parameters, validated with errors that name the parameter.

use alleycat_domain::RaceKey;
use alleycat_domain::message::{MAX_CLASS_ID, MAX_RACER_ID};
use aws_lambda_events::query_map::QueryMap;

use crate::Error;

/// Default of `limit`.
pub const DEFAULT_LIMIT: usize = 20;
/// Largest `limit`.
pub const MAX_LIMIT: usize = 100;

/// Parses a plain decimal number: digits only, so `+3`, ` 3` and `3.0` are rejected rather than
/// silently read.
fn digits<T: std::str::FromStr>(text: &str) -> Option<T> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// A class id, from the path or the query.
pub(crate) fn class_id(text: &str) -> Result<u8, Error> {
    digits::<u8>(text)
        .filter(|c| (1..=MAX_CLASS_ID).contains(&i64::from(*c)))
        .ok_or_else(|| {
            Error::BadRequest(format!(
                "classId must be an integer from 1 to {MAX_CLASS_ID}"
            ))
        })
}

/// A race id from the path.
pub(crate) fn race_id(text: &str) -> Result<u64, Error> {
    digits::<u64>(text)
        .filter(|&r| r > 0)
        .ok_or_else(|| Error::BadRequest("raceId must be a positive integer".to_owned()))
}

/// A racer id from the path.
pub(crate) fn racer_id(text: &str) -> Result<u32, Error> {
    digits::<u32>(text)
        .filter(|&r| i64::from(r) <= MAX_RACER_ID)
        .ok_or_else(|| {
            Error::BadRequest(format!(
                "racerId must be an integer from 0 to {MAX_RACER_ID}"
            ))
        })
}

/// The query string parameters of a request.
pub(crate) struct Query<'q>(pub(crate) &'q QueryMap);

impl Query<'_> {
    /// A parameter given at most once (HTTP APIs join repeats with commas, which splits them).
    fn single(&self, name: &str) -> Result<Option<&str>, Error> {
        match self.0.all(name).as_deref() {
            None | Some([]) => Ok(None),
            Some([value]) => Ok(Some(value)),
            Some(_) => Err(Error::BadRequest(format!("{name} must be given once"))),
        }
    }

    /// The required `classId`.
    pub(crate) fn class_id(&self) -> Result<u8, Error> {
        let text = self
            .single("classId")?
            .ok_or_else(|| Error::BadRequest("classId is required".to_owned()))?;
        class_id(text)
    }

    /// `classId` with a race id from the path: the race's identity.
    pub(crate) fn race(&self, race_id_text: &str) -> Result<RaceKey, Error> {
        let race_id = race_id(race_id_text)?;
        Ok(RaceKey {
            class_id: self.class_id()?,
            race_id,
        })
    }

    /// The leaderboard's `cursor`, if given (decoded by [`crate::cursor::Cursor::decode`]).
    pub(crate) fn cursor(&self) -> Result<Option<&str>, Error> {
        self.single("cursor")
    }

    /// `limit`, 1–100, default 20.
    pub(crate) fn limit(&self) -> Result<usize, Error> {
        match self.single("limit")? {
            None => Ok(DEFAULT_LIMIT),
            Some(text) => digits::<usize>(text)
                .filter(|l| (1..=MAX_LIMIT).contains(l))
                .ok_or_else(|| {
                    Error::BadRequest(format!("limit must be an integer from 1 to {MAX_LIMIT}"))
                }),
        }
    }
}
