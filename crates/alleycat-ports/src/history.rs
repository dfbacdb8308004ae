//! Class history objects in a bucket, as a [`MergeStore`] with ETag conditions.

use alleycat_domain::ClassHistory;
use alleycat_domain::views::history_key;

use crate::error::PortError;
use crate::objects::{ObjectStore, PutCondition};
use crate::table::MergeStore;

/// Content type of history objects: gzip bytes the browser gunzips itself.
pub const HISTORY_CONTENT_TYPE: &str = "application/gzip";

/// The history bucket seen as one max-merged document per class: `load` reads and decodes
/// `class-<c>.json.gz` with its ETag, `store` writes it back `If-Match` that ETag (or
/// `If-None-Match: *` when new), so two mergers never lose each other's records.
#[derive(Clone, Debug)]
pub struct HistoryObjects<O> {
    objects: O,
    top_k: u32,
}

impl<O: ObjectStore> HistoryObjects<O> {
    /// Histories in `objects`, keeping `top_k` racers per second (0 = all) in new objects.
    pub fn new(objects: O, top_k: u32) -> Self {
        Self { objects, top_k }
    }

    /// The bucket underneath.
    pub fn objects(&self) -> &O {
        &self.objects
    }
}

impl<O: ObjectStore> MergeStore<u8, ClassHistory> for HistoryObjects<O> {
    type Version = String;

    fn empty(&self, class_id: &u8) -> ClassHistory {
        ClassHistory::new(*class_id, self.top_k)
    }

    async fn load(&self, class_id: &u8) -> Result<Option<(ClassHistory, String)>, PortError> {
        let Some(object) = self.objects.get(&history_key(*class_id)).await? else {
            return Ok(None);
        };
        let history = ClassHistory::decode_gzip(&object.bytes, *class_id, self.top_k)
            .map_err(|e| PortError::Permanent(format!("{}: {e}", history_key(*class_id))))?;
        Ok(Some((history, object.etag)))
    }

    async fn store(
        &self,
        class_id: &u8,
        history: &ClassHistory,
        expected: Option<&String>,
    ) -> Result<(), PortError> {
        let condition = match expected {
            Some(etag) => PutCondition::IfMatch(etag.clone()),
            None => PutCondition::IfNoneMatch,
        };
        self.objects
            .put(
                &history_key(*class_id),
                history.encode_gzip(),
                HISTORY_CONTENT_TYPE,
                Some(condition),
            )
            .await
            .map(drop)
    }
}
